"""tabular.objectives: closed-form gradients vs finite differences, sampled -> exact, Lemma 1, the L2 erratum,
hand-computed values and input validation."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from strategies import mdp_and_policy, mdps, policies
from tabular import TabularMDP, evaluate
from tabular import objectives as O
from tabular.advantage import expected_model_advantage

NAMES = ["mle", "ma_direct_l1", "ma_direct_l2", "ma_l1", "ma_vaml"]


def central_diff(f, x, h=1e-6):
    """Central finite differences of a scalar function of an array (float64; error O(h^2) + O(eps/h))."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@st.composite
def problem(draw, max_states=5, max_actions=3):
    """(M, pi, logits, V) with random logits and an arbitrary fixed V."""
    M, pi = draw(mdp_and_policy(max_states=max_states, max_actions=max_actions))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.normal(scale=2.0, size=(M.S, M.A, M.S))
    V = rng.normal(scale=3.0, size=M.S)
    return M, pi, logits, V


def residuals(logits, V, batch):
    """delta_i = V[s2_i] - P_phi(s_i, a_i) . V, for kink checks and standard errors (not the tested code path)."""
    return V[batch.s2] - (O.model_probs(logits) @ V)[batch.s, batch.a]


def assert_grad_close(g, g_fd):
    np.testing.assert_allclose(g, g_fd, rtol=1e-5, atol=1e-7 * (1 + np.abs(g_fd).max()))


# ---- gradients ------------------------------------------------------------------------------------
@given(problem(), st.sampled_from(NAMES), st.integers(0, 2**32 - 1))
def test_sampled_gradients_match_finite_differences(prob, name, seed):
    M, pi, logits, V = prob
    rng = np.random.default_rng(seed)
    batch = O.sample_trajectories(M, pi, n_traj=4, horizon=6, rng=rng)
    f = O.SAMPLED_OBJECTIVES[name]
    # |x| is not differentiable at 0: stay away from the kinks (FD moves delta by O(1e-6 * |V|))
    if name == "ma_l1":
        assume(np.abs(residuals(logits, V, batch)).min() > 1e-3)
    if name == "ma_direct_l1":
        assume(f(logits, V, batch, M.gamma)[0] > 1e-3)
    value, grad = f(logits, V, batch, M.gamma)
    assert grad.shape == logits.shape and np.isfinite(value)
    assert_grad_close(grad, central_diff(lambda x: f(x, V, batch, M.gamma)[0], logits))


def exact_kinks(M, pi, logits, V):
    """Smallest |delta| over reachable (s, a, s2) (where the exact upper bound's |.| could have a kink)."""
    d = evaluate(M, pi).d
    P = M.dense_P()
    delta = V[None, None, :] - (O.model_probs(logits) @ V)[..., None]
    live = (d[:, None, None] > 0) & (pi[..., None] > 0) & (P > 0)
    return np.abs(delta[live]).min()


@given(problem(), st.sampled_from(NAMES))
def test_exact_gradients_match_finite_differences(prob, name):
    M, pi, logits, V = prob
    if name == "ma_l1":
        assume(exact_kinks(M, pi, logits, V) > 1e-3)
    if name == "ma_direct_l1":
        assume(O.exact_objective(name, M, pi, logits, V)[0] > 1e-3)
    value, grad = O.exact_objective(name, M, pi, logits, V)
    assert grad.shape == logits.shape and np.isfinite(value)
    assert_grad_close(grad, central_diff(lambda x: O.exact_objective(name, M, pi, x, V)[0], logits))


def test_subgradient_of_abs_at_zero_is_zero():
    # one transition with delta exactly 0: V constant makes every residual 0
    logits = np.zeros((2, 1, 2))
    V = np.ones(2)
    b = O.TransitionBatch([0], [0], [1], [0], [0])
    for name in ["ma_l1", "ma_direct_l1"]:
        value, grad = O.SAMPLED_OBJECTIVES[name](logits, V, b, 0.9)
        assert value == 0 and np.all(grad == 0)


