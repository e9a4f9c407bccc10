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
# name: a3_eq5_counterexample
# init_cell: true
# check_all_cell: false
# export_cell: false
# tests:
#   files: true
#   ok_format: false
# autograder_files:
# - grading_utils.py

# %% [markdown]
# # Assignment 3: the deviation error (Corollary 2), a counterexample to printed Eq. 5, and the correct form
#
# *Modhe et al. (2021), "Model-Advantage Optimization for Model-Based RL", Section 2 (Eq. 4-5) and Appendix A.2.*
#
# With the Bellman evaluation operator of a model $M$ (Eq. 4, unnormalized values)
# $$(\mathcal{T}^\pi_M V)(s) = \sum_a \pi(a|s)\Big[R_M(s,a) + \gamma \sum_{s'} P_M(s'|s,a)\, V(s')\Big],$$
# the paper states Corollary 2 as (Eq. 5, as printed)
# $$J_M(\pi) - J_{M'}(\pi) \overset{?}{=} \frac{1}{1-\gamma}\,\mathbb{E}_{s\sim d_{M,\pi}}
#   \big[\mathcal{T}^\pi_M V^\pi_M(s) - \mathcal{T}^\pi_{M'} V^\pi_M(s)\big].$$
# You will test this numerically, find a counterexample, and identify the forms that do hold.
#
# You may use `tabular.evaluate(M, pi)` (returns `V`, the normalized discounted distribution `d` of Eq. 1, and
# `J`), and the `TabularMDP` container (`M.dense_P()`, `M.R`, `M.p0`, `M.gamma`, `M.replace(...)`); write
# everything else yourself. The hidden tests compare your functions with a reference implementation on fresh
# random MDPs.

# %%
import numpy as np

from tabular import TabularMDP, evaluate
from tabular import random_mdp

np.set_printoptions(precision=4, suppress=True)

# %% [raw]
# # BEGIN QUESTION
# name: q1

# %% [markdown]
# ## Q1. The Bellman operator (Eq. 4)
# Write `bellman(M, pi, V)` returning $\mathcal{T}^\pi_M V$ `(S,)` for any values `V` `(S,)`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def bellman(M, pi, V):
    # BEGIN SOLUTION
    return (pi * (M.R + M.gamma * M.dense_P() @ V)).sum(axis=1)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q1_fixed_point(bellman):
    # V^pi_M is the fixed point of T^pi_M
    import numpy as np
    from tabular import evaluate
    from tabular import random_mdp
    rng = np.random.default_rng(1)
    M = random_mdp(rng, S=4, A=3, gamma=0.8)
    pi = rng.dirichlet(np.ones(3), size=4)
    V = evaluate(M, pi).V
    TV = bellman(M, pi, V)
    assert np.shape(TV) == (4,), f"expected shape (S,) = (4,); got {np.shape(TV)}"
    np.testing.assert_allclose(TV, V, atol=1e-10)

test_q1_fixed_point(bellman)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q1_random(bellman):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, _, pi = random_instance(rng)
        V = rng.normal(size=M.S)
        return bellman(M, pi, V), tb.bellman_operator(M, pi, V)
    assert_on_random_instances(bellman, case, allow=("TabularMDP", "evaluate"))

test_q1_random(bellman)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2

# %% [markdown]
# ## Q2. Four numbers
# Write `corollary2_forms(M, M2, pi)` returning a dict with the float entries
#
# * `"lhs"`: $J_M(\pi) - J_{M'}(\pi)$;
# * `"printed"`: $\frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_M - \mathcal{T}_{M'} V_M]$ (Eq. 5 as printed);
# * `"proof"`: $\frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_{M'} - \mathcal{T}_{M'} V_{M'}]$ (what the proof in
#   Appendix A.2 actually derives: note $V_{M'}$);
# * `"dual"`: $\frac{1}{1-\gamma}\mathbb{E}_{d_{M'}}[\mathcal{T}_M V_M - \mathcal{T}_{M'} V_M]$ (the same proof
#   with the roles of the models swapped: note $d_{M'}$),
#
# where `M` $= M$, `M2` $= M'$, all values are $V^\pi$ of the named model, and $d$ is normalized.

# %% [raw]
# # BEGIN SOLUTION

