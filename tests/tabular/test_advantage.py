"""Model-advantage (Eq. 2), Lemma 1 (Eq. 3), Corollary 2 (Eq. 5) and the bounds of App. A (Eq. 15/16)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from strategies import mdp_and_policy, mdp_pair_and_policy, mdps, policies, second_models
from tabular import (TabularMDP, bellman_operator, deviation_error, eq5_counterexample, evaluate,
                     expected_model_advantage, mean_model_advantage, model_advantage, performance,
                     policy_evaluation, policy_reward, simulation_lemma, transition_matrix, uniform_policy,
                     value_difference_bound)
from tabular.verify import gridworld_example_3_5, gridworld_example_4_1

TOL = 1e-9


def dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def scale(*xs):
    return 1.0 + max(float(np.max(np.abs(x))) for x in xs)


@st.composite
def pairs(draw, same_dynamics=None, same_rewards=None, **kw):
    M = draw(mdps(**kw))
    return M, draw(second_models(M, same_dynamics, same_rewards)), draw(policies(M))


# ---- Eq. 2 ------------------------------------------------------------------------------------------------
@given(mdp_and_policy())
def test_model_advantage_has_zero_mean_under_its_own_dynamics(Mpi):
    M, pi = Mpi
    A = model_advantage(M, pi)
    assert A.shape == (M.S, M.S) and isinstance(A, np.ndarray)
    V = policy_evaluation(M, pi)
    np.testing.assert_allclose((dense(transition_matrix(M, pi)) * A).sum(axis=1), 0.0, atol=TOL * scale(V))
    # differences along a row are gamma (V(s') - V(s''))
    np.testing.assert_allclose(A - A[:, :1], np.broadcast_to(M.gamma * (V - V[0]), A.shape), atol=TOL * scale(V))


@given(mdp_and_policy(), st.floats(-5, 5, allow_subnormal=False))
def test_model_advantage_with_fixed_values(Mpi, c):
    M, pi = Mpi
    np.testing.assert_allclose(model_advantage(M, pi, V=np.full(M.S, c)), 0.0, atol=1e-12)  # constants cancel
    V = np.arange(M.S, dtype=float)
    A = model_advantage(M, pi, V=V)
    expected_next = dense(transition_matrix(M, pi)) @ V
    np.testing.assert_allclose(A, M.gamma * (V[None, :] - expected_next[:, None]), atol=1e-10 * M.S)


@given(mdp_pair_and_policy())
def test_expected_model_advantage_matches_dense_matrix(MM2pi):
    M, M2, pi = MM2pi
    A2 = model_advantage(M2, pi)
    d = evaluate(M, pi).d
    P_pi = dense(transition_matrix(M, pi))
    expected = d @ (P_pi * A2).sum(axis=1)
    assert expected_model_advantage(M, M2, pi) == pytest.approx(expected, abs=TOL * scale(A2))
    np.testing.assert_allclose(mean_model_advantage(M, M2, pi), (P_pi * A2).sum(axis=1), atol=TOL * scale(A2))


@given(mdp_and_policy())
def test_expected_model_advantage_of_a_model_with_itself_is_zero(Mpi):
    M, pi = Mpi
    assert expected_model_advantage(M, M, pi) == pytest.approx(0.0, abs=TOL * scale(policy_evaluation(M, pi)))


# ---- Lemma 1 (Eq. 3) -----------------------------------------------------------------------------------
@given(mdp_pair_and_policy())
def test_simulation_lemma_unnormalized(MM2pi):
    M, M2, pi = MM2pi
    lem = simulation_lemma(M, M2, pi)
    lhs = performance(M, pi) - performance(M2, pi)
    tol = TOL * scale(lhs, policy_evaluation(M2, pi))
    assert lem.lhs == pytest.approx(lhs, abs=tol)
    assert lem.residual == pytest.approx(0.0, abs=tol)
    assert lem.rhs == pytest.approx(lhs, abs=tol)
    d = evaluate(M, pi).d
    dR = policy_reward(M, pi) - policy_reward(M2, pi)
    assert lem.reward_term == pytest.approx(d @ dR / (1 - M.gamma), abs=tol)
    assert lem.model_advantage_term == pytest.approx(expected_model_advantage(M, M2, pi) / (1 - M.gamma), abs=tol)
    # printed Eq. 3 misses the 1/(1-gamma) on the reward term: residual gamma/(1-gamma) E_d[dR]
    assert lem.printed_residual == pytest.approx(M.gamma / (1 - M.gamma) * (d @ dR), abs=tol)


@given(mdp_pair_and_policy())
def test_simulation_lemma_normalized_is_printed_eq3(MM2pi):
    M, M2, pi = MM2pi
    lem, lem_n = simulation_lemma(M, M2, pi), simulation_lemma(M, M2, pi, normalized=True)
    tol = TOL * scale(lem.lhs, policy_evaluation(M2, pi))
    assert lem_n.normalized and not lem.normalized
    assert lem_n.residual == pytest.approx(0.0, abs=tol)
    assert lem_n.printed_residual == pytest.approx(0.0, abs=tol)  # Eq. 3 as printed holds here
    # both conventions agree after scaling by (1 - gamma)
    for field in ("lhs", "model_advantage_term", "reward_term", "rhs"):
        assert getattr(lem_n, field) == pytest.approx((1 - M.gamma) * getattr(lem, field), abs=tol)
    # the normalized model-advantage term is 1/(1-gamma) E_d E[A] with A built from (1-gamma) V_M2
    V2n = (1 - M.gamma) * policy_evaluation(M2, pi)
    expected = expected_model_advantage(M, M2, pi, V=V2n) / (1 - M.gamma)
    assert lem_n.model_advantage_term == pytest.approx(expected, abs=tol)


@given(pairs(same_rewards=True))
def test_printed_eq3_holds_unnormalized_when_rewards_agree(MM2pi):
    lem = simulation_lemma(*MM2pi)
    assert lem.reward_term == 0.0
    assert lem.printed_residual == pytest.approx(0.0, abs=TOL * scale(lem.lhs))


@given(pairs(same_dynamics=True, gamma=0.0))
def test_printed_eq3_holds_unnormalized_at_gamma_zero(MM2pi):
    lem = simulation_lemma(*MM2pi)
    assert lem.printed_residual == pytest.approx(0.0, abs=1e-12)


def test_printed_eq3_fails_unnormalized_on_one_state_example():
    # One state, one action, gamma = 1/2: M pays 1 per step, M2 pays 0. J_M = 1/(1-g) = 2, J_M2 = 0.
    # A = 0 (one state), d = (1). Printed Eq. 3: 0 + E_d[1 - 0] = 1, but J_M - J_M2 = 2.
    M = TabularMDP(np.ones((1, 1, 1)), [[1.0]], [1.0], 0.5)
    lem = simulation_lemma(M, M.replace(R=[[0.0]]), np.ones((1, 1)))
    assert (lem.lhs, lem.printed_rhs, lem.rhs) == pytest.approx((2.0, 1.0, 2.0))
    lem_n = simulation_lemma(M, M.replace(R=[[0.0]]), np.ones((1, 1)), normalized=True)
    assert (lem_n.lhs, lem_n.printed_rhs) == pytest.approx((1.0, 1.0))


def test_printed_eq3_fails_on_gridworld_with_changed_reward():
    M = gridworld_example_3_5()
    lem = simulation_lemma(M, gridworld_example_3_5(b_reward=3.0), uniform_policy(M))
    assert abs(lem.residual) < 1e-12 and abs(lem.printed_residual) > 0.1


@given(mdp_pair_and_policy(sparse=False))
def test_sparse_and_dense_models_give_the_same_lemma(MM2pi):
    M, M2, pi = MM2pi
    a = simulation_lemma(M, M2, pi)
    b = simulation_lemma(M.replace(P=sp.csr_matrix(M.P_flat)), M2, pi)
    assert b.rhs == pytest.approx(a.rhs, abs=TOL * scale(a.lhs, policy_evaluation(M2, pi)))


# ---- Corollary 2 (Eq. 5) -------------------------------------------------------------------------------
def test_bellman_operator_fixed_point_and_eq4():
    M = gridworld_example_3_5()
    pi = uniform_policy(M)
    V = policy_evaluation(M, pi)
    np.testing.assert_allclose(bellman_operator(M, pi, V), V, atol=1e-10)
    U = np.arange(25.0)
    expected = (pi * (M.R + 0.9 * M.P @ U)).sum(axis=1)  # Eq. 4 written out
    np.testing.assert_allclose(bellman_operator(M, pi, U), expected, atol=1e-12)


@given(mdp_pair_and_policy())
def test_corollary2_proof_and_dual_forms_hold(MM2pi):
    M, M2, pi = MM2pi
    dev = deviation_error(M, M2, pi)
    tol = TOL * scale(policy_evaluation(M, pi), policy_evaluation(M2, pi))
    assert dev.lhs == pytest.approx(performance(M, pi) - performance(M2, pi), abs=tol)
    assert dev.proof_residual == pytest.approx(0.0, abs=tol)
    assert dev.dual_residual == pytest.approx(0.0, abs=tol)
    # with equal rewards the deviation error is the model-advantage term (the paper's remark after Eq. 5)


@given(pairs(same_rewards=True))
def test_deviation_error_equals_model_advantage_term_with_equal_rewards(MM2pi):
    dev, lem = deviation_error(*MM2pi), simulation_lemma(*MM2pi)
    assert dev.proof_form == pytest.approx(lem.model_advantage_term, abs=TOL * scale(lem.lhs, dev.lhs))


@given(pairs(same_dynamics=True))
def test_printed_eq5_holds_when_only_rewards_differ(MM2pi):
    M, M2, pi = MM2pi
    dev = deviation_error(M, M2, pi)
    tol = TOL * scale(policy_evaluation(M, pi), policy_evaluation(M2, pi))
    assert dev.printed_residual == pytest.approx(0.0, abs=tol)
    d = evaluate(M, pi).d
    assert dev.printed_form == pytest.approx(d @ (policy_reward(M, pi) - policy_reward(M2, pi)) / (1 - M.gamma),
                                             abs=tol)


@given(pairs(gamma=0.0))
def test_printed_eq5_holds_at_gamma_zero(MM2pi):
    assert deviation_error(*MM2pi).printed_residual == pytest.approx(0.0, abs=1e-12)


@given(mdp_pair_and_policy())
def test_printed_eq5_residual_is_the_occupancy_mismatch(MM2pi):
    # lhs = dual form, so printed residual = 1/(1-gamma) (d_M2 - d_M) . (T_M V_M - T_M2 V_M): it vanishes iff
    # the deviation error of V_M is orthogonal to the change of occupancy (e.g. P^pi_M = P^pi_M2).
    M, M2, pi = MM2pi
    dev = deviation_error(M, M2, pi)
    V = policy_evaluation(M, pi)
    delta = bellman_operator(M, pi, V) - bellman_operator(M2, pi, V)
    expected = (evaluate(M2, pi).d - evaluate(M, pi).d) @ delta / (1 - M.gamma)
    assert dev.printed_residual == pytest.approx(expected, abs=TOL * scale(V, policy_evaluation(M2, pi)))


def test_printed_eq5_fails_on_the_counterexample():
    M, M2, pi = eq5_counterexample()
    dev = deviation_error(M, M2, pi)
    # numbers derived by hand in eq5_counterexample's docstring
    np.testing.assert_allclose(policy_evaluation(M, pi), [1, 2])
    np.testing.assert_allclose(policy_evaluation(M2, pi), [0, 2])
    np.testing.assert_allclose(evaluate(M, pi).d, [0.5, 0.5])
    assert (dev.lhs, dev.proof_form, dev.dual_form, dev.printed_form) == pytest.approx((1, 1, 1, 0.5))
    assert np.array_equal(M.R, M2.R)  # rewards agree: the failure is due to the dynamics alone


def test_printed_eq5_fails_generically_when_dynamics_differ():
    rng = np.random.default_rng(0)
    for _ in range(20):
        M = TabularMDP(rng.dirichlet(np.ones(4), size=(4, 2)), rng.uniform(-1, 1, (4, 2)),
                       rng.dirichlet(np.ones(4)), 0.9)
        M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 2)))
        assert abs(deviation_error(M, M2, uniform_policy(M)).printed_residual) > 1e-6


# ---- gamma = 1 and terminal states ------------------------------------------------------------------------
def episodic_pair():
    """Sutton & Barto Example 4.1 (gamma = 1) and a copy whose step cost is -2 in state 5 and slips to 6."""
    M = gridworld_example_4_1()
    R2 = M.R.copy()
    R2[5] = -2.0
    P2 = M.P.copy()
    P2[5] = 0.5 * P2[5] + 0.5 * np.eye(16)[6]
    return M, M.replace(P=P2, R=R2)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_lemma_and_corollary_with_terminal_states(gamma):
    M, M2 = episodic_pair()
    M, M2 = M.replace(gamma=gamma), M2.replace(gamma=gamma)
    pi = uniform_policy(M)
    lem, dev = simulation_lemma(M, M2, pi), deviation_error(M, M2, pi)
    lhs = performance(M, pi) - performance(M2, pi)
    assert abs(lhs) > 0.1
    for r in (lem.residual, dev.proof_residual, dev.dual_residual):
        assert r == pytest.approx(0.0, abs=1e-9)
    if gamma == 1:
        assert np.isnan(lem.printed_rhs)
        with pytest.raises(ValueError, match="normalized values .* gamma = 1"):
            simulation_lemma(M, M2, pi, normalized=True)
        with pytest.raises(ValueError, match="infinite at gamma = 1"):
            value_difference_bound(M, M2, pi)
    else:
        assert simulation_lemma(M, M2, pi, normalized=True).printed_residual == pytest.approx(0.0, abs=1e-10)


def test_gamma_one_non_terminating_policy_raises():
    M, M2 = episodic_pair()
    north = np.eye(4)[np.zeros(16, dtype=int)]
    with pytest.raises(ValueError, match="does not terminate"):
        simulation_lemma(M, M2, north)


# ---- input validation ----------------------------------------------------------------------------------------
def test_mismatched_models_raise():
    M = gridworld_example_3_5()
    pi = uniform_policy(M)
    cases = [
        (TabularMDP(np.full((2, 4, 2), 0.5), np.zeros((2, 4)), [1, 0], 0.9), r"same \(S, A\)"),
        (M.replace(gamma=0.5), "same gamma"),
        (M.replace(p0=np.eye(25)[0]), "same p0; they differ at s=0"),
    ]
    for M2, msg in cases:
        for f in (simulation_lemma, deviation_error, value_difference_bound, expected_model_advantage):
            with pytest.raises(ValueError, match=msg):
                f(M, M2, pi)
    E, E2 = episodic_pair()
    with pytest.raises(ValueError, match="same terminal states; they differ at s=0"):
        deviation_error(E, E.replace(terminal=[15]), uniform_policy(E))
    with pytest.raises(ValueError, match="expected a TabularMDP"):
        model_advantage("M", pi)


def test_bad_values_and_policies_raise():
    M = gridworld_example_3_5()
    pi = uniform_policy(M)
    with pytest.raises(ValueError, match=r"V must have shape \(S,\)=\(25,\)"):
        model_advantage(M, pi, V=np.zeros(3))
    with pytest.raises(ValueError, match="V must be finite"):
        bellman_operator(M, pi, np.full(25, np.nan))
    with pytest.raises(ValueError, match="policy must have shape"):
        simulation_lemma(M, M, pi[:, :2])


# ---- Appendix A, Eq. 15/16 ----------------------------------------------------------------------------------
@given(mdp_pair_and_policy())
def test_value_difference_bounds_hold_and_are_ordered(MM2pi):
    M, M2, pi = MM2pi
    b = value_difference_bound(M, M2, pi)
    eps = 1e-9 * (1 + b.eq16)
    assert b.actual == pytest.approx(np.max(np.abs(policy_evaluation(M, pi) - policy_evaluation(M2, pi))))
    assert b.actual <= b.deviation + eps
    assert b.deviation <= b.span + eps
    assert b.span <= b.eq15 + eps
    assert b.eq15 <= b.eq16 + eps
    assert b.eps_P == pytest.approx(np.abs(M.dense_P() - M2.dense_P()).sum(axis=2).max())
    assert b.eps_R == pytest.approx(np.abs(policy_reward(M, pi) - policy_reward(M2, pi)).max())
    assert b.R_max == pytest.approx(np.abs(M2.R).max())


def test_eq16_needs_max_abs_reward():
    # All rewards -1 (outside the paper's [0, R_max] assumption), same rewards, different dynamics:
    # V_M = V_M2 = -1/(1-g) everywhere, so the actual difference is 0, but with R_max := max R = -1 the
    # Eq. 16 expression is 1/(1-g) [0 + g eps_P (-1)/(1-g)] < 0: the "bound" fails. max |R| = 1 repairs it.
    rng = np.random.default_rng(1)
    M = TabularMDP(rng.dirichlet(np.ones(3), size=(3, 2)), -np.ones((3, 2)), np.ones(3) / 3, 0.9)
    M2 = M.replace(P=rng.dirichlet(np.ones(3), size=(3, 2)))
    b = value_difference_bound(M, M2, uniform_policy(M))
    naive = (b.eps_R + 0.9 * b.eps_P * M2.R.max() / 0.1) / 0.1
    assert b.actual == pytest.approx(0.0, abs=1e-12)
    assert naive < 0 <= b.eq16
    assert b.R_max == 1.0