# ---- hand-computed example ------------------------------------------------------------------------
def two_state():
    """S=2, A=1, gamma=1/2, p0=(1, 0); true P(.|0) = (1/2, 1/2), P(.|1) = (0, 1); model logits 0 (uniform);
    V = (0, 2).

    Derivation: P_phi V = 1 in both states, so delta(s, s2) = V[s2] - 1 = -1 (s2=0) or +1 (s2=1).
    Visits w = p0^T (I - P/2)^{-1}: 3/4 w0 = 1 -> w0 = 4/3; -w0/4 + w1/2 = 0 -> w1 = 2/3; sum 2 = 1/(1-gamma) = H,
    so d = (2/3, 1/3). E[delta | s=0] = 0, E[delta | s=1] = 1, hence E_d delta = 1/3, E_d |delta| = E_d delta^2 = 1.
    Jacobian J[s] = p (V - pV) = (1/2 (0-1), 1/2 (2-1)) = (-1/2, 1/2) in both states.
    """
    M = TabularMDP(np.array([[[0.5, 0.5]], [[0.0, 1.0]]]), np.zeros((2, 1)), [1.0, 0.0], 0.5)
    return M, np.ones((2, 1)), np.zeros((2, 1, 2)), np.array([0.0, 2.0])


def test_exact_objectives_on_hand_computed_example():
    M, pi, logits, V = two_state()
    J = np.array([-0.5, 0.5])
    expected = {
        # cross-entropy of uniform model: log 2 everywhere; grad q (p - P): s=0: 0, s=1: 1/3 ((1/2,1/2) - (0,1))
        "mle": (np.log(2), [[0, 0], [1 / 6, -1 / 6]]),
        # E_d |delta| = 1; grad -q E[sign delta] J: s=0: E sign = 0; s=1: -(1/3) J
        "ma_l1": (1.0, [[0, 0], -(1 / 3) * J]),
        # E_d delta^2 = 1; grad -2 q E[delta] J: s=1: -(2/3) J
        "ma_vaml": (1.0, [[0, 0], -(2 / 3) * J]),
        # X = H E_d delta = 2/3; grad -sign(X) H q J = -(4/3, 2/3) J
        "ma_direct_l1": (2 / 3, [-(4 / 3) * J, -(2 / 3) * J]),
        # X^2 = 4/9; grad -2X H q J = -(8/3) q J = -(16/9, 8/9) J
        "ma_direct_l2": (4 / 9, [-(16 / 9) * J, -(8 / 9) * J]),
    }
    for name, (value, grad) in expected.items():
        v, g = O.exact_objective(name, M, pi, logits, V)
        assert v == pytest.approx(value, rel=1e-12), name
        np.testing.assert_allclose(g[:, 0, :], np.array(grad, dtype=float), atol=1e-12, err_msg=name)


def test_sampled_objectives_on_hand_computed_example():
    M, pi, logits, V = two_state()
    # one episode 0 -> 0 -> 1 -> 1: delta = (-1, +1, +1)
    b = O.TransitionBatch(s=[0, 0, 1], a=[0, 0, 0], s2=[0, 1, 1], t=[0, 1, 2], episode=[7, 7, 7])
    # direct: X = -1 + (1/2)(1) + (1/4)(1) = -1/4 over m = 1 episode
    expected = {"mle": np.log(2), "ma_l1": 1.0, "ma_vaml": 1.0, "ma_direct_l1": 0.25, "ma_direct_l2": 1 / 16}
    for name, value in expected.items():
        assert O.SAMPLED_OBJECTIVES[name](logits, V, b, 0.5)[0] == pytest.approx(value, rel=1e-12), name
    # gradient of the direct L1: -sign(X) sum_t gamma^t J[s_t] = +((1 + 1/2) J[0], (1/4) J[1])
    g = O.ma_direct_loss(logits, V, b, 0.5, norm=1)[1]
    np.testing.assert_allclose(g[:, 0], [1.5 * np.array([-0.5, 0.5]), 0.25 * np.array([-0.5, 0.5])], atol=1e-15)


