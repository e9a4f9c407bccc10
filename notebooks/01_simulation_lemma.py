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
# # Model-advantage and the simulation lemma, checked exactly
#
# *Modhe et al. (2021), Model-Advantage Optimization for Model-Based RL, Sections 2-3 and Appendix A.*
#
# For a model $M$ and a policy $\pi$ the **model-advantage** (Eq. 2) compares moving to a particular next
# state $s'$ with the average next state under $M$'s own dynamics:
#
# $$A^\pi_M(s, s') = \gamma\,\big[V^\pi_M(s') - \mathbb{E}_{s''\sim P^\pi_M(s)} V^\pi_M(s'')\big].$$
#
# Under $M$'s own dynamics it has zero mean. Under *another* model's dynamics it measures how much that model's
# transitions are worth to $M$'s value function; the **simulation lemma** (Lemma 1, Eq. 3) turns the
# expected model-advantage into the performance gap between the two models. Everything below is computed
# exactly with `tabular` (linear solves, no sampling). Values are unnormalized unless stated.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tabular as tb
from tabular.verify import gridworld_example_3_5, random_mdp

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Eq. 2 on a random MDP
# A random 6-state, 2-action MDP $M$ and a second model $M'$ with other dynamics and rewards.

# %%
rng = np.random.default_rng(0)
M = random_mdp(rng, S=6, A=2, gamma=0.9)
M2 = M.replace(P=rng.dirichlet(np.ones(6), size=(6, 2)), R=rng.uniform(-1, 1, size=(6, 2)))
pi = rng.dirichlet(np.ones(2), size=6)

A = tb.model_advantage(M, pi)  # (S, S)
P_pi = tb.transition_matrix(M, pi)
print("A_M(s, s'):\n", A)
print("row means under M's own dynamics, sum_s' P_M(s, s') A_M(s, s'):", (P_pi * A).sum(axis=1))

# %% [markdown]
# ## Lemma 1 in both value conventions
# With unnormalized values $V = \sum_t \gamma^t r_t$ the exact identity is
# $$J_M - J_{M'} = \tfrac{1}{1-\gamma}\mathbb{E}_{d_M}\mathbb{E}_{P^\pi_M}[A_{M'}] + \tfrac{1}{1-\gamma}\mathbb{E}_{d_M}[R^\pi_M - R^\pi_{M'}].$$
# The paper's proof (Appendix A.1) uses $(1-\gamma)$-normalized values; then the reward term loses its
# $1/(1-\gamma)$, which is Eq. 3 as printed.

# %%
for normalized in (False, True):
    lem = tb.simulation_lemma(M, M2, pi, normalized=normalized)
    print(f"normalized={normalized!s:5}  lhs={lem.lhs:+.6f}  rhs={lem.rhs:+.6f}  residual={lem.residual:+.1e}  "
          f"printed Eq. 3 rhs={lem.printed_rhs:+.6f}  printed residual={lem.printed_residual:+.1e}")

# %% [markdown]
# **Erratum 1.** Printed Eq. 3 holds only for normalized values: with unnormalized values it is off by
# $+\frac{\gamma}{1-\gamma}\mathbb{E}_{d_M}[R^\pi_M - R^\pi_{M'}]$ (the residual above; a residual is always the left
# side minus the right side, $J_M - J_{M'}$ minus the printed right side here), which vanishes only when
# $\gamma = 0$ or the expected reward difference is zero, e.g. when the models differ only in their dynamics
# (the paper's setting, footnote 2).

# %%
lem = tb.simulation_lemma(M, M2, pi)
d = tb.occupancy(M, pi)
dR = tb.policy_reward(M, pi) - tb.policy_reward(M2, pi)
print("printed residual:", lem.printed_residual, " gamma/(1-gamma) E_d[dR]:", 0.9 / 0.1 * d @ dR)

# %% [markdown]
# ## Corollary 2 and Eq. 5
# With the Bellman operator $\mathcal{T}^\pi_M V = R^\pi_M + \gamma P^\pi_M V$ (Eq. 4), the appendix proof of
# Corollary 2 establishes $J_M - J_{M'} = \frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_{M'} - \mathcal{T}_{M'} V_{M'}]$
# (and, swapping roles, $\frac{1}{1-\gamma}\mathbb{E}_{d_{M'}}[\mathcal{T}_M V_M - \mathcal{T}_{M'} V_M]$).
# Eq. 5 as printed pairs $d_M$ with $V_M$.

