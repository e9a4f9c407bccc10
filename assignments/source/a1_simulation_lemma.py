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
# name: a1_simulation_lemma
# init_cell: true
# check_all_cell: false
# export_cell: false
# tests:
#   files: true
#   ok_format: false
# autograder_files:
# - grading_utils.py

# %% [markdown]
# # Assignment 1: values, the discounted state distribution, model-advantage and the simulation lemma
#
# *Modhe et al. (2021), "Model-Advantage Optimization for Model-Based RL", Section 2 and Appendix A.1.*
#
# You will implement, with numpy only, the exact quantities behind the paper's simulation lemma (Lemma 1,
# Eq. 3) on small finite MDPs, and check the lemma numerically. Conventions (as in the main text):
#
# * `P` has shape `(S, A, S)` with `P[s, a, s'] = P(s' | s, a)`; `R` has shape `(S, A)` (expected reward);
#   a policy `pi` has shape `(S, A)` with rows summing to 1; `p0` is the start distribution `(S,)`.
# * Values are **unnormalized**: $V^\pi(s) = \mathbb{E}[\sum_t \gamma^t R(s_t, a_t) \mid s_0 = s]$.
# * $d_{\pi}$ is the **normalized** discounted state distribution of Eq. 1:
#   $d_\pi(s) = (1-\gamma)\sum_t \gamma^t \Pr(s_t = s)$, which sums to 1.
#
# The hidden tests compare your functions with a reference implementation on fresh random MDPs each time they
# run, and they fail if your functions call the `tabular` package's own implementations: write the linear
# algebra yourself. Run `grader.check("q1")` etc. to run the public tests.

# %%
import numpy as np

from tabular import random_mdp  # builds random example MDPs (a TabularMDP: .dense_P(), .R, .p0, .gamma)

np.set_printoptions(precision=4, suppress=True)

# %% [raw]
# # BEGIN QUESTION
# name: q1

# %% [markdown]
# ## Q1. Policy evaluation
# Write `policy_value(P, R, pi, gamma)` returning $V^\pi$ `(S,)`. Hint: with the policy's transition matrix
# $P^\pi(s, s') = \sum_a \pi(a|s) P(s'|s,a)$ and reward $r^\pi(s) = \sum_a \pi(a|s) R(s,a)$, the Bellman
# equation $V = r^\pi + \gamma P^\pi V$ is a linear system.

# %% [raw]
# # BEGIN SOLUTION

# %%
def policy_value(P, R, pi, gamma):
    # BEGIN SOLUTION
    S = P.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = (pi * R).sum(axis=1)
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q1_two_state_chain(policy_value):
    # 0 -> 1 -> 1 -> ..., reward 1 per step in state 1, gamma = 1/2: V(1) = 1/(1 - 1/2) = 2, V(0) = 0 + 2/2 = 1
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = np.array([[0.0], [1.0]])
    V = policy_value(P, R, np.ones((2, 1)), 0.5)
    assert np.shape(V) == (2,), f"V must have shape (S,) = (2,); got {np.shape(V)}"
    np.testing.assert_allclose(V, [1.0, 2.0], atol=1e-10)

test_q1_two_state_chain(policy_value)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q1_random_mdps(policy_value):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        return policy_value(M.dense_P(), M.R, pi, M.gamma), tb.policy_evaluation(M, pi)
    assert_on_random_instances(policy_value, case)

test_q1_random_mdps(policy_value)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2

# %% [markdown]
# ## Q2. The discounted state distribution (Eq. 1)
# Write `discounted_state_distribution(P, pi, p0, gamma)` returning $d_\pi$ `(S,)`. Hint: the distribution of
# $s_t$ is $p_0^\top (P^\pi)^t$, and $\sum_t \gamma^t (P^\pi)^t = (I - \gamma P^\pi)^{-1}$.

# %% [raw]
# # BEGIN SOLUTION

# %%
def discounted_state_distribution(P, pi, p0, gamma):
    # BEGIN SOLUTION
    S = P.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    return (1 - gamma) * np.linalg.solve((np.eye(S) - gamma * P_pi).T, p0)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q2_two_state_chain(discounted_state_distribution):
    # start in 0, move to the absorbing state 1, gamma = 1/2: d(0) = (1 - gamma) * 1 = 1/2, d(1) = 1/2
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    d = discounted_state_distribution(P, np.ones((2, 1)), np.array([1.0, 0.0]), 0.5)
    assert np.shape(d) == (2,), f"d must have shape (S,) = (2,); got {np.shape(d)}"
    np.testing.assert_allclose(d, [0.5, 0.5], atol=1e-10)
    # gamma close to 1: still exact (d(0) = 1 - gamma, d(1) = gamma); a truncated sum of gamma^t falls short here
    d = discounted_state_distribution(P, np.ones((2, 1)), np.array([1.0, 0.0]), 0.999)
    np.testing.assert_allclose(d, [0.001, 0.999], atol=1e-9, err_msg="d at gamma = 0.999: is the sum over t complete?")