# ---- identities -----------------------------------------------------------------------------------
@given(problem(max_states=8))
def test_lemma1_direct_l1_is_performance_difference(prob):
    M, pi, logits, _ = prob
    M_phi = M.replace(P=O.model_probs(logits))  # same rewards, p0, gamma
    V_phi = evaluate(M_phi, pi).V
    value, _ = O.exact_objective("ma_direct_l1", M, pi, logits, V_phi)
    gap = abs(evaluate(M, pi).J - evaluate(M_phi, pi).J)
    scale = 1 + np.abs(V_phi).max()
    assert M.gamma * value == pytest.approx(gap, abs=1e-9 * scale)
    # and the expected model advantage of tabular.advantage (policy-averaged prediction, same expectation)
    H = 1 / (1 - M.gamma)
    assert H * abs(expected_model_advantage(M, M_phi, pi)) == pytest.approx(M.gamma * value, abs=1e-9 * scale)


@given(problem())
def test_upper_bound_dominates_direct_l1(prob):
    """Eq. 9: |E delta| <= E |delta| (normalized: (1-gamma) direct <= upper; unnormalized: direct <= H upper)."""
    M, pi, logits, V = prob
    upper = O.exact_objective("ma_l1", M, pi, logits, V)[0]
    direct = O.exact_objective("ma_direct_l1", M, pi, logits, V)[0]
    assert (1 - M.gamma) * direct <= upper + 1e-12 * (1 + upper)


@given(problem())
def test_l2_relation_jensen_normalized_and_cauchy_schwarz_unnormalized(prob):
    M, pi, logits, V = prob
    r = O.l2_relation(M, pi, logits, V)
    tol = 1e-12 * (1 + r.vaml_unnormalized * r.H)
    assert r.direct <= r.vaml + tol                                  # Jensen, normalized d
    assert r.direct_unnormalized <= r.H * r.vaml_unnormalized + tol  # Cauchy-Schwarz, sum_t gamma^t weighting
    # consistent with the exact objectives' conventions
    assert r.vaml == pytest.approx(O.exact_objective("ma_vaml", M, pi, logits, V)[0], rel=1e-12, abs=1e-15)
    assert r.direct_unnormalized == pytest.approx(O.exact_objective("ma_direct_l2", M, pi, logits, V)[0],
                                                  rel=1e-10, abs=1e-15)
    # the exact criterion for the unnormalized VAML to bound the unnormalized direct L2
    var = r.mean_square - r.mean ** 2
    if abs(var - (r.H - 1) * r.mean ** 2) > 1e-9 * (1 + r.mean_square * r.H):
        assert r.unnormalized_vaml_bounds_direct == (var >= (r.H - 1) * r.mean ** 2)


def test_l2_erratum_counterexample_unnormalized_vaml_does_not_bound():
    """Sec. 3.2's remark holds only unnormalized: constant residual delta ~ 1 with gamma = 0.9.

    M always moves to state 1; the model (logits +-20) predicts state 0; V = (0, 1), so delta = 1 - p_phi(1) ~ 1.
    Unnormalized: VAML = H * 1 = 10 < direct L2 = (H * 1)^2 = 100. Normalized: VAML = direct = 1 (Jensen, equality).
    """
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    M = TabularMDP(P, np.zeros((2, 1)), [1.0, 0.0], 0.9)
    logits = np.zeros((2, 1, 2))
    logits[:, 0, 0] = 20.0
    logits[:, 0, 1] = -20.0
    r = O.l2_relation(M, np.ones((2, 1)), logits, np.array([0.0, 1.0]))
    assert r.vaml_unnormalized == pytest.approx(10.0, rel=1e-12)
    assert r.direct_unnormalized == pytest.approx(100.0, rel=1e-12)
    assert not r.unnormalized_vaml_bounds_direct
    assert r.direct <= r.vaml
    assert r.direct == pytest.approx(r.vaml, rel=1e-12)
    assert r.direct_unnormalized <= r.H * r.vaml_unnormalized * (1 + 1e-12)


