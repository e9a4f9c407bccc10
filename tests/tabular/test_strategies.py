"""The hypothesis strategies of tests/strategies.py cover the intended range and produce valid objects."""

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from strategies import GAMMAS, mdp_and_policy, mdp_pair_and_policy, mdps, policies, random_stochastic, second_models
from tabular import TabularMDP, validate_policy

FIND = settings(max_examples=2000, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name, condition", [
    ("S = 1", lambda M: M.S == 1),
    ("S >= 20", lambda M: M.S >= 20),
    ("S = 30", lambda M: M.S == 30),
    ("A = 1", lambda M: M.A == 1),
    ("A = 5", lambda M: M.A == 5),
    ("sparse", lambda M: M.is_sparse),
    ("sparse with zeros in P", lambda M: M.is_sparse and M.P.nnz < M.S * M.A * M.S),
    ("dense", lambda M: not M.is_sparse),
    ("gamma = 0", lambda M: M.gamma == 0.0),
    ("gamma >= 0.99", lambda M: M.gamma >= 0.99),
    ("negative and positive rewards", lambda M: M.R.min() < 0 < M.R.max()),
])
def test_mdps_reach_the_corners(name, condition):
    M = find(mdps(), condition, settings=FIND)  # raises NoSuchExample if the corner is never produced
    assert isinstance(M, TabularMDP)


@given(mdps())
def test_mdps_are_valid(M):
    assert 1 <= M.S <= 30 and 1 <= M.A <= 5 and 0 <= M.gamma < 1
    P = M.dense_P()
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(np.abs(M.R) <= 1)
    assert M.p0.sum() == pytest.approx(1.0) and np.all(M.p0 >= 0)
    assert not M.terminal.any()


@given(mdp_and_policy())
def test_policies_are_valid(Mpi):
    M, pi = Mpi
    np.testing.assert_array_equal(validate_policy(M, pi), pi)


def test_policies_reach_deterministic_and_stochastic():
    M = TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), np.ones(3) / 3, 0.5)
    find(policies(M), lambda pi: set(np.unique(pi)) <= {0.0, 1.0}, settings=FIND)
    find(policies(M), lambda pi: np.all((pi > 0) & (pi < 1)), settings=FIND)


@given(mdp_pair_and_policy())
def test_second_models_share_the_space(MM2pi):
    M, M2, pi = MM2pi
    assert (M2.S, M2.A, M2.gamma) == (M.S, M.A, M.gamma)
    np.testing.assert_array_equal(M2.p0, M.p0)
    assert M2.is_sparse == M.is_sparse
    validate_policy(M2, pi)


@given(st.data())
def test_second_models_keep_what_they_are_told_to(data):
    M = data.draw(mdps())
    same_P, same_R = data.draw(st.booleans()), data.draw(st.booleans())
    M2 = data.draw(second_models(M, same_dynamics=same_P, same_rewards=same_R))
    if same_P:
        np.testing.assert_array_equal(M2.dense_P(), M.dense_P())
    if same_R:
        np.testing.assert_array_equal(M2.R, M.R)


def test_second_models_can_change_both():
    M = TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), np.ones(3) / 3, 0.5)
    find(second_models(M), lambda M2: not np.array_equal(M2.dense_P(), M.dense_P()) and M2.R.any(), settings=FIND)


def test_gammas_include_zero_and_stay_below_one():
    find(GAMMAS, lambda g: g == 0.0, settings=FIND)
    find(GAMMAS, lambda g: g >= 0.99, settings=FIND)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1.0, 0.5, 0.1]), st.integers(1, 6), st.integers(1, 6))
def test_random_stochastic_rows(seed, density, n, m):
    x = random_stochastic(np.random.default_rng(seed), (n, m), density)
    assert np.all(x >= 0)
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all((x > 0).sum(axis=-1) >= 1)
