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
