"""Exact evaluation and control: Bellman identities, LP optimum, textbook values (Sutton & Barto 2018)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from strategies import mdp_and_policy, mdps, policies
from tabular import (TabularMDP, evaluate, occupancy, performance, policy_evaluation, policy_iteration,
                     policy_reward, q_values, state_distribution, transition_matrix, uniform_policy,
                     value_iteration)
from tabular.verify import gridworld_example_3_5, gridworld_example_4_1


def dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def scale(x):
    return 1.0 + np.max(np.abs(x))


# ---- evaluation identities ---------------------------------------------------------------------------
@given(mdp_and_policy())
def test_bellman_equation_and_q_consistency(Mpi):
    M, pi = Mpi
    V = policy_evaluation(M, pi)
    P_pi, r_pi = dense(transition_matrix(M, pi)), policy_reward(M, pi)
    np.testing.assert_allclose(V, r_pi + M.gamma * P_pi @ V, atol=1e-9 * scale(V))
    Q = q_values(M, pi)
    np.testing.assert_allclose(Q, M.R + M.gamma * M.dense_P() @ V, atol=1e-9 * scale(V))
    np.testing.assert_allclose((pi * Q).sum(axis=1), V, atol=1e-9 * scale(V))


@given(mdp_and_policy())
def test_occupancy_flow_equation_and_return(Mpi):
    M, pi = Mpi
    ev = evaluate(M, pi)
    P_pi = dense(transition_matrix(M, pi))
    assert ev.d.sum() == pytest.approx(1.0, abs=1e-10)
    assert np.all(ev.d >= -1e-12)
    np.testing.assert_allclose(ev.d, (1 - M.gamma) * M.p0 + M.gamma * P_pi.T @ ev.d, atol=1e-10)
    # J = p0 . V = 1/(1-gamma) E_d[r_pi]  (Eq. 1)
    assert ev.J == pytest.approx(M.p0 @ ev.V, abs=1e-12)
    assert ev.J == pytest.approx(ev.d @ policy_reward(M, pi) / (1 - M.gamma), abs=1e-9 * scale(ev.V))
    np.testing.assert_array_equal(occupancy(M, pi), ev.d)
    np.testing.assert_array_equal(policy_evaluation(M, pi), ev.V)
    assert performance(M, pi) == ev.J


@given(st.data(), st.sampled_from([0.0, 0.3, 0.6]))
def test_occupancy_is_discounted_sum_of_state_distributions(data, gamma):
    M = data.draw(mdps(max_states=12, gamma=gamma))
    pi = data.draw(policies(M))
    T = 80  # 0.6 ** 80 < 1e-17: the truncated tail is negligible
    d = (1 - gamma) * sum(gamma**t * state_distribution(M, pi, t) for t in range(T))
    np.testing.assert_allclose(occupancy(M, pi), d, atol=1e-12)


def test_state_distribution_rejects_bad_t():
    M = gridworld_example_3_5()
    with pytest.raises(ValueError, match="t must be a non-negative integer"):
        state_distribution(M, uniform_policy(M), -1)
    with pytest.raises(ValueError, match="t must be a non-negative integer"):
        state_distribution(M, uniform_policy(M), 1.5)


@given(mdp_and_policy(sparse=False))
def test_sparse_equals_dense(Mpi):
    M, pi = Mpi
    Ms = M.replace(P=sp.csr_matrix(M.P_flat))
    assert Ms.is_sparse
    a, b = evaluate(M, pi), evaluate(Ms, pi)
    np.testing.assert_allclose(b.V, a.V, atol=1e-10 * scale(a.V))
    np.testing.assert_allclose(b.d, a.d, atol=1e-12)
    np.testing.assert_allclose(value_iteration(Ms).V, value_iteration(M).V, atol=1e-9 * scale(a.V))


# ---- control ------------------------------------------------------------------------------------------
def lp_optimal_values(M: TabularMDP) -> np.ndarray:
    """V* as the LP  min sum_s V(s)  s.t.  V(s) >= R(s, a) + gamma sum_s' P(s'|s,a) V(s')  (Puterman 6.9)."""
    S, A = M.S, M.A
    P = M.dense_P().reshape(S * A, S)
    A_ub = M.gamma * P - np.repeat(np.eye(S), A, axis=0)
    res = linprog(np.ones(S), A_ub=A_ub, b_ub=-M.R.ravel(), bounds=[(None, None)] * S, method="highs")
    assert res.status == 0, res.message
    return res.x


@given(mdps())
def test_value_iteration_equals_policy_iteration_equals_lp(M):
    vi, pi_ = value_iteration(M, tol=1e-9), policy_iteration(M)
    assert vi.converged and pi_.converged
    tol = 1e-7 * scale(pi_.V)
    np.testing.assert_allclose(vi.V, pi_.V, atol=tol)
    np.testing.assert_allclose(lp_optimal_values(M), pi_.V, atol=tol)
    for pi in (vi.pi, pi_.pi):  # both greedy policies achieve V*
        np.testing.assert_allclose(policy_evaluation(M, pi), pi_.V, atol=tol)
    V, pi = pi_  # unpacks as (V, pi)
    assert pi.shape == (M.S, M.A) and np.all(pi.sum(axis=1) == 1)


def test_value_iteration_rejects_bad_arguments():
    M = gridworld_example_3_5()
    with pytest.raises(ValueError, match="tol must be positive"):
        value_iteration(M, tol=0)
    with pytest.raises(ValueError, match=r"V0 must have shape \(S,\)=\(25,\)"):
        value_iteration(M, V0=np.zeros(3))


# ---- closed forms ----------------------------------------------------------------------------------------
def hand_mdp() -> TabularMDP:
    """Two states, two actions, gamma = 1/2, p0 = (1, 0).

    s0: action 0 -> s1 with reward 1; action 1 stays in s0 with reward 1.5.
    s1: both actions: reward 2, then s0 or s1 with probability 1/2 each.
    """
    P = np.zeros((2, 2, 2))
    P[0, 0] = [0, 1]
    P[0, 1] = [1, 0]
    P[1, :] = [0.5, 0.5]
    R = np.array([[1.0, 1.5], [2.0, 2.0]])
    return TabularMDP(P, R, [1.0, 0.0], 0.5)


def test_hand_computed_two_state_mdp():
    M = hand_mdp()
    # Policy "move" (action 0 in s0):
    #   V0 = 1 + V1/2,  V1 = 2 + (V0 + V1)/4  =>  0.625 V1 = 2.25  =>  V1 = 3.6, V0 = 2.8.
    #   d = (1-g) p0 + g P^T d: d0 = 1/2 + d1/4, d1 = (d0 + d1/2)/2  =>  d1 = 2/3 d0  =>  d = (0.6, 0.4).
    #   J = V0 = 2.8 = 2 * (0.6 * 1 + 0.4 * 2).
    pi = np.array([[1.0, 0.0], [1.0, 0.0]])
    ev = evaluate(M, pi)
    np.testing.assert_allclose(ev.V, [2.8, 3.6], atol=1e-12)
    np.testing.assert_allclose(ev.d, [0.6, 0.4], atol=1e-12)
    assert ev.J == pytest.approx(2.8, abs=1e-12)
    np.testing.assert_allclose(q_values(M, pi), [[2.8, 1.5 + 1.4], [3.6, 3.6]], atol=1e-12)
    # Optimal: "stay" in s0 gives V0 = 1.5 / (1 - 1/2) = 3, then V1 = (2 + 3/4) / (3/4) = 11/3, and moving
    # is worse: 1 + 11/6 = 2.83 < 3. So V* = (3, 11/3) with action 1 in s0.
    opt = policy_iteration(M)
    np.testing.assert_allclose(opt.V, [3.0, 11 / 3], atol=1e-12)
    assert opt.pi[0, 1] == 1.0


# Sutton & Barto (2nd ed.), Figure 3.2 (right): v_pi of the equiprobable random policy, Example 3.5, gamma = 0.9
FIG_3_2 = np.array([[3.3, 8.8, 4.4, 5.3, 1.5],
                    [1.5, 3.0, 2.3, 1.9, 0.5],
                    [0.1, 0.7, 0.7, 0.4, -0.4],
                    [-1.0, -0.4, -0.4, -0.6, -1.2],
                    [-1.9, -1.3, -1.2, -1.4, -2.0]])
# Sutton & Barto (2nd ed.), Figure 3.5 (middle): v_* of Example 3.5
FIG_3_5 = np.array([[22.0, 24.4, 22.0, 19.4, 17.5],
                    [19.8, 22.0, 19.8, 17.8, 16.0],
                    [17.8, 19.8, 17.8, 16.0, 14.4],
                    [16.0, 17.8, 16.0, 14.4, 13.0],
                    [14.4, 16.0, 14.4, 13.0, 11.7]])
# Sutton & Barto (2nd ed.), Figure 4.1 (k = infinity): v_pi of the random policy, Example 4.1, gamma = 1
FIG_4_1 = np.array([[0, -14, -20, -22],
                    [-14, -18, -20, -20],
                    [-20, -20, -18, -14],
                    [-22, -20, -14, 0]], dtype=float)


def test_sutton_barto_example_3_5_random_policy():
    M = gridworld_example_3_5()
    V = policy_evaluation(M, uniform_policy(M)).reshape(5, 5)
    np.testing.assert_array_less(np.abs(V - FIG_3_2), 0.05 + 1e-9)  # printed to one decimal


def test_sutton_barto_example_3_5_optimal_values():
    M = gridworld_example_3_5()
    np.testing.assert_array_less(np.abs(value_iteration(M).V.reshape(5, 5) - FIG_3_5), 0.05 + 1e-9)
    np.testing.assert_array_less(np.abs(policy_iteration(M).V.reshape(5, 5) - FIG_3_5), 0.05 + 1e-9)


def test_sutton_barto_example_4_1_random_policy():
    M = gridworld_example_4_1()
    ev = evaluate(M, uniform_policy(M))
    np.testing.assert_allclose(ev.V.reshape(4, 4), FIG_4_1, atol=1e-9)
    # gamma = 1: d is the expected visit count of the live states, normalized; J = mean over the 14 starts
    assert ev.d.sum() == pytest.approx(1.0) and np.all(ev.d[M.terminal] == 0)
    assert ev.J == pytest.approx(FIG_4_1.sum() / 14)


def test_sutton_barto_example_4_1_optimal_values():
    # the optimal value is minus the number of steps to the nearest corner (Manhattan distance)
    r, c = np.divmod(np.arange(16), 4)
    steps = np.minimum(r + c, 6 - r - c)
    np.testing.assert_allclose(value_iteration(gridworld_example_4_1()).V, -steps, atol=1e-9)


def test_gamma_one_non_terminating_policy_raises():
    M = gridworld_example_4_1()
    north = np.zeros((16, 4))
    north[:, 0] = 1.0  # the top row bumps into the wall forever
    with pytest.raises(ValueError, match="does not terminate"):
        policy_evaluation(M, north)
    with pytest.raises(ValueError, match="does not terminate"):
        evaluate(M.replace(P=sp.csr_matrix(M.P_flat)), north)


def test_terminal_states_with_discount_keep_their_occupancy_mass():
    # Example 4.1 with gamma = 0.9: terminal states absorb mass, d still satisfies Eq. 1 and J = E_d[r]/(1-g)
    M = gridworld_example_4_1().replace(gamma=0.9)
    pi = uniform_policy(M)
    for Mx in (M, M.replace(P=sp.csr_matrix(M.P_flat))):
        ev = evaluate(Mx, pi)
        P_pi = dense(transition_matrix(Mx, pi))
        np.testing.assert_allclose(ev.d, 0.1 * Mx.p0 + 0.9 * P_pi.T @ ev.d, atol=1e-12)
        assert ev.J == pytest.approx(ev.d @ policy_reward(Mx, pi) / 0.1, abs=1e-10)
        assert ev.d[Mx.terminal].sum() > 0
