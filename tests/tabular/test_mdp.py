"""TabularMDP validation (every rule raises a ValueError with a useful message) and from_gymnasium."""

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given

from strategies import mdps
from tabular import (TabularMDP, from_gymnasium, policy_reward, transition_matrix, uniform_policy,
                     validate_policy, value_iteration)


def two_state(**changes):
    """A valid 2-state, 2-action MDP; keyword arguments override P, R, p0, gamma, terminal."""
    kw = dict(P=np.full((2, 2, 2), 0.5), R=np.zeros((2, 2)), p0=np.array([1.0, 0.0]), gamma=0.9)
    kw.update(changes)
    return TabularMDP(**kw)


def episodic(**changes):
    """2 states; state 1 is terminal (absorbing, zero reward); gamma = 1."""
    P = np.zeros((2, 2, 2))
    P[0, :, 1] = 1.0
    P[1, :, 1] = 1.0
    kw = dict(P=P, R=np.array([[1.0, 2.0], [0.0, 0.0]]), p0=np.array([1.0, 0.0]), gamma=1.0, terminal=[1])
    kw.update(changes)
    return TabularMDP(**kw)


# ---- P ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("P", [np.full((2, 2), 0.5), np.full((2, 2, 3), 1 / 3), np.zeros((0, 1, 0))])
def test_dense_P_shape(P):
    with pytest.raises(ValueError, match=r"dense P must have shape \(S, A, S\)"):
        two_state(P=P)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_P_not_finite(bad):
    P = np.full((2, 2, 2), 0.5)
    P[1, 0, 1] = bad
    with pytest.raises(ValueError, match=r"P must be finite; found .* at index \(1, 0, 1\)"):
        two_state(P=P)


@pytest.mark.parametrize("lo, hi", [(-0.1, 1.1), (1.5, -0.5)])
def test_P_probability_out_of_range(lo, hi):
    P = np.full((2, 2, 2), 0.5)
    P[1, 1] = [lo, hi]
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]; row \(s=1, a=1\)"):
        two_state(P=P)


def test_P_row_not_summing_to_one_names_first_bad_row():
    P = np.full((2, 2, 2), 0.5)
    P[1, 0] = [0.5, 0.4]
    P[1, 1] = [0.2, 0.2]
    with pytest.raises(ValueError, match=r"each row must sum to 1; row \(s=1, a=0\) sums to 0.9"):
        two_state(P=P)


def test_sparse_shape_errors():
    with pytest.raises(ValueError, match=r"sparse P must have shape \(S\*A, S\)"):
        two_state(P=sp.csr_matrix(np.full((3, 2), 0.5)))
    with pytest.raises(ValueError, match=r"sparse P must have shape"):
        two_state(P=sp.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match=r"R must have shape \(S, A\)=\(2, 2\)"):
        two_state(P=sp.csr_matrix(np.full((4, 2), 0.5)), R=np.zeros((2, 3)))


def test_sparse_probability_and_row_errors():
    P = np.full((4, 2), 0.5)
    P[3] = [1.2, -0.2]
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]; row \(s=1, a=1\)"):
        two_state(P=sp.csr_matrix(P))
    P[3] = [0.3, 0.3]
    with pytest.raises(ValueError, match=r"row \(s=1, a=1\) sums to 0.6"):
        two_state(P=sp.csr_matrix(P))
    P[3] = [np.nan, 0.5]
    with pytest.raises(ValueError, match="P must be finite"):
        two_state(P=sp.csr_matrix(P))


# ---- R, p0 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("R", [np.zeros(2), np.zeros((2, 3)), np.zeros((2, 2, 3))])
def test_R_shape(R):
    with pytest.raises(ValueError, match=r"R must have shape \(S, A\)=\(2, 2\) or \(S, A, S\)=\(2, 2, 2\)"):
        two_state(R=R)


@pytest.mark.parametrize("R", [np.array([[0.0, np.nan], [0, 0]]), np.full((2, 2, 2), np.inf)])
def test_R_not_finite(R):
    with pytest.raises(ValueError, match="R must be finite"):
        two_state(R=R)


def test_transition_reward_is_reduced_to_expected_reward():
    R3 = np.zeros((2, 2, 2))
    R3[0, 1] = [2.0, 4.0]  # P(.|0,1) = (1/2, 1/2): expected reward 3
    assert np.array_equal(two_state(R=R3).R, [[0.0, 3.0], [0.0, 0.0]])


