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

# %% [raw]
# # ASSIGNMENT CONFIG
# name: a4_tabular_mbrl_loop
# init_cell: true
# check_all_cell: false
# export_cell: false
# tests:
#   files: true
#   ok_format: false
# autograder_files:
# - grading_utils.py

# %% [markdown]
# # Assignment 4: the tabular model-based loop of Algorithm 2 — model steps, value refresh, Lemma 1 as a check
#
# *Modhe et al. (2021), "Model-Advantage Optimization for Model-Based RL", Algorithm 2 and Eq. 10.*
#
# Algorithm 2 learns a model $P_\phi(s'|s,a) = \mathrm{softmax}(\phi_{s,a,\cdot})$ by gradient steps on the
# model-advantage upper bound (Eq. 10)
# $$L_1^U(\phi) = \frac1N\sum_{i=1}^N \big|V(s'_i) - P_\phi(s_i,a_i)\cdot V\big|,$$
# holding a value estimate $V$ fixed, and *refreshes* $V$ in the current model every few steps (lines 7-8). Here
# the refresh is exact: $V = V^\pi_{M_\phi}$, the value of the policy in the learned model. You will write the
# model step, the refresh, Lemma 1's check of the learned model, and the loop.
#
# Conventions: `logits` `(S, A, S)`; transitions are integer arrays `s, a, s2` `(N,)`; values unnormalized.
# You may use the `TabularMDP` container (`M.dense_P()`, `M.R`, `M.p0`, `M.gamma`, `M.replace(...)`) and
# `random_mdp`; write everything else with numpy. The grader calls your functions on its own instances.

# %%
import numpy as np

from tabular import TabularMDP
from tabular import random_mdp

np.set_printoptions(precision=4, suppress=True)

# %% [raw]
# # BEGIN QUESTION
# name: q1

# %% [markdown]
# ## Q1. One model step
# Write `ma_l1_step(logits, V, s, a, s2, lr)` returning the logits after one gradient-descent step of size `lr`
# on $L_1^U$ (use $\frac{d}{dx}|x| = \mathrm{sign}(x)$, with $\mathrm{sign}(0) = 0$). Hint:
# $\partial (P_\phi(s,a)\cdot V)/\partial \phi_{s,a,x} = P_\phi(x|s,a)\,(V(x) - P_\phi(s,a)\cdot V)$.

# %% [raw]
# # BEGIN SOLUTION

# %%
def ma_l1_step(logits, V, s, a, s2, lr):
    # BEGIN SOLUTION
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    pV = p @ V  # (S, A)
    delta = V[s2] - pV[s, a]
    W = np.zeros(pV.shape)
    np.add.at(W, (s, a), np.sign(delta))
    grad = -(W / len(s))[..., None] * p * (V - pV[..., None])
    return logits - lr * grad
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q1_descends(ma_l1_step):
    # a small step lowers the loss (first order), and lr = 0 changes nothing
    import numpy as np
    rng = np.random.default_rng(1)
    S, A, N = 4, 2, 30
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    s, a, s2 = rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N)

    def loss(l):
        p = np.exp(l) / np.exp(l).sum(-1, keepdims=True)
        return np.abs(V[s2] - (p @ V)[s, a]).mean()
    new = ma_l1_step(logits, V, s, a, s2, 1e-3)
    assert np.shape(new) == (S, A, S), f"expected shape {(S, A, S)}; got {np.shape(new)}"
    assert loss(new) < loss(logits), "a small step must lower the loss"
    np.testing.assert_array_equal(ma_l1_step(logits, V, s, a, s2, 0.0), logits)

test_q1_descends(ma_l1_step)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q1_random(ma_l1_step):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_objective_instance

    def case(rng):
        M, b, logits, V = random_objective_instance(rng)
        return ma_l1_step(logits, V, b.s, b.a, b.s2, 0.3), logits - 0.3 * tb.ma_upper_l1_loss(logits, V, b)[1]
    assert_on_random_instances(ma_l1_step, case, n=5)

test_q1_random(ma_l1_step)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2

# %% [markdown]
# ## Q2. The value refresh
# Write `refresh_value(logits, R, pi, gamma)` returning $V^\pi_{M_\phi}$ `(S,)`, the value of `pi` in the model
# with dynamics $\mathrm{softmax}(\phi)$ and rewards `R` `(S, A)`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def refresh_value(logits, R, pi, gamma):
    # BEGIN SOLUTION
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    P_pi = np.einsum("sa,sat->st", pi, p)
    return np.linalg.solve(np.eye(len(R)) - gamma * P_pi, (pi * R).sum(axis=1))
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q2_uniform_model(refresh_value):
    # a uniform model over 2 states, reward 1 everywhere: V = 1 / (1 - gamma) in both states
    import numpy as np
    V = refresh_value(np.zeros((2, 1, 2)), np.ones((2, 1)), np.ones((2, 1)), 0.9)
    assert np.shape(V) == (2,), f"expected shape (2,); got {np.shape(V)}"
    np.testing.assert_allclose(V, [10.0, 10.0], atol=1e-9)
    V = refresh_value(np.zeros((2, 1, 2)), np.array([[1.0], [0.0]]), np.ones((2, 1)), 0.999)
    np.testing.assert_allclose(V.mean(), 0.5 / (1 - 0.999), rtol=1e-9)  # symmetric: the mean value is exact

