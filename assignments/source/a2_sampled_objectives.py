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
# name: a2_sampled_objectives
# init_cell: true
# check_all_cell: false
# export_cell: false
# tests:
#   files: true
#   ok_format: false
# autograder_files:
# - grading_utils.py

# %% [markdown]
# # Assignment 2: the sampled model-advantage objectives (Eq. 8 and Eq. 10) and their gradients
#
# *Modhe et al. (2021), "Model-Advantage Optimization for Model-Based RL", Sections 3.1-3.2.*
#
# A tabular model predicts next states with a softmax over logits,
# $P_\phi(s' \mid s, a) = \mathrm{softmax}(\phi[s, a, :])_{s'}$, with `logits` of shape `(S, A, S)`. A value
# estimate `V` `(S,)` is held **fixed** (the paper does not differentiate through $V$). For a transition
# $(s, a, s')$ from the true environment, the residual
# $$\delta = V(s') - \sum_x P_\phi(x \mid s, a)\, V(x)$$
# is the model-advantage of Eq. 2 divided by $\gamma$, evaluated with the model's prediction for the *taken*
# action $a$. You will implement, with numpy only, three objectives and their gradients w.r.t. the logits:
#
# * the **upper bound** of Eq. 10: $\hat L^U_1 = \frac1N \sum_i |\delta_i|$ over $N$ transitions;
# * the **direct** objective of Eq. 8: $\hat L_1 = \big|\frac1m \sum_{\text{episodes}} \sum_t \gamma^t \delta_t\big|$
#   over $m$ episodes, where $t$ is each transition's time step within its episode;
# * the **L2 VAML** objective (Sec. 3.2): $\frac1N \sum_i \delta_i^2$.
#
# Transitions come as integer arrays `s, a, s2` `(N,)` (and, for Eq. 8, `t, episode` `(N,)`). Use the
# subgradient $\mathrm{sign}(0) = 0$ for $|x|$. The hidden tests compare values and gradients with a reference
# implementation on fresh random data, and fail if your functions call the `tabular` package's own objectives.

# %%
import numpy as np

np.set_printoptions(precision=4, suppress=True)

# %% [raw]
# # BEGIN QUESTION
# name: q1

# %% [markdown]
# ## Q1. The softmax model
# Write `softmax_model(logits)` returning $P_\phi$ `(S, A, S)`. Make it numerically stable: logits of size
# 1000 must not overflow.

# %% [raw]
# # BEGIN SOLUTION

