"""tabular._kernels: every numba kernel equals its numpy reference; objectives agree on both dispatch paths."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import random_stochastic
from tabular import _kernels as K
from tabular import objectives as O
from tabular import TabularMDP


@st.composite
def residual_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    S, A, N = draw(st.integers(1, 20)), draw(st.integers(1, 4)), draw(st.integers(1, 3000))
    V = rng.normal(size=S)
    pV = rng.normal(size=S * A)
    if draw(st.booleans()):  # exact ties: residual exactly 0 for some samples (sign(0) = 0 on both paths)
        pV = V[rng.integers(0, S, size=S * A)]
    sa, s2 = rng.integers(0, S * A, size=N), rng.integers(0, S, size=N)
    t = rng.integers(0, draw(st.sampled_from([1, 50, 500])), size=N)
    gamma = draw(st.sampled_from([0.0, 0.5, 0.99, 1.0]))
    return pV, V, sa, s2, t, gamma, S * A


@given(residual_inputs(), st.sampled_from([K.DELTA_ABS, K.DELTA_SQUARE, K.DELTA_DISCOUNTED]))
def test_delta_kernel_equals_numpy_reference(inputs, kind):
    pV, V, sa, s2, t, gamma, SA = inputs
    total_np, W_np = K.delta_accumulate_numpy(pV, V, sa, s2, t, gamma, kind, SA)
    total_nb, W_nb = K.delta_accumulate_numba(pV, V, sa, s2, t, gamma, kind, SA)
    # summation order differs (pairwise vs sequential; gamma^t by table vs pow): round-off only
    assert total_nb == pytest.approx(total_np, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(W_nb, W_np, rtol=1e-10, atol=1e-10)


def test_delta_kernel_huge_time_indices_use_pow():
    # t far beyond N takes the per-sample pow branch instead of a gamma^t table
    V, pV = np.array([0.0, 1.0]), np.zeros(2)
    sa, s2, t = np.array([0, 1]), np.array([1, 1]), np.array([10**7, 3])
    total, W = K.delta_accumulate_numba(pV, V, sa, s2, t, 0.5, K.DELTA_DISCOUNTED, 2)
    assert total == pytest.approx(0.5 ** 3 + 0.5 ** 1e7)
    np.testing.assert_allclose(W, [0.0, 0.125])


@given(st.integers(0, 2**32 - 1), st.integers(1, 15), st.integers(1, 4), st.integers(1, 2000))
def test_nll_kernel_equals_numpy_reference(seed, S, A, N):
    rng = np.random.default_rng(seed)
    logp = -rng.random(S * A * S) * 5
    sa, s2 = rng.integers(0, S * A, size=N), rng.integers(0, S, size=N)
    ref = K.nll_accumulate_numpy(logp, sa, s2, S)
    out = K.nll_accumulate_numba(logp, sa, s2, S)
    assert out[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_array_equal(out[1], ref[1])
    np.testing.assert_array_equal(out[2], ref[2])


@given(st.integers(0, 2**32 - 1), st.sampled_from(list(O.SAMPLED_OBJECTIVES)))
def test_objectives_agree_on_kernel_and_numpy_paths(seed, name):
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    P = random_stochastic(rng, (S, A, S), 0.5)
    M = TabularMDP(P, rng.uniform(-1, 1, (S, A)), random_stochastic(rng, (S,), 1.0), 0.9)
    pi = random_stochastic(rng, (S, A), 1.0)
    batch = O.sample_trajectories(M, pi, 30, 20, rng)
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    f = O.SAMPLED_OBJECTIVES[name]
    saved = O.KERNEL_MIN_BATCH
    try:
        O.KERNEL_MIN_BATCH = 0
        v1, g1 = f(logits, V, batch, M.gamma)
        O.KERNEL_MIN_BATCH = 1 << 62
        v2, g2 = f(logits, V, batch, M.gamma)
    finally:
        O.KERNEL_MIN_BATCH = saved
    assert v1 == pytest.approx(v2, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-12)


def test_kernels_are_compiled_lazily():
    # importing the module imports neither numba nor compiles anything; the wrappers keep the Python function
    code = "import sys, tabular._kernels as K; assert 'numba' not in sys.modules; assert callable(K.nll_accumulate_numba.py_func)"
    subprocess.run([sys.executable, "-c", code], check=True)


@st.composite
def rollout_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    S, A = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    T, B = draw(st.integers(1, 20)), draw(st.integers(1, 16))
    P = rng.dirichlet(np.full(S, 0.3), size=S * A)
    P[rng.random(P.shape) < 0.3] = 0.0  # zero-probability columns must never be drawn
    P[np.arange(S * A), rng.integers(0, S, S * A)] += 1e-3
    P /= P.sum(axis=1, keepdims=True)
    pi = rng.dirichlet(np.ones(A), size=S)
    terminal = rng.random(S) < 0.2
    u = rng.random((T, 2, B))
    if draw(st.booleans()):
        u[..., :1] = np.nextafter(1.0, 0.0)  # the largest uniform: the round-off edge of the shifted tables
    start = rng.integers(0, S, size=B)
    return P, pi, terminal, start, rng.normal(size=(S, S)), u


@given(rollout_inputs())
def test_rollout_kernel_equals_numpy_reference_and_the_model(inputs):
    from tabular.sampling import RowSampler

    P, pi, terminal, start, reward, u = inputs
    S, A = pi.shape
    Gm, Gp = RowSampler(P).table, RowSampler(pi).table
    ref = K.rollout_numpy(Gm, Gp, A, start, reward, terminal, u)
    out = K.rollout_numba(Gm, Gp, A, start, reward, terminal, u)
    for a, b in zip(out, ref):
        np.testing.assert_array_equal(a, b)
    s, a, r, alive, last, last_alive = out
    # every drawn action and transition has positive probability; rewards follow (s, s'); dead rows score 0
    nxt = np.vstack([s[1:], last[None]])
    assert (pi[s, a] > 0).all() and (P[s * A + a, nxt] > 0).all()
    np.testing.assert_array_equal(r, np.where(alive, reward[s, nxt], 0.0))
    np.testing.assert_array_equal(alive[0], ~terminal[start])


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.sampled_from([0.0, 0.5, 0.99]))
def test_returns_kernel_equals_numpy_reference_and_a_hand_sum(seed, T, B, gamma):
    rng = np.random.default_rng(seed)
    S = 5
    r, V = rng.normal(size=(T, B)), rng.normal(size=S)
    alive = np.cumprod(rng.random((T, B)) < 0.9, axis=0).astype(bool)  # once dead, dead
    r[~alive] = 0.0
    last, last_alive = rng.integers(0, S, B), alive[-1] & (rng.random(B) < 0.8)
    ref = K.returns_numpy(r, alive, last, last_alive, V, gamma)
    np.testing.assert_array_equal(K.returns_numba(r, alive, last, last_alive, V, gamma), ref)
    b, t = rng.integers(B), rng.integers(T)  # one entry by the definition
    hand = sum(gamma ** (k - t) * r[k, b] for k in range(t, T)) + gamma ** (T - t) * (V[last[b]] if last_alive[b] else 0)
    assert ref[t, b] == pytest.approx(hand if alive[t, b] else 0.0, abs=1e-12)


@given(st.integers(0, 2**32 - 1), st.integers(1, 200), st.integers(1, 50))
def test_adam_kernel_equals_numpy_reference_bit_for_bit(seed, n, steps):
    rng = np.random.default_rng(seed)
    x, m, v = rng.normal(size=n), np.zeros(n), np.zeros(n)
    x2, m2, v2 = x.copy(), m.copy(), v.copy()
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 1e-8
    for k in range(1, steps + 1):
        g = rng.normal(size=n) * rng.choice([1e-6, 1.0, 1e3])
        c2 = np.sqrt(1 - b2 ** k)
        K.adam_step_numpy(x, g, m, v, b1, b2, eps, c2, lr * c2 / (1 - b1 ** k))
        K.adam_step_numba(x2, g, m2, v2, b1, b2, eps, c2, lr * c2 / (1 - b1 ** k))
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(m2, m)
    np.testing.assert_array_equal(v2, v)
    # the first step of Adam moves every coordinate by lr * sign(g) (up to eps): a closed form
    y, g = np.zeros(3), np.array([2.0, -0.5, 1e-3])
    K.adam_step_numba(y, g, np.zeros(3), np.zeros(3), b1, b2, 0.0, np.sqrt(1 - b2), lr * np.sqrt(1 - b2) / (1 - b1))
    np.testing.assert_allclose(y, -lr * np.sign(g), rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_row_sampler_never_draws_a_zero_probability_column_at_the_round_off_edge(sparse):
    import scipy.sparse as sp

    from tabular.sampling import RowSampler

    # row r's last column has zero probability while row r + 1's first column is likely: with u just below 1,
    # r + u rounds to r + 1 for large r, which must not leak into row r + 1
    n, k = 5000, 3
    P = np.tile([0.5, 0.5, 0.0], (n, 1))
    P[1::2] = [0.0, 0.0, 1.0]
    rows = np.arange(0, n, 2)
    u = np.full(len(rows), np.nextafter(1.0, 0.0))
    cols = RowSampler(sp.csr_matrix(P) if sparse else P).draw(rows, u)
    assert (P[rows, cols] > 0).all()
    np.testing.assert_array_equal(cols, 1)  # inversion: u -> 1 takes the last positive column