test_q2_two_state_chain(discounted_state_distribution)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q2_random_mdps(discounted_state_distribution):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        return discounted_state_distribution(M.dense_P(), pi, M.p0, M.gamma), tb.occupancy(M, pi)
    assert_on_random_instances(discounted_state_distribution, case)

test_q2_random_mdps(discounted_state_distribution)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3

# %% [markdown]
# ## Q3. Model-advantage (Eq. 2)
# Write `model_advantage(P, R, pi, gamma)` returning the `(S, S)` matrix
# $$A^\pi_M(s, s') = \gamma\,\big[V^\pi_M(s') - \mathbb{E}_{s''\sim P^\pi_M(s)} V^\pi_M(s'')\big]$$
# for the model $M = (P, R)$. Under $M$'s own dynamics it has zero mean in every row:
# $\sum_{s'} P^\pi_M(s, s') A^\pi_M(s, s') = 0$ (check this yourself).

# %% [raw]
# # BEGIN SOLUTION

# %%
def model_advantage(P, R, pi, gamma):
    # BEGIN SOLUTION
    V = policy_value(P, R, pi, gamma)
    P_pi = np.einsum("sa,sat->st", pi, P)
    return gamma * (V[None, :] - (P_pi @ V)[:, None])
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q3_two_state_chain(model_advantage):
    # V = (1, 2) (Q1's chain); both states move to state 1, so E_{P(s)} V = 2 and A[s, s'] = (V(s') - 2) / 2
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = np.array([[0.0], [1.0]])
    A = model_advantage(P, R, np.ones((2, 1)), 0.5)
    assert np.shape(A) == (2, 2), f"A must have shape (S, S) = (2, 2); got {np.shape(A)}"
    np.testing.assert_allclose(A, [[-0.5, 0.0], [-0.5, 0.0]], atol=1e-10)

test_q3_two_state_chain(model_advantage)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q3_random_mdps(model_advantage):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        return model_advantage(M.dense_P(), M.R, pi, M.gamma), tb.model_advantage(M, pi)
    assert_on_random_instances(model_advantage, case)

test_q3_random_mdps(model_advantage)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4

# %% [markdown]
# ## Q4. Lemma 1 (the simulation lemma), unnormalized values
# For two models $M$ and $M'$ on the same states and actions, with the same $\gamma$ and $p_0$, the identity
# that holds with unnormalized values is
# $$J_M(\pi) - J_{M'}(\pi) = \underbrace{\tfrac{1}{1-\gamma}\,\mathbb{E}_{s\sim d_{M,\pi}}\,\mathbb{E}_{s'\sim P^\pi_M(s)}\big[A^\pi_{M'}(s, s')\big]}_{\text{model-advantage term}}
#   + \underbrace{\tfrac{1}{1-\gamma}\,\mathbb{E}_{s\sim d_{M,\pi}}\big[R^\pi_M(s) - R^\pi_{M'}(s)\big]}_{\text{reward term}},$$
# where $J_M(\pi) = \mathbb{E}_{s_0\sim p_0} V^\pi_M(s_0)$. Note *which* model's advantage is averaged under
# *which* model's dynamics. Write `lemma1_terms(M, M2, pi)` returning the tuple `(lhs, ma_term, reward_term)`
# (three floats) for `M` $=M$, `M2` $=M'$. Read the arrays with `M.dense_P()`, `M.R`, `M.p0`, `M.gamma` and use
# your functions from Q1-Q3.

# %% [raw]
# # BEGIN SOLUTION

# %%
def lemma1_terms(M, M2, pi):
    # BEGIN SOLUTION
    g = M.gamma
    P, P2 = M.dense_P(), M2.dense_P()
    lhs = M.p0 @ policy_value(P, M.R, pi, g) - M2.p0 @ policy_value(P2, M2.R, pi, g)
    d = discounted_state_distribution(P, pi, M.p0, g)
    P_pi = np.einsum("sa,sat->st", pi, P)
    A2 = model_advantage(P2, M2.R, pi, g)
    ma_term = d @ (P_pi * A2).sum(axis=1) / (1 - g)
    reward_term = d @ ((pi * M.R).sum(axis=1) - (pi * M2.R).sum(axis=1)) / (1 - g)
    return float(lhs), float(ma_term), float(reward_term)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [markdown]
# Check the lemma on a random pair of models:

# %%
rng = np.random.default_rng(0)
M = random_mdp(rng, S=5, A=2, gamma=0.9)
M2 = M.replace(P=rng.dirichlet(np.ones(5), size=(5, 2)), R=rng.uniform(-1, 1, size=(5, 2)))
pi = rng.dirichlet(np.ones(2), size=5)
lhs, ma_term, reward_term = lemma1_terms(M, M2, pi)
print(f"J_M - J_M2 = {lhs:.6f};  model-advantage term + reward term = {ma_term + reward_term:.6f}")

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q4_lemma_holds(lemma1_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(1)
    M = random_mdp(rng, S=4, A=3, gamma=0.8)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 3)), R=rng.uniform(-1, 1, size=(4, 3)))
    pi = rng.dirichlet(np.ones(3), size=4)
    lhs, ma_term, reward_term = lemma1_terms(M, M2, pi)
    assert abs(lhs - (ma_term + reward_term)) < 1e-8, "Lemma 1 should hold exactly (up to round-off)"
    assert abs(lemma1_terms(M, M, pi)[1]) < 1e-10, "the model-advantage term of a model against itself is 0"