# %%
def softmax_model(logits):
    # BEGIN SOLUTION
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q1_properties(softmax_model):
    import numpy as np
    p = softmax_model(np.zeros((2, 3, 2)))
    assert np.shape(p) == (2, 3, 2), f"expected shape (S, A, S) = (2, 3, 2); got {np.shape(p)}"
    np.testing.assert_allclose(p, 0.5)
    big = softmax_model(np.array([[[1000.0, 0.0]], [[0.0, 1000.0]]]))
    assert np.all(np.isfinite(big)), "softmax_model overflowed on logits of size 1000"
    np.testing.assert_allclose(big[:, 0], [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)

test_q1_properties(softmax_model)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 1
""" # END TEST CONFIG
def test_q1_random_logits(softmax_model):
    import tabular as tb
    from grading_utils import assert_on_random_instances

    def case(rng):
        S, A = rng.integers(1, 7, size=2)
        logits = rng.normal(scale=3, size=(S, A, S))
        return softmax_model(logits), tb.model_probs(logits)
    assert_on_random_instances(softmax_model, case, n=5)

test_q1_random_logits(softmax_model)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2

# %% [markdown]
# ## Q2. Residuals and their Jacobian
# Write `residuals(logits, V, s, a, s2)` returning `(delta, jac)`: `delta` `(N,)` the residuals $\delta_i$ and
# `jac` `(N, S)` with `jac[i, x]` $= \partial\, (P_\phi(s_i, a_i) \cdot V) / \partial\, \phi[s_i, a_i, x]$.
# Hint: for $p = \mathrm{softmax}(z)$, $\partial p_y / \partial z_x = p_y(\mathbb{1}[x = y] - p_x)$, so
# $\partial (p \cdot V)/\partial z_x = p_x (V_x - p \cdot V)$. Every objective below is built from these two.

# %% [raw]
# # BEGIN SOLUTION

# %%
def residuals(logits, V, s, a, s2):
    # BEGIN SOLUTION
    p = softmax_model(logits)[s, a]  # (N, S)
    pV = p @ V
    return V[s2] - pV, p * (V[None, :] - pV[:, None])
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q2_uniform_model(residuals):
    # uniform model over 2 states, V = (0, 1): the prediction is 1/2, so delta = V[s2] - 1/2;
    # d(p.V)/dz = p * (V - p.V) = (1/2 * -1/2, 1/2 * 1/2)
    import numpy as np
    delta, jac = residuals(np.zeros((2, 1, 2)), np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 0]),
                           np.array([1, 0]))
    assert np.shape(delta) == (2,) and np.shape(jac) == (2, 2), (np.shape(delta), np.shape(jac))
    np.testing.assert_allclose(delta, [0.5, -0.5])
    np.testing.assert_allclose(jac, [[-0.25, 0.25], [-0.25, 0.25]])

test_q2_uniform_model(residuals)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q2_random(residuals):
    from grading_utils import assert_on_random_instances, residuals_case

    def case(rng):  # outputs (delta, jac); the reference Jacobian by central differences of the reference model
        args, want = residuals_case(rng)
        return residuals(*args), want
    assert_on_random_instances(residuals, case, n=3, atol=1e-6)

test_q2_random(residuals)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3

# %% [markdown]
# ## Q3. The model-advantage upper bound, Eq. 10
# Write `upper_bound_l1(logits, V, s, a, s2)` returning `(value, grad)`: $\hat L^U_1 = \frac1N\sum_i|\delta_i|$
# and its gradient `(S, A, S)` w.r.t. the logits. Several transitions may share a row $(s, a)$: their
# contributions add up (`np.add.at` helps).

# %% [raw]
# # BEGIN SOLUTION

# %%
def upper_bound_l1(logits, V, s, a, s2):
    # BEGIN SOLUTION
    delta, jac = residuals(logits, V, s, a, s2)
    grad = np.zeros_like(logits, dtype=float)
    np.add.at(grad, (s, a), -np.sign(delta)[:, None] * jac / len(s))
    return float(np.abs(delta).mean()), grad
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q3_finite_differences(upper_bound_l1):
    import numpy as np
    rng = np.random.default_rng(3)
    S, A, N, eps = 3, 2, 20, 1e-6
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    s, a, s2 = rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N)
    value, grad = upper_bound_l1(logits, V, s, a, s2)
    assert np.ndim(value) == 0 and np.shape(grad) == (S, A, S), (np.shape(value), np.shape(grad))
    num = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        e = np.zeros_like(logits)
        e[idx] = eps
        num[idx] = (upper_bound_l1(logits + e, V, s, a, s2)[0] - upper_bound_l1(logits - e, V, s, a, s2)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-6, err_msg="gradient vs central differences")

test_q3_finite_differences(upper_bound_l1)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q3_random(upper_bound_l1):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_objective_instance

    def case(rng):  # outputs (value, grad)
        M, b, logits, V = random_objective_instance(rng)
        return upper_bound_l1(logits, V, b.s, b.a, b.s2), tb.ma_upper_l1_loss(logits, V, b)
    assert_on_random_instances(upper_bound_l1, case, n=5)

test_q3_random(upper_bound_l1)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4

# %% [markdown]
# ## Q4. The direct model-advantage objective, Eq. 8
# Write `direct_l1(logits, V, s, a, s2, t, episode, gamma)` returning `(value, grad)` for
# $$\hat L_1 = \Big|\frac1m \sum_{\text{episodes}} \sum_t \gamma^t\, \delta_t\Big|,$$
# where `t[i]` is transition `i`'s time step in its episode and $m$ is the number of distinct ids in `episode`.
# Note that the absolute value is taken *once*, of the whole sum.

# %% [raw]
# # BEGIN SOLUTION

# %%
def direct_l1(logits, V, s, a, s2, t, episode, gamma):
    # BEGIN SOLUTION
    delta, jac = residuals(logits, V, s, a, s2)
    m = len(np.unique(episode))
    w = gamma ** np.asarray(t, dtype=float) / m
    X = float(w @ delta)
    grad = np.zeros_like(logits, dtype=float)
    np.add.at(grad, (s, a), -np.sign(X) * w[:, None] * jac)
    return abs(X), grad
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q4_finite_differences(direct_l1):
    import numpy as np
    rng = np.random.default_rng(4)
    S, A, eps, gamma = 3, 2, 1e-6, 0.9
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    episode, t = np.repeat([0, 1, 2], 5), np.tile(np.arange(5), 3)  # three episodes of five steps
    s, a, s2 = rng.integers(0, S, 15), rng.integers(0, A, 15), rng.integers(0, S, 15)
    value, grad = direct_l1(logits, V, s, a, s2, t, episode, gamma)
    assert np.ndim(value) == 0 and np.shape(grad) == (S, A, S), (np.shape(value), np.shape(grad))
    f = lambda z: direct_l1(z, V, s, a, s2, t, episode, gamma)[0]
    num = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        e = np.zeros_like(logits)
        e[idx] = eps
        num[idx] = (f(logits + e) - f(logits - e)) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-6, err_msg="gradient vs central differences")

test_q4_finite_differences(direct_l1)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 3
""" # END TEST CONFIG
def test_q4_random(direct_l1):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_objective_instance

    def case(rng):  # outputs (value, grad)
        M, b, logits, V = random_objective_instance(rng, trajectories=True)
        return (direct_l1(logits, V, b.s, b.a, b.s2, b.t, b.episode, M.gamma),
                tb.ma_direct_loss(logits, V, b, M.gamma, norm=1))
    assert_on_random_instances(direct_l1, case, n=5)

test_q4_random(direct_l1)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q5

# %% [markdown]
# ## Q5. L2 VAML
# Write `vaml_l2(logits, V, s, a, s2)` returning `(value, grad)` for $\frac1N\sum_i \delta_i^2$.

# %% [raw]
# # BEGIN SOLUTION

# %%
def vaml_l2(logits, V, s, a, s2):
    # BEGIN SOLUTION
    delta, jac = residuals(logits, V, s, a, s2)
    grad = np.zeros_like(logits, dtype=float)
    np.add.at(grad, (s, a), -2 * delta[:, None] * jac / len(s))
    return float(np.mean(delta ** 2)), grad
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q5_perfect_model(vaml_l2):
    # a model that predicts the observed next state with certainty has zero residual, loss and gradient
    import numpy as np
    logits = np.full((2, 1, 2), -50.0)
    logits[0, 0, 1] = logits[1, 0, 0] = 50.0
    value, grad = vaml_l2(logits, np.array([3.0, -1.0]), np.array([0, 1]), np.array([0, 0]), np.array([1, 0]))
    assert abs(value) < 1e-12 and np.abs(grad).max() < 1e-12, (value, grad)

test_q5_perfect_model(vaml_l2)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q5_random(vaml_l2):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_objective_instance

    def case(rng):  # outputs (value, grad)
        M, b, logits, V = random_objective_instance(rng)
        return vaml_l2(logits, V, b.s, b.a, b.s2), tb.ma_vaml_l2_loss(logits, V, b)
    assert_on_random_instances(vaml_l2, case, n=5)

test_q5_random(vaml_l2)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Sparse vs dense signal
# Sample 20 episodes of 30 steps on a random MDP and compare the two model-advantage objectives: how many rows
# $(s, a)$ of the logits receive a gradient, and what happens to the direct objective when the residuals of
# different time steps cancel.

# %%
from tabular import sample_trajectories
from tabular import random_mdp

rng = np.random.default_rng(0)
M = random_mdp(rng, S=6, A=2, gamma=0.9)
pi = rng.dirichlet(np.ones(2), size=6)
batch = sample_trajectories(M, pi, n_traj=20, horizon=30, rng=rng)
logits, V = rng.normal(size=(6, 2, 6)), rng.normal(size=6)
args = (logits, V, batch.s, batch.a, batch.s2)
(u, gu), (d, gd) = upper_bound_l1(*args), direct_l1(*args, batch.t, batch.episode, M.gamma)
print(f"{len(batch.s)} transitions in {len(np.unique(batch.episode))} episodes")
print(f"upper bound (Eq. 10) = {u:.4f}; direct (Eq. 8) = {d:.4f}")
print("per-row gradient norm, upper bound:\n", np.linalg.norm(gu, axis=-1))
print("per-row gradient norm, direct:\n", np.linalg.norm(gd, axis=-1))

# %% [raw]
# # BEGIN QUESTION
# name: q6
# manual: true
# points: 2

# %% [markdown]
# ## Q6 (written). Why does the upper bound give a denser learning signal?
# Using the output above and the formulas, explain (a) how the gradient of Eq. 8 couples all transitions
# through one scalar while Eq. 10 gives each transition its own term, (b) what the direct objective needs from
# the data that the upper bound does not, and (c) a situation where Eq. 8 is zero but the model is wrong.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# (a) Eq. 8 takes one absolute value of a sum over all transitions, so every transition's gradient is scaled by
# the same sign of the total $X$: residuals of opposite sign cancel in the value, and a batch yields one
# direction, weighted by $\gamma^t$ that makes late steps nearly silent. Eq. 10 takes $|\delta_i|$ per
# transition: each transition pushes its own row towards a zero residual, independently of the others.
# (b) Eq. 8 needs whole trajectories from the start distribution (time indices, episode boundaries, the
# $\gamma^t$ weighting), so one update per batch of full episodes; Eq. 10 works with any i.i.d. transitions
# $s \sim d$, e.g. a replay buffer. (c) When positive and negative residuals cancel, e.g. a model that
# overestimates the value of the next state in some states and underestimates it in others by equal
# discounted amounts: then $J$ is the same in both models (Lemma 1) but the dynamics and the per-state values
# are wrong, and Eq. 8 gives no gradient at all.
#
# **Rubric (2 points).** (a) 1 point: one shared sign for Eq. 8 (cancellation across transitions, $\gamma^t$
# weights) versus one term per transition for Eq. 10; half a point if only the formulas are restated without the
# consequence. (b) half a point: whole episodes from the start distribution (time indices) versus any $s \sim d$.
# (c) half a point: any concrete cancellation (opposite-sign residuals of equal discounted size).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
