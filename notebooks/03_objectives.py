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
# # Model-learning objectives compared: MLE, direct model-advantage (L1/L2), the upper bound, VAML
#
# *Modhe et al. (2021), Model-Advantage Optimization for Model-Based RL, Section 3 (Eq. 6-10).*
#
# A tabular model $P_\phi(s'|s,a) = \mathrm{softmax}(\phi[s,a,:])$ can be learned by
#
# | name (`tabular.EXACT_OBJECTIVES`) | objective (expectation over $s\sim d_{M,\pi}$, $a\sim\pi$, $s'\sim P_M$) |
# |---|---|
# | `mle` | $\mathbb{E}[-\log P_\phi(s'\mid s,a)]$ |
# | `ma_direct_l1` (Eq. 6/8) | $\big\lvert\tfrac{1}{1-\gamma}\mathbb{E}[\delta]\big\rvert$, $\;\delta = V(s') - P_\phi(s,a)\cdot V$ |
# | `ma_direct_l2` | $\big(\tfrac{1}{1-\gamma}\mathbb{E}[\delta]\big)^2$ |
# | `ma_l1` (Eq. 9/10) | $\mathbb{E}\lvert\delta\rvert$ |
# | `ma_vaml` (Sec. 3.2) | $\mathbb{E}[\delta^2]$ |
#
# This notebook puts them side by side on one small MDP: their landscapes along a path between two models,
# which model each prefers, the true performance gap each choice leaves, and why the upper bound gives a denser
# learning signal than the direct form. All objectives are exact (`tabular.exact_objective`) except in the last
# section, which samples (`tabular.sample_transitions`, `tabular.sample_trajectories`).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

import tabular as tb

np.set_printoptions(precision=4, suppress=True)

# %% tags=["parameters"]
QUICK = True  # False: finer path, more repeats and larger budgets in the sampling study
N_PATH = 61 if QUICK else 241  # points on the path between the two models
N_REPEATS = 30 if QUICK else 300  # sampled gradients per budget
BUDGETS = [40, 120, 400, 1200, 4000] if QUICK else [40, 120, 400, 1200, 4000, 12000, 40000]
SEED = 0

# %% [markdown]
# ## The MDP and two candidate models
# Six states, two actions, **deterministic** true dynamics (a random successor per $(s, a)$), rewards uniform in
# $[0, 1]$, $\gamma = 0.9$, uniform start, and a fixed stochastic policy $\pi$. Two models, both putting a
# little mass ($10^{-6}$) everywhere so that their logits are finite:
#
# * **model A ("likelihood-close")** keeps 80% of each row on the true successor and moves 20% to a random
#   other state: high likelihood, but the expected next value is wrong (too high in some rows, too low in others);
# * **model B ("value-equivalent")** keeps only 50% on the true successor and spreads 50% over a lower- and a
#   higher-valued state, weighted so that $P_B(s,a)\cdot V^\pi = V^\pi(s'_{\text{true}})$ exactly in every row
#   where both exist: poor likelihood, but the right expected value. Under $\pi$ it has the true value function.
#
# The path between them is linear in the logits, $\phi(\lambda) = (1-\lambda)\log P_A + \lambda\log P_B$, for
# $\lambda \in [-0.25, 1.25]$.

# %%
rng = np.random.default_rng(SEED)
S, A, gamma = 6, 2, 0.9
succ = rng.integers(0, S, size=(S, A))
P = np.eye(S)[succ]  # (S, A, S) one-hot
M = tb.TabularMDP(P, rng.uniform(0, 1, size=(S, A)), np.full(S, 1 / S), gamma)
pi = rng.dirichlet(np.ones(A), size=S)
V = tb.policy_evaluation(M, pi)

floor, m_A, m_B = 1e-6, 0.2, 0.5
P_A = (1 - floor) * P + floor / S
P_B = P_A.copy()
for s in range(S):
    for a in range(A):
        k = succ[s, a]
        other = rng.choice([x for x in range(S) if x != k])
        P_A[s, a, k] -= m_A
        P_A[s, a, other] += m_A
        lo, hi = [x for x in range(S) if V[x] < V[k]], [x for x in range(S) if V[x] > V[k]]
        if lo and hi:  # move m_B to (lo, hi) keeping P_B(s, a) . V = V[k] exactly (including the floor)
            l, h = rng.choice(lo), rng.choice(hi)
            target = (V[k] * (m_B + floor) - floor * V.mean()) / m_B
            w = (V[h] - target) / (V[h] - V[l])
            P_B[s, a, k] -= m_B
            P_B[s, a, l] += m_B * w
            P_B[s, a, h] += m_B * (1 - w)
