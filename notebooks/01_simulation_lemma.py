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
# ## Lemma 1 with unnormalized values
# With unnormalized values $V = \sum_t \gamma^t r_t$ the exact identity is
#
# $$J_M - J_{M'} = \tfrac{1}{1-\gamma}\mathbb{E}_{d_M}\mathbb{E}_{P^\pi_M}[A_{M'}] + \tfrac{1}{1-\gamma}\mathbb{E}_{d_M}[R^\pi_M - R^\pi_{M'}].$$
#
# Eq. 3 as printed has no $1/(1-\gamma)$ on the reward term. A residual is always the left side minus the right
# side; below, `residual` is that of the identity above and `printed residual` that of printed Eq. 3.

# %%
lem = tb.simulation_lemma(M, M2, pi)
print(f"lhs={lem.lhs:+.6f}  rhs={lem.rhs:+.6f}  residual={lem.residual:+.1e}  "
      f"printed Eq. 3 rhs={lem.printed_rhs:+.6f}  printed residual={lem.printed_residual:+.1e}")

# %% [markdown]
# The printed form is off here, and the residual is not round-off. Printed Eq. 3 is exact in one of the two
# value conventions the paper uses (main text: unnormalized; Appendix A: $(1-\gamma)$-normalized). Which one, and
# the residual in closed form, are assignment 1's Q5 and Q6: work them out there (`tb.simulation_lemma` has a
# `normalized` flag to check your answer afterwards).

# %% [markdown]
# ## Corollary 2 and Eq. 5
# With the Bellman operator $\mathcal{T}^\pi_M V = R^\pi_M + \gamma P^\pi_M V$ (Eq. 4), Eq. 5 as printed reads
# $J_M - J_{M'} = \frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_M - \mathcal{T}_{M'} V_M]$. The appendix proof derives
# a different pairing of state distribution and value function; `tb.deviation_error` evaluates the printed form
# and the two forms that do hold (`proof_form`, `dual_form`). Which pairings those are, and a counterexample to
# the printed form, are assignment 3 (after notebook 02).

# %%
dev = tb.deviation_error(M, M2, pi)
print(f"lhs {dev.lhs:+.6f}   proof form {dev.proof_form:+.6f}   dual form {dev.dual_form:+.6f}   "
      f"printed Eq. 5 {dev.printed_form:+.6f}  (residual {dev.printed_residual:+.3e})")

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
# Left: the model-advantage $A_{\text{model}}(s_0, s')$ of one state, $s_0$ just below $A$, for every next cell $s'$
# on the grid layout (a row of the $25\times25$ matrix, drawn where the cells are). Right: the per-state expected
# model-advantage $\mathbb{E}_{s'\sim P^\pi_{\text{true}}(s)} A_{\text{model}}(s, s')$ on the grid layout. It is zero in $A$
# and $B$, where both models teleport alike, positive elsewhere (the non-slipping true moves reach better
# states than the model expects), and largest just below $A$, whose +10 the true dynamics reach reliably.
# Weighted by $\frac{1}{1-\gamma} d_{\text{true}}$ these numbers sum to $J_{\text{true}} - J_{\text{model}}$.

# %%
A_g = tb.model_advantage(model, pi_g)
per_state = tb.mean_model_advantage(grid, model, pi_g).reshape(5, 5)
s0 = 1 * 5 + 1  # row 1, column 1: just below A = (0, 1)
row = A_g[s0].reshape(5, 5)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, vals, title in ((axes[0], row, rf"$A^\pi_{{\mathrm{{model}}}}(s_0, s')$, $s_0$ = row 1, col 1"),
                        (axes[1], per_state, r"$\mathbb{E}_{s'\sim P_{\mathrm{true}}}A_{\mathrm{model}}(s,s')$")):
    lim = np.abs(vals).max()
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (r, c), v in np.ndenumerate(vals):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8)
    for (r, c), lab in (((0, 1), "A"), ((0, 3), "B")):
        ax.text(c, r - 0.32, lab, ha="center", va="center", fontsize=7, weight="bold")
    ax.set(title=title, xticks=[], yticks=[])
    fig.colorbar(im, ax=ax)
axes[0].add_patch(plt.Rectangle((0.5, 0.5), 1, 1, fill=False, lw=2, color="k"))
fig.tight_layout()
plt.show()