test_q2_uniform_model(refresh_value)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q2_random(refresh_value):
    import numpy as np
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        logits = rng.normal(size=(M.S, M.A, M.S))
        return (refresh_value(logits, M.R, pi, M.gamma),
                tb.policy_evaluation(M.replace(P=tb.model_probs(logits)), pi))
    assert_on_random_instances(refresh_value, case)

test_q2_random(refresh_value)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3

# %% [markdown]
# ## Q3. Lemma 1 as a check of the learned model
# Write `gap_and_terms(M, logits, pi)` returning the pair `(gap, ma_term)`: the performance gap
# $J_M(\pi) - J_{M_\phi}(\pi)$ between the true model and the learned one ($M_\phi$: $M$ with dynamics
# $\mathrm{softmax}(\phi)$, same rewards, start distribution and $\gamma$), and Lemma 1's model-advantage term
# $\frac{1}{1-\gamma}\mathbb{E}_{s\sim d_M}\mathbb{E}_{s'\sim P^\pi_M(s)}[A^\pi_{M_\phi}(s, s')]$ with
# $A^\pi_{M_\phi}(s,s') = \gamma\,(V_{M_\phi}(s') - \mathbb{E}_{s''\sim P^\pi_{M_\phi}(s)} V_{M_\phi}(s''))$. With equal
# rewards Lemma 1 says the two are equal: their difference is the *residual* you can watch during training.

# %% [raw]
# # BEGIN SOLUTION