@given(mdps(max_states=6, max_actions=3, sparse=False), st.integers(0, 2**32 - 1))
def test_mle_is_minimized_at_the_true_dynamics(M, seed):
    assume(np.all(M.P > 0))
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(M.A), size=M.S)
    logits = np.log(M.P)
    value, grad = O.exact_objective("mle", M, pi, logits, np.zeros(M.S))
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)
    other = logits + rng.normal(scale=0.3, size=logits.shape)
    assert O.exact_objective("mle", M, pi, other, np.zeros(M.S))[0] >= value - 1e-12


# ---- sampled -> exact ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def medium():
    rng = np.random.default_rng(12345)
    S, A = 5, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    M = TabularMDP(P, rng.uniform(-1, 1, (S, A)), rng.dirichlet(np.ones(S)), 0.9)
    pi = rng.dirichlet(np.ones(A), size=S)
    return M, pi, rng.normal(size=(S, A, S)), rng.normal(scale=2.0, size=S)


@pytest.mark.parametrize("name", ["mle", "ma_l1", "ma_vaml"])
def test_sampled_transitions_converge_to_exact(medium, name):
    """N = 200k i.i.d. transitions: value within 5 standard errors (SE estimated from the per-sample terms;
    a 5-sigma miss has probability < 1e-6), each gradient entry within 5 B / sqrt(N) with B a bound on the
    per-sample gradient term (std <= B). Fixed seed, so the test is deterministic."""
    M, pi, logits, V = medium
    N = 200_000
    batch = O.sample_transitions(M, pi, N, np.random.default_rng(7))
    value, grad = O.SAMPLED_OBJECTIVES[name](logits, V, batch, M.gamma)
    exact, exact_grad = O.exact_objective(name, M, pi, logits, V)
    delta = residuals(logits, V, batch)
    p = O.model_probs(logits)
    Jmax = np.abs(p * (V - (p @ V)[..., None])).max()
    if name == "mle":
        terms, B = -np.log(p[batch.s, batch.a, batch.s2]), 1.0
    elif name == "ma_l1":
        terms, B = np.abs(delta), Jmax
    else:
        terms, B = delta ** 2, 2 * np.abs(delta).max() * Jmax
    se = terms.std() / np.sqrt(N)
    assert abs(value - exact) < 5 * se
    assert np.abs(grad - exact_grad).max() < 5 * B / np.sqrt(N)


@pytest.mark.parametrize("norm", [1, 2])
def test_sampled_trajectories_converge_to_exact_direct(medium, norm):
    """m = 20k episodes of 150 steps (truncation gamma^150 ~ 1.4e-7 times sup|delta| / (1-gamma) << SE): the
    direct sum X within 5 standard errors of the per-episode sums."""
    M, pi, logits, V = medium
    m, T = 20_000, 150
    batch = O.sample_trajectories(M, pi, m, T, np.random.default_rng(11))
    assert batch.n_episodes == m and len(batch) == m * T
    value, _ = O.ma_direct_loss(logits, V, batch, M.gamma, norm)
    exact, _ = O.exact_objective(f"ma_direct_l{norm}", M, pi, logits, V)
    per_episode = np.bincount(batch.episode, weights=M.gamma ** batch.t * residuals(logits, V, batch))
    se = per_episode.std() / np.sqrt(m)
    X_hat, X = per_episode.mean(), np.sqrt(exact) if norm == 2 else exact
    err = 5 * se + M.gamma ** T * np.abs(V).max() * 2 / (1 - M.gamma)
    bound = err if norm == 1 else err * (2 * abs(X) + err)  # |X_hat^2 - X^2| = |X_hat - X| |X_hat + X|
    assert abs(value - exact) < bound
    assert abs(abs(X_hat) - abs(X)) < err