logits_A, logits_B = np.log(P_A), np.log(P_B)
print("expected next value error, max over rows:  A", np.abs(P_A @ V - P @ V).max(), "  B", np.abs(P_B @ V - P @ V).max())

# %% [markdown]
# ## Landscapes along the path
# Each objective is evaluated with the value **refreshed** in the current model, $V = V^\pi_{M_{\phi(\lambda)}}$,
# as Algorithm 2 prescribes (lines 7-8). With a refreshed value the direct objective is exactly the performance
# gap: $\gamma\cdot L_1 = |J_M(\pi) - J_{M_\phi}(\pi)|$ (Lemma 1 with equal rewards). The triangle inequality
# (Eq. 9) makes the upper bound an upper bound: $\tfrac{1}{1-\gamma}L^U_1 \ge L_1$.

# %%
names = list(tb.EXACT_OBJECTIVES)  # mle, ma_direct_l1, ma_direct_l2, ma_l1, ma_vaml
lams = np.linspace(-0.25, 1.25, N_PATH)
J_true = tb.performance(M, pi)
values = {k: np.empty(N_PATH) for k in names}
gap = np.empty(N_PATH)
for i, lam in enumerate(lams):
    logits = (1 - lam) * logits_A + lam * logits_B
    M_phi = M.replace(P=tb.model_probs(logits))
    V_phi = tb.policy_evaluation(M_phi, pi)
    for k in names:
        values[k][i] = tb.exact_objective(k, M, pi, logits, V_phi)[0]
    gap[i] = abs(J_true - tb.performance(M_phi, pi))

H = 1 / (1 - gamma)
assert np.allclose(gamma * values["ma_direct_l1"], gap, atol=1e-9)  # Lemma 1
assert np.all(H * values["ma_l1"] >= values["ma_direct_l1"] - 1e-12)  # Eq. 9

fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
titles = {"mle": "MLE (cross-entropy)", "ma_direct_l1": "direct L1 (Eq. 8)", "ma_direct_l2": "direct L2",
          "ma_l1": "upper bound L1 (Eq. 10)", "ma_vaml": "VAML L2"}
for ax, k in zip(axes.flat, names):
    ax.plot(lams, values[k], "C0")
    i = int(np.argmin(values[k]))
    ax.plot(lams[i], values[k][i], "r*", ms=12, label=rf"argmin $\lambda$={lams[i]:.2f}")
    ax.set_title(titles[k])
    ax.legend(fontsize=8)
axes[0, 1].plot(lams, gap / gamma, "k--", lw=1, label=r"$|J_M - J_{M_\phi}|/\gamma$")
axes[0, 1].legend(fontsize=8)
axes[1, 0].plot(lams, values["ma_direct_l1"] / H, "C1--", lw=1, label=r"direct L1 $\cdot(1-\gamma)$ (below)")
axes[1, 0].legend(fontsize=8)
axes[1, 2].plot(lams, gap, "k")
axes[1, 2].set_title(r"true gap $|J_M(\pi) - J_{M_\phi}(\pi)|$")
for ax in axes.flat:
    for x, lab in ((0, "A"), (1, "B")):
        ax.axvline(x, color="grey", lw=0.6, ls=":")
        ax.text(x + 0.02, 0.03, lab, transform=ax.get_xaxis_transform(), ha="left", va="bottom", fontsize=8,
                color="grey")  # inside the axes, clear of the title