# %%
def gap_and_terms(M, logits, pi):
    # BEGIN SOLUTION
    P, g = M.dense_P(), M.gamma
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    r = (pi * M.R).sum(axis=1)
    P_pi, Pphi_pi = np.einsum("sa,sat->st", pi, P), np.einsum("sa,sat->st", pi, p)
    I = np.eye(M.S)
    V, V2 = np.linalg.solve(I - g * P_pi, r), np.linalg.solve(I - g * Pphi_pi, r)
    w = np.linalg.solve((I - g * P_pi).T, M.p0)  # discounted visit counts: d_M / (1 - gamma)
    ma = w @ (g * (P_pi @ V2 - Pphi_pi @ V2))
    return float(M.p0 @ V - M.p0 @ V2), float(ma)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q3_lemma1_residual_vanishes(gap_and_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(3)
    M = random_mdp(rng, S=5, A=2, gamma=0.9)
    pi = rng.dirichlet(np.ones(2), size=5)
    gap, ma = gap_and_terms(M, rng.normal(size=(5, 2, 5)), pi)
    assert abs(gap) > 1e-3, "a random model should have a performance gap"
    assert abs(gap - ma) < 1e-9, f"Lemma 1: the gap {gap} must equal the model-advantage term {ma}"
    z = np.log(np.maximum(M.dense_P(), 1e-300))  # the true model as logits: no gap
    np.testing.assert_allclose(gap_and_terms(M, z, pi), (0.0, 0.0), atol=1e-9)

test_q3_lemma1_residual_vanishes(gap_and_terms)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q3_random(gap_and_terms):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        logits = rng.normal(size=(M.S, M.A, M.S))
        L = tb.simulation_lemma(M, M.replace(P=tb.model_probs(logits)), pi)
        return gap_and_terms(M, logits, pi), (L.lhs, L.model_advantage_term)
    assert_on_random_instances(gap_and_terms, case)

test_q3_random(gap_and_terms)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4

# %% [markdown]
# ## Q4. The loop
# Write `mbrl_loop(M, logits, pi, batches, lr, refresh_every)`: starting from `logits`, for `k, (s, a, s2)` in
# `enumerate(batches)`, refresh $V$ (Q2, with `M.R`, `pi`, `M.gamma`) when `k % refresh_every == 0`, then take one
# model step (Q1) on that batch. Return `(logits, gaps)`: the final logits and the array of the gaps
# $J_M - J_{M_\phi}$ (Q3) after each step.

# %% [raw]
# # BEGIN SOLUTION

# %%
def mbrl_loop(M, logits, pi, batches, lr, refresh_every):
    # BEGIN SOLUTION
    gaps = []
    for k, (s, a, s2) in enumerate(batches):
        if k % refresh_every == 0:
            V = refresh_value(logits, M.R, pi, M.gamma)
        logits = ma_l1_step(logits, V, s, a, s2, lr)
        gaps.append(gap_and_terms(M, logits, pi)[0])
    return logits, np.array(gaps)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q4_learns_and_reports_consistently(mbrl_loop, gap_and_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(4)
    M = random_mdp(rng, S=4, A=2, gamma=0.9)
    pi = rng.dirichlet(np.ones(2), size=4)
    batches = [(rng.integers(0, 4, 50), rng.integers(0, 2, 50), rng.integers(0, 4, 50)) for _ in range(8)]
    logits0 = rng.normal(size=(4, 2, 4))
    logits, gaps = mbrl_loop(M, logits0, pi, batches, 0.5, 3)
    assert np.shape(gaps) == (8,) and np.shape(logits) == (4, 2, 4)
    assert abs(gaps[-1] - gap_and_terms(M, logits, pi)[0]) < 1e-12, "the last gap is that of the returned logits"
    same, gaps0 = mbrl_loop(M, logits0, pi, batches, 0.0, 3)  # no step: nothing moves
    np.testing.assert_array_equal(same, logits0)
    np.testing.assert_allclose(gaps0, gap_and_terms(M, logits0, pi)[0], atol=1e-12)

test_q4_learns_and_reports_consistently(mbrl_loop, gap_and_terms)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 3
""" # END TEST CONFIG
def test_q4_random(mbrl_loop):
    import tabular as tb
    from grading_utils import assert_on_random_instances, mbrl_loop_case

    assert_on_random_instances(mbrl_loop, lambda rng: mbrl_loop_case(rng, mbrl_loop), n=3)

test_q4_random(mbrl_loop)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Watch the loop on an MDP with deterministic true dynamics, on-policy data (`sample_transitions` draws
# $s \sim d_\pi$), with and without refreshing the value; then the same on a random *stochastic* MDP.

# %%
from tabular import sample_transitions

def run(M, pi, seed, steps=100, lr=3.0):
    rng = np.random.default_rng(seed)
    batches = [(b.s, b.a, b.s2) for b in (sample_transitions(M, pi, 300, rng) for _ in range(steps))]
    logits0 = rng.normal(size=(M.S, M.A, M.S))
    for every in (5, 10**6):
        _, gaps = mbrl_loop(M, logits0, pi, batches, lr, every)
        label = "every 5 steps" if every == 5 else "never"
        print(f"  refresh {label:>13}: |gap| at start {abs(gap_and_terms(M, logits0, pi)[0]):.4f}, "
              f"after 10, 50, 100 steps {np.round(np.abs(gaps[[9, 49, 99]]), 4)}")

rng = np.random.default_rng(3)
P = np.zeros((6, 2, 6))
P[np.arange(6)[:, None], np.arange(2)[None], rng.integers(0, 6, (6, 2))] = 1.0  # deterministic moves
M_det = TabularMDP(P, rng.uniform(0, 1, (6, 2)), np.full(6, 1 / 6), 0.9)
pi_det = rng.dirichlet(np.ones(2), size=6)
print("deterministic dynamics:")
run(M_det, pi_det, 3)
rng = np.random.default_rng(0)
M_sto = random_mdp(rng, S=6, A=2, gamma=0.9)
print("stochastic dynamics:")
run(M_sto, rng.dirichlet(np.ones(2), size=6), 0, lr=1.0)

# %% [raw]
# # BEGIN QUESTION
# name: q5
# manual: true
# points: 2

# %% [markdown]
# ## Q5 (written). Why refresh the value, and why is that not enough?
# (a) Using the deterministic runs above, explain what the model learns when $V$ is never refreshed (it stays the
# value of the *initial* model), and why the refreshed loop reaches a smaller gap. (b) On the stochastic MDP the gap
# does not shrink even with the refresh. Why? (Hint: what does minimizing $\mathbb{E}|V(s') - c|$ over a number $c$
# give, and what does Lemma 1 need $P_\phi(s,a)\cdot V$ to be?)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# (a) Without a refresh the model is fitted to be value-equivalent for the initial model's $V$ only: Eq. 10 is zero
# for any model with $P_\phi(s,a)\cdot V = V(s')$ on the data for that one function, and many wrong models satisfy
# it. Lemma 1 measures the gap with $V^\pi_{M_\phi}$ of the *current* model, so a stale $V$ optimizes the wrong
# target and the gap stalls (here 1.03 after 100 steps vs 0.06 with a refresh every 5 steps); refreshing
# re-targets the model at the value Lemma 1 uses. (b) With stochastic dynamics $V(s')$ is random given $(s, a)$;
# $\mathbb{E}|V(s') - c|$ is minimized by the *median* of $V(s')$, while Lemma 1's gap vanishes when $P_\phi(s,a)\cdot V$
# equals the *mean* $\mathbb{E}_{P}[V(s')]$. The L1 bound keeps an irreducible part (the spread of $V(s')$) and its
# minimizer is biased, so the gap need not shrink; a squared loss (VAML) has the mean as minimizer.
#
# **Rubric (2 points).** (a) 1 point: a stale $V$ makes the model value-equivalent for the wrong function, with the
# two runs' numbers (half a point without the numbers). (b) 1 point: median versus mean (half a point for "the
# bound is loose with stochastic dynamics" without the minimizer).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
