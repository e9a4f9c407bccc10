# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Inside the simulation lemma: which states and transitions make a model's performance gap
#
# *Modhe et al. (2021), Model-Advantage Optimization for Model-Based RL, Lemma 1 (Eq. 3) and Eq. 2.*
#
# Lemma 1 with unnormalized values (the $1/(1-\gamma)$ on the reward term is needed; printed Eq. 3 omits it) reads
#
# $$J_M(\pi) - J_{M'}(\pi) = \tfrac{1}{1-\gamma}\mathbb{E}_{s\sim d_M}\mathbb{E}_{s'\sim P^\pi_M(s)}\big[A^\pi_{M'}(s,s')\big]
#   + \tfrac{1}{1-\gamma}\mathbb{E}_{s\sim d_M}\big[R^\pi_M(s) - R^\pi_{M'}(s)\big],$$
#
# with the model advantage $A^\pi_{M'}(s,s') = \gamma\big(V_{M'}(s') - \mathbb{E}_{s''\sim P^\pi_{M'}(s)}V_{M'}(s'')\big)$
# (Eq. 2). Both expectations are sums over states, so the gap splits exactly into one **share per state**,
#
# $$\text{share}(s) = \underbrace{w(s)\textstyle\sum_{s'}P^\pi_M(s,s')A(s,s')}_{\text{model-advantage term}}
#   + \underbrace{w(s)\,\big(R^\pi_M(s)-R^\pi_{M'}(s)\big)}_{\text{reward term}},\qquad w(s) = \frac{d_M(s)}{1-\gamma},$$
#
# and the model-advantage term further into one share per transition, $w(s)P^\pi_M(s,s')A(s,s')$. Only transitions
# the *true* dynamics take count. `tabular.explain.explain` computes all of it; `modeladv explain` draws it.

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from modeladv import cli
from modeladv.explain import load_problem, plot_explanation
from tabular.explain import explain

# %% [markdown]
# ## FrozenLake: the optimal policy, judged by a perturbed model
# The second model mixes every row of the true dynamics with a random distribution (noise 0.1,
# `tabular.explain.perturb`) and scores its own dynamics with FrozenLake's reward (1 for reaching the goal).

# %%
problem = load_problem("frozenlake", gamma=0.95, policy="optimal", noise=0.1, seed=0)
ex = explain(problem.M, problem.M2, problem.pi, top=8)
L = ex.lemma
print(f"J_M - J_M2 = {L.lhs:+.6f}")
print(f"  model-advantage term {L.model_advantage_term:+.6f} + reward term {L.reward_term:+.6f}; residual {L.residual:+.1e}")
print(f"  sum of the per-state shares - gap = {-ex.residual:+.1e}")
print(f"  printed Eq. 3 (reward term without 1/(1-gamma)) is off by {L.printed_residual:+.4f}")
out = Path(tempfile.mkdtemp(prefix="explain_"))
plot_explanation(problem, ex, out / "frozenlake.png")
plt.figure(figsize=(14, 4.2))
plt.imshow(plt.imread(out / "frozenlake.png"))
plt.axis("off")
plt.show()

# %% [markdown]
# Read the figure left to right: the map colours each state by its share (S start, H holes, G goal), with arrows
# for the transitions that carry the largest shares; the bars split the largest shares into their two terms; the
# text repeats Lemma 1's two sides. Which term dominates is a property of this pair of models; the cell below
# prints it rather than assuming it.

# %%
i = np.argsort(-np.abs(ex.total))[:4]
for s in i:
    print(f"state {s:2d}: share {ex.total[s]:+.4f} = model-advantage {ex.ma[s]:+.4f} + reward {ex.reward[s]:+.4f}"
          f"  (w = {ex.w[s]:.3f})")
print(f"|model-advantage term| / |reward term| = {abs(L.model_advantage_term) / max(abs(L.reward_term), 1e-300):.2f}")

# %% [markdown]
# ## The shares of a perturbation grow with the noise
# At noise 0 the second model is the true one and every share is 0; the gap then grows with the noise level. The
# per-state identity holds at every level (the residual column).

# %%
for noise in [0.0, 0.05, 0.1, 0.2, 0.4]:
    p = load_problem("frozenlake", gamma=0.95, policy="optimal", noise=noise, seed=0)
    e = explain(p.M, p.M2, p.pi)
    print(f"noise {noise:4.2f}: gap {e.gap:+.5f}   sum|share| {np.abs(e.total).sum():.5f}   residual {e.residual:+.1e}")

# %% [markdown]
# ## A learned gridworld model
# A short gridworld run (8x8, MA-L1 objective, the defaults of `modeladv gridworld`) keeps its final model and
# policy (`final_model.npz`). Its gap is then explained for the policy the agent learned, in the model it learned.

# %%
root = Path(tempfile.mkdtemp(prefix="gridworld_"))
assert cli.main(["gridworld", "--methods", "ma_l1", "--seeds", "1", "--root", str(root), "--no-plot",
                 "--no-progress"]) == 0
run = next((root / "gridworld").glob("*/seed0"))
learned = load_problem("gridworld", policy="run", run=str(run))
ex2 = explain(learned.M, learned.M2, learned.pi)
print(f"J_M - J_Mphi = {ex2.gap:+.5f}: model-advantage term {ex2.lemma.model_advantage_term:+.5f}, "
      f"reward term {ex2.lemma.reward_term:+.5f}, residual {ex2.lemma.residual:+.1e}")
plot_explanation(learned, ex2, out / "learned.png")
plt.figure(figsize=(14, 4.2))
plt.imshow(plt.imread(out / "learned.png"))
plt.axis("off")
plt.show()

# %% [markdown]
# In the gridworld the reward of a step depends on where the model says it lands, $r(s, s')$, so a learned
# model also has a reward term: $R_\phi(s,a) = \mathbb{E}_{P_\phi}\,r(s,\cdot)$. The value-aware objectives of
# Figure 1 aim at the model-advantage part only; the printed numbers above say how large each part is for this run.
# Try `--policy uniform`, another `--method`, or `modeladv explain --env cliffwalking --noise 0.3` on the command line.