@pytest.mark.parametrize("p0, msg", [
    (np.array([1.0]), r"p0 must have shape \(S,\)=\(2,\)"),
    (np.array([0.5, 0.4]), r"p0: each row must sum to 1"),
    (np.array([1.5, -0.5]), r"p0: probabilities must lie in \[0, 1\]"),
    (np.array([np.nan, 1.0]), "p0 must be finite"),
])
def test_p0_errors(p0, msg):
    with pytest.raises(ValueError, match=msg):
        two_state(p0=p0)


# ---- gamma and terminal states -----------------------------------------------------------------------
@pytest.mark.parametrize("gamma", [-0.1, 1.5, np.nan, np.inf])
def test_gamma_out_of_range(gamma):
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\)"):
        two_state(gamma=gamma)


def test_gamma_one_requires_terminal_states():
    with pytest.raises(ValueError, match="gamma = 1 requires an episodic MDP"):
        two_state(gamma=1.0)
    assert episodic().gamma == 1.0


def test_terminal_must_be_absorbing():
    P = np.full((2, 2, 2), 0.5)
    with pytest.raises(ValueError, match=r"terminal state 1 must be absorbing"):
        two_state(P=P, terminal=[1])
    with pytest.raises(ValueError, match=r"terminal state 1 must be absorbing"):
        two_state(P=sp.csr_matrix(P.reshape(4, 2)), terminal=[1])


def test_terminal_must_have_zero_reward():
    with pytest.raises(ValueError, match=r"terminal state 1 must have zero reward"):
        episodic(R=np.ones((2, 2)))


@pytest.mark.parametrize("terminal, msg", [
    (np.array([True]), r"terminal mask must have shape \(S,\)=\(2,\)"),
    ([2], r"terminal indices must be integers in \[0, 2\)"),
    ([-1], r"terminal indices must be integers"),
    ([0.5], r"terminal indices must be integers"),
])
def test_terminal_spec_errors(terminal, msg):
    with pytest.raises(ValueError, match=msg):
        episodic(terminal=terminal)


def test_terminal_mask_and_indices_agree():
    assert np.array_equal(episodic(terminal=np.array([False, True])).terminal, episodic(terminal=[1]).terminal)