for ax in axes[1]:
    ax.set_xlabel(r"$\lambda$ (0 = model A, 1 = model B)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Which model does each objective prefer, and what gap does that choice leave?

# %%
iA, iB = int(np.argmin(np.abs(lams))), int(np.argmin(np.abs(lams - 1)))
print(f"{'objective':14s} {'at A':>9s} {'at B':>9s}  prefers  {'argmin on path':>14s}  gap left there")
for k in names:
    v = values[k]
    i = int(np.argmin(v))
    print(f"{k:14s} {v[iA]:9.4f} {v[iB]:9.4f}  {'A' if v[iA] < v[iB] else 'B':^7s}  "
          f"lambda={lams[i]:+.2f}     {gap[i]:.4f}")
print(f"true gap: A {gap[iA]:.4f}, B {gap[iB]:.4f}")
signed_gap = [J_true - tb.performance(M.replace(P=tb.model_probs((1 - l) * logits_A + l * logits_B)), pi) for l in lams]
crossings = lams[1:][(np.diff(np.sign(signed_gap)) != 0) & (np.abs(lams[1:] - 1) > 0.1)]
print("the direct objective also vanishes (the gap changes sign) near lambda =", np.round(crossings, 2))

# %% [markdown]
# **What this shows.**
#
# * **MLE prefers model A**: it only sees how much probability lands on the observed successor, so it pays for
#   B's spread even though that spread is harmless for the value, and it stops close to A, leaving a nonzero gap.
# * **The value-aware objectives all prefer model B** (zero gap): with deterministic true dynamics, the residual
#   $\delta$ is exactly the error in the expected next value, which B gets right.
# * **The direct objective has spurious zeros**: along the path the gap changes sign, so there
#   $J_{M_\phi} = J_M$ and $L_1 = 0$ although every row of the model is wrong (the row errors cancel in the
#   discounted sum). The cancellation is a property of this one policy: Eq. 8 is taken under $d_{M,\pi}$, so the
#   model is "right" only for $\pi$; for another policy the same row errors weigh differently and the gap is not
#   zero (change `pi` above and the zeros move or vanish). The upper bound and VAML penalize each row's error separately and have no such zeros. The
#   price: with *stochastic* true dynamics $\mathbb{E}|\delta|$ keeps an irreducible part (the spread of $V(s')$
#   around its mean), so the bound is loose there, and its per-row minimizer is the conditional median, not the
#   mean, of $V(s')$.

# %% [markdown]
# ## Why the upper bound gives a denser learning signal
# Eq. 8 needs whole trajectories from the start distribution and takes one absolute value of one discounted sum
# over all of them: every transition's gradient is multiplied by the same sign, $\mathrm{sign}(X)$. When $X$ is
# small compared with its sampling noise, that sign is a coin flip and the whole step points the wrong way.
# Eq. 10 takes $|\delta|$ per transition, so each sampled transition contributes its own correctly signed
# gradient for its own row, and any i.i.d. transitions $s\sim d$ (a replay buffer) will do.
#
# Compare each objective's sampled gradient with its exact gradient for the same number of environment
# transitions: the upper bound from i.i.d. transitions, the direct form from trajectories of length 40
# ($\gamma^{40}\approx 0.015$). Two models, values refreshed in each: a randomly initialized one (the start of
# learning, large gap) and model A (already close in performance, small gap).

# %%
def cosine(x, y):
    nx = np.linalg.norm(x)
    return float((x * y).sum() / (nx * np.linalg.norm(y))) if nx > 0 else 0.0


def gradient_quality(logits, T=40):
    """Cosines (budgets x repeats) between sampled and exact gradients, for the upper bound and the direct form."""
    V_phi = tb.policy_evaluation(M.replace(P=tb.model_probs(logits)), pi)
    ex_u = tb.exact_objective("ma_l1", M, pi, logits, V_phi)[1]
    ex_d = tb.exact_objective("ma_direct_l1", M, pi, logits, V_phi)[1]
    cos_u, cos_d = np.empty((len(BUDGETS), N_REPEATS)), np.empty((len(BUDGETS), N_REPEATS))
    for j, N in enumerate(BUDGETS):
        for r in range(N_REPEATS):
            cos_u[j, r] = cosine(tb.ma_l1_loss(logits, V_phi, tb.sample_transitions(M, pi, N, rng))[1], ex_u)
            bt = tb.sample_trajectories(M, pi, max(1, N // T), T, rng)
            cos_d[j, r] = cosine(tb.ma_direct_loss(logits, V_phi, bt, gamma, 1)[1], ex_d)
    return abs(J_true - M.p0 @ V_phi), cos_u, cos_d


fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
for row, (label, logits) in enumerate((("random model", rng.normal(size=(S, A, S))), ("model A", logits_A))):
    g, cos_u, cos_d = gradient_quality(logits)
    for c, lab, col in ((cos_u, "upper bound (Eq. 10), i.i.d. transitions", "C0"),
                        (cos_d, "direct (Eq. 8), 40-step trajectories", "C3")):
        m, se = c.mean(1), c.std(1) / np.sqrt(N_REPEATS)
        axes[row, 0].errorbar(BUDGETS, m, yerr=se, fmt="o-", color=col, label=lab, capsize=3)
        axes[row, 1].plot(BUDGETS, (c < 0).mean(1), "o-", color=col, label=lab)
    axes[row, 0].set(xscale="log", ylim=(-0.2, 1.05), ylabel="cosine(sampled, exact gradient)",
                     title=f"{label}: gap {g:.3f}; gradient quality (mean ± s.e.)")
    axes[row, 1].set(xscale="log", ylabel="fraction of batches", title=f"{label}: sampled gradient points away")
axes[0, 0].legend(fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("environment transitions per gradient")
fig.tight_layout()
plt.show()

# %% [markdown]
# (In quick mode each point averages `N_REPEATS = 30` sampled gradients, so the curves wiggle by about their
# error bars; `QUICK = False` uses 300 and more budgets. The statements below hold at both settings.)
#
# With the same number of environment steps the upper bound's sampled gradient is well aligned with its exact
# gradient from a few dozen transitions on, for both models. The direct objective's gradient needs on the order of
# a thousand transitions far from a good model, and near a good model (small gap, the regime where learning
# spends most of its time) it points the wrong way in a large fraction of batches even with thousands: its single
# sign $\mathrm{sign}(X)$ is decided by a small mean buried in trajectory noise. This is the practical argument of
# Sec. 3.2 for optimizing the upper bound, used by notebook 04's gridworld runs and the deep experiments.

# %% [markdown]
# ## Erratum: does L2 VAML upper-bound the direct L2 objective? (Sec. 3.2)
# The paper says VAML does not upper-bound the squared direct objective. Whether it does depends on the weighting.
# With the normalized distribution $d$, Jensen gives $\mathbb{E}_d[\delta^2] \ge (\mathbb{E}_d\delta)^2$: VAML *does*
# bound it. With the unnormalized $\sum_t\gamma^t$ weighting (total mass $H = 1/(1-\gamma)$), VAML is
# $H\,\mathbb{E}[\delta^2]$ and direct L2 is $H^2(\mathbb{E}\delta)^2$, so VAML bounds it only when
# $\operatorname{Var}\delta \ge (H-1)(\mathbb{E}\delta)^2$; what always holds is direct L2 $\le H\cdot$VAML.
# `tb.l2_relation` computes both moments exactly. First a two-state model whose residual is the constant
# $\delta = 1$ (the true move reaches the state of value 1, the model predicts the state of value 0):

# %%
M1 = tb.TabularMDP(np.array([[[0.0, 1.0]], [[0.0, 1.0]]]), np.zeros((2, 1)), np.array([1.0, 0.0]), 0.9)
r = tb.l2_relation(M1, np.ones((2, 1)), np.array([[[20.0, -20.0]], [[20.0, -20.0]]]), np.array([0.0, 1.0]))
print(f"normalized:   VAML {r.vaml:.3f} >= direct L2 {r.direct:.3f}")
print(f"unnormalized: VAML {r.vaml_unnormalized:.3f} <  direct L2 {r.direct_unnormalized:.3f}  "
      f"(H = {r.H:.0f}; H * VAML = {r.H * r.vaml_unnormalized:.1f} >= direct L2)")

# %% [markdown]
# And along this notebook's path of models between A and B (each with its own value $V^\pi_{M_\phi}$), how often
# does each inequality hold?

# %%
rels = []
for lam in lams:
    logits = (1 - lam) * logits_A + lam * logits_B
    rels.append(tb.l2_relation(M, pi, logits, tb.policy_evaluation(M.replace(P=tb.model_probs(logits)), pi)))
jensen = np.mean([x.vaml >= x.direct - 1e-15 for x in rels])
unnorm = np.mean([x.vaml_unnormalized >= x.direct_unnormalized - 1e-15 for x in rels])
always = np.mean([x.direct_unnormalized <= x.H * x.vaml_unnormalized + 1e-15 for x in rels])
print(f"{len(rels)} models: normalized VAML >= direct L2 in {jensen:.0%}; unnormalized in {unnorm:.0%}; "
      f"direct L2 <= H * VAML in {always:.0%}")