# %%
def corollary2_forms(M, M2, pi):
    # BEGIN SOLUTION
    ev, ev2 = evaluate(M, pi), evaluate(M2, pi)
    c = 1.0 / (1.0 - M.gamma)

    def deviation(V):
        return bellman(M, pi, V) - bellman(M2, pi, V)

    return {
        "lhs": float(ev.J - ev2.J),
        "printed": float(c * ev.d @ deviation(ev.V)),
        "proof": float(c * ev.d @ deviation(ev2.V)),
        "dual": float(c * ev2.d @ deviation(ev.V)),
    }
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %%
rng = np.random.default_rng(0)
M = random_mdp(rng, S=5, A=2, gamma=0.9)
M2 = M.replace(P=rng.dirichlet(np.ones(5), size=(5, 2)))  # same rewards, other dynamics
pi = rng.dirichlet(np.ones(2), size=5)
print(corollary2_forms(M, M2, pi))

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q2_rewards_only(corollary2_forms):
    # when the models differ only in their rewards, all four numbers agree
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(2)
    M = random_mdp(rng, S=4, A=2, gamma=0.7)
    M2 = M.replace(R=rng.uniform(-1, 1, size=(4, 2)))
    f = corollary2_forms(M, M2, rng.dirichlet(np.ones(2), size=4))
    assert set(f) >= {"lhs", "printed", "proof", "dual"}, f"missing keys; got {sorted(f)}"
    np.testing.assert_allclose([f["printed"], f["proof"], f["dual"]], f["lhs"], atol=1e-9)