# ---- sampling ---------------------------------------------------------------------------------------
@given(mdp_and_policy(max_states=6, max_actions=3), st.integers(0, 2**32 - 1))
def test_trajectories_are_consistent_and_follow_support(Mpi, seed):
    M, pi = Mpi
    b = O.sample_trajectories(M, pi, 5, 7, np.random.default_rng(seed))
    P = M.dense_P()
    assert np.all(P[b.s, b.a, b.s2] > 0) and np.all(pi[b.s, b.a] > 0)
    for e in np.unique(b.episode):
        k = b.episode == e
        assert list(b.t[k]) == list(range(k.sum()))
        assert np.array_equal(b.s[k][1:], b.s2[k][:-1])
        assert M.p0[b.s[k][0]] > 0


def test_sparse_and_dense_sampling_agree_in_distribution():
    rng = np.random.default_rng(3)
    S, A = 4, 2
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    P[P < 0.1] = 0
    P /= P.sum(-1, keepdims=True)
    Md = TabularMDP(P, np.zeros((S, A)), np.ones(S) / S, 0.8)
    Ms = Md.replace(P=sp.csr_matrix(P.reshape(S * A, S)))
    pi = rng.dirichlet(np.ones(A), size=S)
    N = 100_000
    for M in (Md, Ms):
        b = O.sample_transitions(M, pi, N, np.random.default_rng(5))
        freq = np.bincount((b.s * A + b.a) * S + b.s2, minlength=S * A * S) / N
        target = (evaluate(M, pi).d[:, None] * pi)[..., None] * P
        # multinomial frequencies: SE <= 0.5/sqrt(N) ~ 1.6e-3; 5 SE bound
        assert np.abs(freq - target.ravel()).max() < 5 * 0.5 / np.sqrt(N)
        assert np.all(freq[target.ravel() == 0] == 0)


def test_trajectories_stop_at_terminal_states():
    # 0 -> 1 (terminal) deterministically
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    M = TabularMDP(P, np.zeros((2, 1)), [1.0, 0.0], 1.0, terminal=[1])
    b = O.sample_trajectories(M, np.ones((2, 1)), 3, 10, np.random.default_rng(0))
    assert len(b) == 3 and np.all(b.s == 0) and np.all(b.s2 == 1) and np.all(b.t == 0)
    # gamma = 1 episodic: exact direct uses H = expected episode length (1 step here)
    V = np.array([0.0, 1.0])
    logits = np.zeros((2, 1, 2))
    assert O.exact_objective("ma_direct_l1", M, np.ones((2, 1)), logits, V)[0] == pytest.approx(0.5)
    assert O.ma_direct_loss(logits, V, b, 1.0)[0] == pytest.approx(0.5)