# ---- policies, immutability, replace --------------------------------------------------------------------
@pytest.mark.parametrize("pi, msg", [
    (np.full((2, 3), 1 / 3), r"policy must have shape \(S, A\)=\(2, 2\)"),
    (np.array([[0.5, 0.5], [0.7, 0.7]]), r"policy: each row must sum to 1; row s=1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), r"policy: probabilities must lie in \[0, 1\]; row s=0"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), "policy must be finite"),
])
def test_policy_errors(pi, msg):
    with pytest.raises(ValueError, match=msg):
        validate_policy(two_state(), pi)


def test_arrays_are_read_only_and_copied():
    P = np.full((2, 2, 2), 0.5)
    M = two_state(P=P)
    P[0, 0] = [1.0, 0.0]  # the MDP owns a copy
    assert M.P[0, 0, 0] == 0.5
    for x in (M.P, M.R, M.p0, M.terminal):
        with pytest.raises(ValueError):
            x[0] = 0


def test_replace():
    M = two_state()
    assert M.replace(gamma=0.5).gamma == 0.5 and M.gamma == 0.9
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['Q'\]"):
        M.replace(Q=1)
    with pytest.raises(ValueError, match=r"gamma must lie"):
        M.replace(gamma=2.0)


@given(mdps())
def test_sparse_and_dense_views_agree(M):
    P = M.dense_P()
    assert P.shape == (M.S, M.A, M.S)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    pi = uniform_policy(M)
    P_pi = transition_matrix(M, pi)
    P_pi = P_pi.toarray() if sp.issparse(P_pi) else P_pi
    np.testing.assert_allclose(P_pi, P.mean(axis=1), atol=1e-12)  # uniform pi averages the actions
    np.testing.assert_allclose(policy_reward(M, pi), M.R.mean(axis=1), atol=1e-12)


# ---- from_gymnasium -------------------------------------------------------------------------------------
def test_from_gymnasium_rejects_non_tabular_env():
    with pytest.raises(ValueError, match="no tabular `P` dict"):
        from_gymnasium(object(), 0.9)


def test_frozenlake_slippery_optimal_value():
    # FrozenLake 4x4 slippery, gamma = 1: the optimal success probability from the start is 14/17 = 0.8235...
    # (the well-known value; e.g. Sutton-Barto style DP solutions of FrozenLake-v1 report 0.82353).
    M = from_gymnasium(gym.make("FrozenLake-v1"), 1.0)
    assert M.S == 16 and M.A == 4 and M.terminal.sum() == 5  # 4 holes + goal
    V = value_iteration(M, tol=1e-10).V
    assert V[0] == pytest.approx(14 / 17, abs=1e-8)
    assert np.all(V[M.terminal] == 0)


def test_cliffwalking_optimal_return():
    # gamma = 1: the shortest safe path from the start (3, 0) to the goal (3, 11) is 13 steps at -1 each.
    M = from_gymnasium(gym.make("CliffWalking-v1"), 1.0)
    assert M.p0[36] == 1.0
    assert float(M.p0 @ value_iteration(M).V) == pytest.approx(-13.0, abs=1e-9)


def test_taxi_values_by_hand():
    # Taxi-v4, gamma = 1. Hand counts (-1 per move or pickup, +20 for the successful drop-off, map with walls
    # between columns 1|2 on rows 0-1):
    #   taxi at R=(0,0), passenger at R, destination R: pickup, dropoff        -> -1 + 20       = 19
    #   taxi at R, passenger at R, destination G=(0,4): pickup, 2 down, 4 right,
    #   2 up (the wall forbids the direct way), dropoff                         -> -1 - 8 + 20   = 11
    #   taxi at R, passenger at R, destination Y=(4,0): pickup, 4 down, dropoff -> -1 - 4 + 20   = 15
    #   taxi at R with the passenger inside, destination R: dropoff             -> 20
    env = gym.make("Taxi-v4")
    M = from_gymnasium(env, 1.0)
    V = value_iteration(M).V
    enc = env.unwrapped.encode
    assert [V[enc(0, 0, 0, d)] for d in (0, 1, 2)] == pytest.approx([19, 11, 15], abs=1e-9)
    assert V[enc(0, 0, 4, 0)] == pytest.approx(20, abs=1e-9)


@pytest.mark.parametrize("name, kwargs", [("Taxi-v4", {}), ("CliffWalking-v1", {}),
                                          ("FrozenLake-v1", {"is_slippery": False})])
def test_deterministic_dynamics_match_stepping_the_env(name, kwargs):
    env = gym.make(name, **kwargs)
    M = from_gymnasium(env, 0.9)
    u = env.unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for s, a in zip(rng.integers(0, u.observation_space.n, 60), rng.integers(0, M.A, 60)):
        if M.terminal[s]:
            continue
        u.s = int(s)
        s2, r, terminated, _, _ = env.step(int(a))
        assert M.P[s, a].max() == 1.0, "deterministic env"
        target = int(np.argmax(M.P[s, a]))
        assert M.R[s, a] == r
        if terminated:
            assert M.terminal[target]
        else:
            assert target == s2 and not M.terminal[target]


def test_frozenlake_slippery_dynamics_match_sampled_steps():
    # slippery: the intended move or either perpendicular one, each with probability 1/3
    env = gym.make("FrozenLake-v1")
    M = from_gymnasium(env, 0.9)
    u = env.unwrapped
    env.reset(seed=1)
    counts = np.zeros(M.S)
    n = 3000
    for _ in range(n):
        u.s = 6  # second row, third column: all three outcomes are distinct cells
        counts[env.step(2)[0]] += 1
    np.testing.assert_allclose(counts / n, M.P[6, 2], atol=0.04)  # 4 standard errors of sqrt(2/9 / n)
    assert np.count_nonzero(M.P[6, 2]) == 3 and np.allclose(M.P[6, 2][M.P[6, 2] > 0], 1 / 3)


def test_sparse_P_is_copied_so_replace_works():
    # rows (0.5, 0.5), (0, 1) with an explicit stored zero, (1, 0), (0, 1); the MDP drops the explicit zero
    # in its own copy, not in the caller's matrix
    P = sp.csr_matrix(([0.5, 0.5, 0.0, 1.0, 1.0, 1.0], [0, 1, 0, 1, 0, 1], [0, 2, 4, 5, 6]), shape=(4, 2))
    M = two_state(P=P)
    assert P.nnz == 6 and M.P.nnz == 5
    M2 = M.replace(R=np.ones((2, 2)))  # re-validating a frozen sparse P must not write to it
    assert M2.is_sparse and np.array_equal(M2.dense_P(), M.dense_P())