test_q4_lemma_holds(lemma1_terms)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 3
""" # END TEST CONFIG
def test_q4_random_mdps(lemma1_terms):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):  # outputs (lhs, ma_term, reward_term)
        M, M2, pi = random_instance(rng)
        ref = tb.simulation_lemma(M, M2, pi)
        return lemma1_terms(M, M2, pi), (ref.lhs, ref.model_advantage_term, ref.reward_term)
    assert_on_random_instances(lemma1_terms, case)

test_q4_random_mdps(lemma1_terms)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q5

# %% [markdown]
# ## Q5. Eq. 3 as printed
# The paper prints the reward term *without* the factor $\frac{1}{1-\gamma}$:
# $J_M - J_{M'} = \frac{1}{1-\gamma}\mathbb{E}_{d_M}\mathbb{E}_{P_M}[A_{M'}] + \mathbb{E}_{d_M}[R^\pi_M - R^\pi_{M'}]$.
# Write `printed_eq3_residual(M, M2, pi)` returning $\text{lhs} - \text{(printed right-hand side)}$ with
# unnormalized values, and look at when it is zero.

# %% [raw]
# # BEGIN SOLUTION

# %%
def printed_eq3_residual(M, M2, pi):
    # BEGIN SOLUTION
    lhs, ma_term, reward_term = lemma1_terms(M, M2, pi)
    return lhs - (ma_term + (1 - M.gamma) * reward_term)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %%
print("different rewards:", printed_eq3_residual(M, M2, pi))
print("same rewards:     ", printed_eq3_residual(M, M2.replace(R=M.R), pi))

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q5_same_rewards(printed_eq3_residual):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(2)
    M = random_mdp(rng, S=4, A=2, gamma=0.7)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 2)))  # same rewards, other dynamics
    r = printed_eq3_residual(M, M2, rng.dirichlet(np.ones(2), size=4))
    assert np.ndim(r) == 0 and abs(float(r)) < 1e-8, f"with equal rewards printed Eq. 3 is exact; got {r}"

test_q5_same_rewards(printed_eq3_residual)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 1
""" # END TEST CONFIG
def test_q5_random_mdps(printed_eq3_residual):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, M2, pi = random_instance(rng)
        return printed_eq3_residual(M, M2, pi), tb.simulation_lemma(M, M2, pi).printed_residual
    assert_on_random_instances(printed_eq3_residual, case)

test_q5_random_mdps(printed_eq3_residual)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q6
# manual: true
# points: 2

# %% [markdown]
# ## Q6 (written). Which convention makes printed Eq. 3 exact?
# Express the residual of Q5 in closed form in terms of $\gamma$, $d_M$ and the rewards, and explain why the
# printed Eq. 3 is exact for the $(1-\gamma)$-normalized values $\tilde V = (1-\gamma) V$ used in the proof of
# Appendix A.1. When is it exact with unnormalized values?

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# The residual is $\frac{1}{1-\gamma}\mathbb{E}_{d_M}[\Delta R] - \mathbb{E}_{d_M}[\Delta R]
# = \frac{\gamma}{1-\gamma}\mathbb{E}_{d_M}[R^\pi_M - R^\pi_{M'}]$. With normalized values the Bellman equation is
# $\tilde V = (1-\gamma) r^\pi + \gamma P^\pi \tilde V$, so $\tilde J$ and $\tilde A$ are the unnormalized ones
# times $(1-\gamma)$ and the reward term is $\frac{1}{1-\gamma}\mathbb{E}_{d_M}[(1-\gamma)\Delta R] = \mathbb{E}_{d_M}[\Delta R]$:
# exactly the printed form. With unnormalized values it is exact only when $\gamma = 0$ or
# $\mathbb{E}_{d_M}[\Delta R] = 0$, e.g. when the models share their rewards (the paper's assumption, footnote 2).
#
# **Rubric (2 points).** 1 point: the residual in closed form, $\frac{\gamma}{1-\gamma}\mathbb{E}_{d_M}[\Delta R]$ with
# the sign of "left side minus printed right side" (half a point if the factor $\frac{1}{1-\gamma}$ is right but the
# sign or the $d_M$ is not). 1 point: why normalization makes it exact (the reward enters the normalized Bellman
# equation as $(1-\gamma) r^\pi$) *and* when it is exact unnormalized ($\gamma = 0$ or $\mathbb{E}_{d_M}[\Delta R]=0$);
# half a point for only one of the two.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