test_q2_rewards_only(corollary2_forms)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 3
""" # END TEST CONFIG
def test_q2_random(corollary2_forms):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):  # outputs (lhs, printed, proof, dual)
        M, M2, pi = random_instance(rng)
        f, ref = corollary2_forms(M, M2, pi), tb.deviation_error(M, M2, pi)
        return ([f["lhs"], f["printed"], f["proof"], f["dual"]],
                (ref.lhs, ref.printed_form, ref.proof_form, ref.dual_form))
    assert_on_random_instances(corollary2_forms, case, allow=("TabularMDP", "evaluate"))

test_q2_random(corollary2_forms)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3

# %% [markdown]
# ## Q3. A counterexample
# Write `counterexample()` returning `(M, M2, pi)`: two `TabularMDP`s with the same states, actions, $\gamma$,
# $p_0$ **and the same rewards** (the paper's setting, footnote 2), and a policy, for which printed Eq. 5 is
# wrong by at least $10^{-3}\max(1, |J_M - J_{M'}|)$. The smaller the better: aim for one you can check by
# hand (two states and one action suffice).

# %% [raw]
# # BEGIN SOLUTION

# %%
def counterexample():
    # BEGIN SOLUTION
    # one action, gamma = 1/2, start in 0, reward 1 per step in the absorbing state 1. M moves 0 -> 1, M2 stays.
    # V_M = (1, 2), V_M2 = (0, 2), J_M - J_M2 = 1, d_M = (1/2, 1/2), T_M V_M - T_M2 V_M = (1/2, 0):
    # printed Eq. 5 = 2 * 1/4 = 1/2 != 1
    R, p0 = np.array([[0.0], [1.0]]), np.array([1.0, 0.0])
    M = TabularMDP(np.array([[[0.0, 1.0]], [[0.0, 1.0]]]), R, p0, 0.5)
    M2 = TabularMDP(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), R, p0, 0.5)
    return M, M2, np.ones((2, 1))
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q3_valid_pair(counterexample):
    import numpy as np
    from tabular import TabularMDP
    M, M2, pi = counterexample()
    assert isinstance(M, TabularMDP) and isinstance(M2, TabularMDP), "return two TabularMDPs and a policy"
    assert (M.S, M.A, M.gamma) == (M2.S, M2.A, M2.gamma), "the models must share S, A and gamma"
    assert np.allclose(M.p0, M2.p0) and np.allclose(M.R, M2.R), "the models must share p0 and the rewards"
    assert np.shape(pi) == (M.S, M.A), f"pi must have shape (S, A) = {(M.S, M.A)}; got {np.shape(pi)}"

test_q3_valid_pair(counterexample)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q3_printed_form_fails(counterexample):
    import numpy as np
    import tabular as tb
    from grading_utils import check_independent
    check_independent(counterexample)
    M, M2, pi = counterexample()
    assert np.allclose(M.R, M2.R) and np.allclose(M.p0, M2.p0) and M.gamma == M2.gamma
    dev = tb.deviation_error(M, M2, pi)
    assert abs(dev.printed_residual) >= 1e-3 * max(1.0, abs(dev.lhs)), (
        f"printed Eq. 5 holds here: J_M - J_M2 = {dev.lhs}, printed form = {dev.printed_form}")

test_q3_printed_form_fails(counterexample)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4

# %% [markdown]
# ## Q4. How wrong is it? A second-order error
# Interpolate the dynamics, $M_\epsilon$ = $M$ with $P_{M_\epsilon} = (1-\epsilon) P_M + \epsilon P_{M'}$ (rewards of
# $M$). Write `printed_residuals(M, M2, pi, eps)` returning an array with, for each $\epsilon$ in `eps`, the
# residual $\text{lhs} - \text{printed}$ of Eq. 5 for the pair $(M, M_\epsilon)$. Then fit the slope of
# $\log|\text{residual}|$ against $\log\epsilon$ for small $\epsilon$: what order is the error?

# %% [raw]
# # BEGIN SOLUTION

# %%
def printed_residuals(M, M2, pi, eps):
    # BEGIN SOLUTION
    P, P2 = M.dense_P(), M2.dense_P()
    out = []
    for e in np.asarray(eps, dtype=float):
        f = corollary2_forms(M, M.replace(P=(1 - e) * P + e * P2), pi)
        out.append(f["lhs"] - f["printed"])
    return np.array(out)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %%
eps = np.logspace(-3, -1, 5)
res = printed_residuals(M, M2, pi, eps)
slope = np.polyfit(np.log(eps), np.log(np.abs(res)), 1)[0]
print("residuals:", res, f"\nslope of log|residual| vs log eps: {slope:.3f}")

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q4_second_order(printed_residuals):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(3)
    M = random_mdp(rng, S=4, A=2, gamma=0.8)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 2)))
    eps = np.logspace(-3, -2, 4)
    res = np.asarray(printed_residuals(M, M2, rng.dirichlet(np.ones(2), size=4), eps))
    assert res.shape == (4,), f"expected one residual per eps; got shape {res.shape}"
    slope = np.polyfit(np.log(eps), np.log(np.abs(res)), 1)[0]
    assert 1.9 < slope < 2.1, f"log-log slope {slope}"

test_q4_second_order(printed_residuals)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q4_random(printed_residuals):
    import tabular as tb
    from grading_utils import assert_on_random_instances, random_instance

    def case(rng):
        M, M2, pi = random_instance(rng, same_rewards=True)
        eps = rng.uniform(0, 1, size=3)
        want = [tb.deviation_error(M, M.replace(P=(1 - e) * M.dense_P() + e * M2.dense_P()), pi).printed_residual
                for e in eps]
        return printed_residuals(M, M2, pi, eps), want
    assert_on_random_instances(printed_residuals, case, n=5, allow=("TabularMDP", "evaluate"))

test_q4_random(printed_residuals)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q5
# manual: true
# points: 3

# %% [markdown]
# ## Q5 (written). The correct form
# (a) Explain, with your counterexample's numbers, what goes wrong in printed Eq. 5. (b) State the two forms
# that hold and say where in the proof of Appendix A.2 the value function $V_{M'}$ enters. (c) Explain, from
# the difference of the printed and the proof form, why the residual of Q4 is second order in $\epsilon$, and
# when the printed form is exact.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# (a) In the counterexample $J_M - J_{M'} = 1$ but $\frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_M -
# \mathcal{T}_{M'} V_M] = 2\cdot\frac12\cdot\frac12 = \frac12$: the printed form weighs the deviation at the
# value of the *wrong* model (or, equivalently, under the wrong model's state distribution).
# (b) $J_M - J_{M'} = \frac{1}{1-\gamma}\mathbb{E}_{d_M}[\mathcal{T}_M V_{M'} - \mathcal{T}_{M'} V_{M'}]
# = \frac{1}{1-\gamma}\mathbb{E}_{d_{M'}}[\mathcal{T}_M V_M - \mathcal{T}_{M'} V_M]$. The proof telescopes
# $V_{M'}$ along trajectories of $M$ (it adds and subtracts $V_{M'}(s_t)$ under $P_{M,t}$), so the operator is
# applied to $V_{M'}$; swapping the roles of the models gives the dual.
# (c) printed $-$ proof $= \frac{1}{1-\gamma}\mathbb{E}_{d_M}[(\mathcal{T}_M - \mathcal{T}_{M'})(V_M - V_{M'})]
# = \frac{\gamma}{1-\gamma}\mathbb{E}_{d_M}[(P^\pi_M - P^\pi_{M'})(V_M - V_{M'})]$ for equal rewards: both
# factors are $O(\epsilon)$, so the product is $O(\epsilon^2)$ (slope 2). It vanishes when $P^\pi_M = P^\pi_{M'}$
# (the models differ only in rewards) or $\gamma = 0$.
#
# **Rubric (3 points).** (a) 1 point: the counterexample's two numbers and the reason (the operator applied to the
# wrong model's value, or the wrong state distribution). (b) 1 point: both correct forms (half each) with where
# $V_{M'}$ enters the telescoping sum. (c) 1 point: the difference as a product of two $O(\epsilon)$ factors (half)
# and when it vanishes (half).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