# ---- validation -------------------------------------------------------------------------------------
def test_bad_input_raises_value_error():
    M, pi, logits, V = two_state()
    b = O.TransitionBatch([0, 1], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="choose from.*ma_l1"):
        O.exact_objective("ma_l3", M, pi, logits, V)
    with pytest.raises(ValueError, match=r"logits must have shape \(S, A, S\)"):
        O.mle_loss(np.zeros((2, 1, 3)), b)
    with pytest.raises(ValueError, match="finite"):
        O.ma_upper_l1_loss(np.full((2, 1, 2), np.nan), V, b)
    with pytest.raises(ValueError, match="V must have shape"):
        O.ma_vaml_l2_loss(logits, np.zeros(3), b)
    with pytest.raises(ValueError, match="V must be finite"):
        O.ma_vaml_l2_loss(logits, np.array([0.0, np.inf]), b)
    with pytest.raises(ValueError, match=r"s2 must lie in \[0, 2\)"):
        O.mle_loss(logits, O.TransitionBatch([0], [0], [2]))
    with pytest.raises(ValueError, match=r"a must lie in \[0, 1\)"):
        O.mle_loss(logits, O.TransitionBatch([0], [1], [0]))
    with pytest.raises(ValueError, match="same length"):
        O.TransitionBatch([0, 1], [0], [1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        O.TransitionBatch([0, -1], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="at least one"):
        O.TransitionBatch([], [], [])
    with pytest.raises(ValueError, match="integers"):
        O.TransitionBatch([0.5], [0], [1])
    with pytest.raises(ValueError, match="both t and episode"):
        O.TransitionBatch([0], [0], [1], t=[0])
    with pytest.raises(ValueError, match="1-D"):
        O.TransitionBatch([[0]], [[0]], [[1]])
    with pytest.raises(ValueError, match="needs a TransitionBatch with t and episode"):
        O.ma_direct_loss(logits, V, b, 0.5)
    bt = O.TransitionBatch([0], [0], [1], [0], [0])
    with pytest.raises(ValueError, match="norm must be 1 or 2"):
        O.ma_direct_loss(logits, V, bt, 0.5, norm=3)
    with pytest.raises(ValueError, match="gamma must lie"):
        O.ma_direct_loss(logits, V, bt, 1.5)
    with pytest.raises(ValueError, match="TransitionBatch"):
        O.mle_loss(logits, (np.array([0]), np.array([0]), np.array([1])))
    with pytest.raises(ValueError, match=r"logits must have shape \(S, A, S\)=\(2, 1, 2\)"):
        O.exact_objective("mle", M, pi, np.zeros((2, 2, 2)), V)
    with pytest.raises(ValueError, match="policy"):
        O.exact_objective("mle", M, np.ones((2, 2)), logits, V)
    with pytest.raises(ValueError, match="Generator"):
        O.sample_transitions(M, pi, 10, 0)
    with pytest.raises(ValueError, match="positive integer"):
        O.sample_trajectories(M, pi, 0, 5, np.random.default_rng())


def test_batch_is_immutable_copy():
    s = np.array([0, 1])
    b = O.TransitionBatch(s, [0, 0], [1, 1])
    s[0] = 1
    assert b.s[0] == 0 and not b.s.flags.writeable


def test_registries_follow_the_contract():
    assert set(O.SAMPLED_OBJECTIVES) == set(NAMES) == set(O.EXACT_OBJECTIVES)


def test_import_does_not_load_numba():
    code = "import sys, tabular, tabular.objectives; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_terminal_states_sampled_matches_exact():
    """Episodic MDP (state 3 absorbing terminal, gamma = 0.9): transitions are sampled from live states only,
    and the exact forms weight live states by their discounted visits (H = expected discounted live steps).
    Tolerances: 5 standard errors from the per-sample (per-episode) terms, as above."""
    rng = np.random.default_rng(2024)
    S, A = 4, 2
    P = rng.dirichlet(np.ones(S), size=(S, A))
    P[3] = 0.0
    P[3, :, 3] = 1.0
    R = rng.uniform(-1, 1, (S, A))
    R[3] = 0.0
    M = TabularMDP(P, R, [0.5, 0.5, 0.0, 0.0], 0.9, terminal=[3])
    pi = rng.dirichlet(np.ones(A), size=S)
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    b = O.sample_transitions(M, pi, 200_000, np.random.default_rng(1))
    assert not np.any(b.s == 3)
    delta = residuals(logits, V, b)
    value = O.ma_upper_l1_loss(logits, V, b)[0]
    assert abs(value - O.exact_objective("ma_l1", M, pi, logits, V)[0]) < 5 * np.abs(delta).std() / np.sqrt(len(b))
    m = 20_000
    tr = O.sample_trajectories(M, pi, m, 300, np.random.default_rng(2))
    per_episode = np.bincount(tr.episode, weights=M.gamma ** tr.t * residuals(logits, V, tr), minlength=m)
    exact = O.exact_objective("ma_direct_l1", M, pi, logits, V)[0]
    assert abs(O.ma_direct_loss(logits, V, tr, M.gamma)[0] - exact) < 5 * per_episode.std() / np.sqrt(m) + 1e-9