# %%
dev = tb.deviation_error(M, M2, pi)
print(f"lhs {dev.lhs:+.6f}   proof form {dev.proof_form:+.6f}   dual form {dev.dual_form:+.6f}   "
      f"printed Eq. 5 {dev.printed_form:+.6f}  (residual {dev.printed_residual:+.3e})")

# %% [markdown]
# **Erratum 2.** Printed Eq. 5 holds when the two models share $P^\pi$ (only rewards differ) or $\gamma=0$, but
# not in general, in either normalization. A hand-checkable counterexample (`tb.eq5_counterexample`): two
# states, one action, $\gamma=1/2$, equal rewards $R=(0, 1)$; $M$ moves $0\to1$, $M'$ stays in 0. Then
# $V_M=(1,2)$, $V_{M'}=(0,2)$, $J_M-J_{M'}=1$, $d_M=(\tfrac12,\tfrac12)$ and
# $\mathcal{T}_M V_M-\mathcal{T}_{M'}V_M=(\tfrac12,0)$, so printed Eq. 5 gives $2\cdot\tfrac14=\tfrac12$.

# %%
Mc, Mc2, pic = tb.eq5_counterexample()
print(tb.deviation_error(Mc, Mc2, pic))

# %% [markdown]
# ## A small grid: Sutton & Barto's Example 3.5
# The 5x5 gridworld ($A\to A'$ pays +10, $B\to B'$ +5, bumping into a wall -1, $\gamma = 0.9$) as the true
# model, and a "learned" model with the same rewards whose moves slip to a random direction with probability
# 0.2. The policy mixes the uniform and the optimal policy.

# %%
grid = gridworld_example_3_5()
model = grid.replace(P=gridworld_example_3_5(slip=0.2).P)
pi_g = 0.5 * tb.uniform_policy(grid) + 0.5 * tb.value_iteration(grid).pi
lem_g = tb.simulation_lemma(grid, model, pi_g)
dev_g = tb.deviation_error(grid, model, pi_g)
bound = tb.value_difference_bound(grid, model, pi_g)
print(f"J_true - J_model = {lem_g.lhs:+.4f};  Lemma 1 residual {lem_g.residual:+.1e};  "
      f"printed Eq. 3 residual {lem_g.printed_residual:+.1e} (same rewards)")
print(f"Corollary 2 proof residual {dev_g.proof_residual:+.1e};  printed Eq. 5 residual {dev_g.printed_residual:+.3e}")
print(f"max |V_true - V_model| = {bound.actual:.3f} <= deviation bound {bound.deviation:.3f} "
      f"<= span bound {bound.span:.3f} <= Eq. 15 {bound.eq15:.3f} <= Eq. 16 {bound.eq16:.3f}")

# %% [markdown]
# ### Heatmaps
# Left: $A_{\text{model}}(s, s')$ for all 25x25 pairs. Right: the per-state expected model-advantage
# $\mathbb{E}_{s'\sim P^\pi_{\text{true}}(s)} A_{\text{model}}(s, s')$ on the grid layout. It is zero in $A$
# and $B$, where both models teleport alike, positive elsewhere (the non-slipping true moves reach better
# states than the model expects), and largest just below $A$, whose +10 the true dynamics reach reliably.
# Weighted by $\frac{1}{1-\gamma} d_{\text{true}}$ these numbers sum to $J_{\text{true}} - J_{\text{model}}$.

# %%
A_g = tb.model_advantage(model, pi_g)
per_state = tb.mean_model_advantage(grid, model, pi_g).reshape(5, 5)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
lim = np.abs(A_g).max()
im = axes[0].imshow(A_g, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[0].set(title=r"$A^\pi_{\mathrm{model}}(s, s')$", xlabel="next state s'", ylabel="state s")
fig.colorbar(im, ax=axes[0])
lim2 = np.abs(per_state).max()
im = axes[1].imshow(per_state, cmap="RdBu_r", vmin=-lim2, vmax=lim2)
for (r, c), v in np.ndenumerate(per_state):
    axes[1].text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8)
axes[1].set(title=r"$\mathbb{E}_{s'\sim P_{\mathrm{true}}}A_{\mathrm{model}}(s,s')$", xticks=[], yticks=[])
fig.colorbar(im, ax=axes[1])
fig.tight_layout()
plt.show()
