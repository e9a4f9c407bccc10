"""Numba kernels for the hot loops of :mod:`tabular.objectives` and :mod:`tabular.mdp`, each next to the
plain-numpy reference it must equal (``tests/test_kernels.py`` checks every pair).

Nothing here is compiled at import time, and ``numba`` itself is imported only when a kernel is first
called (:func:`_lazy_njit`), so ``import tabular`` stays fast. Kernels are compiled with ``cache=True``:
the first call in a fresh environment pays the compilation once, later processes load it from disk.

Not here: building ``P_pi`` from a sparse ``(S*A, S)`` CSR matrix. A numba Gustavson kernel with sorted
rows took 5 ms (insertion sort) to 21 ms (``np.sort``) on the 65,536-state grid of the benchmark, against
2.8 ms for scipy's ``W @ P`` in :func:`tabular.mdp.transition_matrix` (which leaves rows unsorted), and both are
~1% of the sparse LU that follows, so scipy stays.

Shape vocabulary: ``S`` states, ``A`` actions, ``N`` transitions; ``sa = s * A + a`` indexes a flattened
``(S*A,)`` state-action array and ``sa * S + s2`` a flattened ``(S*A*S,)`` one.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DELTA_ABS",
    "DELTA_SQUARE",
    "DELTA_DISCOUNTED",
    "delta_accumulate_numpy",
    "delta_accumulate_numba",
    "nll_accumulate_numpy",
    "nll_accumulate_numba",
]

#: ``kind`` codes of :func:`delta_accumulate_numpy`.
DELTA_ABS, DELTA_SQUARE, DELTA_DISCOUNTED = 0, 1, 2


def _lazy_njit(fn):
    """``numba.njit(cache=True)(fn)``, applied (and ``numba`` imported) on the first call only."""
    compiled = None

    def wrapper(*args):
        nonlocal compiled
        if compiled is None:
            import numba

            compiled = numba.njit(cache=True, nogil=True)(fn)
        return compiled(*args)

    wrapper.py_func = fn
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# ---- value-aware objectives: delta_i = V[s2_i] - (P_phi V)[sa_i] --------------------------------------
def delta_accumulate_numpy(pV, V, sa, s2, t, gamma, kind, SA):
    """Per-sample residuals reduced to a scalar and scattered to state-action weights.

    With ``delta_i = V[s2_i] - pV[sa_i]`` (``pV`` ``(S*A,)`` the model's predicted next value):

    * ``kind=DELTA_ABS``:        ``total = sum_i |delta_i|``,          ``W[sa] = sum_{i: sa_i=sa} sign(delta_i)``
    * ``kind=DELTA_SQUARE``:     ``total = sum_i delta_i^2``,          ``W[sa] = sum 2 delta_i``
    * ``kind=DELTA_DISCOUNTED``: ``total = sum_i gamma^t_i delta_i``,  ``W[sa] = sum gamma^t_i``

    ``W`` is the derivative of ``total`` w.r.t. ``-pV[sa]`` (the chain rule to the logits is applied by the
    caller). ``t`` ``(N,)`` is read only for ``DELTA_DISCOUNTED``. ``sign(0) = 0``.

    Returns:
        ``(total: float, W: ndarray (SA,))``.
    """
    delta = V[s2] - pV[sa]
    if kind == DELTA_ABS:
        return float(np.abs(delta).sum()), np.bincount(sa, weights=np.sign(delta), minlength=SA)
    if kind == DELTA_SQUARE:
        return float(delta @ delta), np.bincount(sa, weights=2.0 * delta, minlength=SA)
    c = np.power(gamma, t.astype(np.float64))
    return float(c @ delta), np.bincount(sa, weights=c, minlength=SA)


def _delta_accumulate(pV, V, sa, s2, t, gamma, kind, SA):  # pragma: no cover - compiled by numba
    W = np.zeros(SA)
    total = 0.0
    n = sa.shape[0]
    if kind == 0:
        for i in range(n):
            d = V[s2[i]] - pV[sa[i]]
            total += abs(d)
            W[sa[i]] += np.sign(d)  # compiles branch-free (random signs would defeat branch prediction)
    elif kind == 1:
        for i in range(n):
            d = V[s2[i]] - pV[sa[i]]
            total += d * d
            W[sa[i]] += 2.0 * d
    else:
        tmax = 0
        for i in range(n):
            tmax = max(tmax, t[i])
        if tmax > 4 * n + 1024:  # sparse huge time indices: a table would be wasteful
            for i in range(n):
                c = gamma ** t[i]
                total += c * (V[s2[i]] - pV[sa[i]])
                W[sa[i]] += c
        else:
            powers = np.empty(tmax + 1)  # gamma^t by repeated multiplication: a table instead of N pow calls
            c = 1.0
            for k in range(tmax + 1):
                powers[k] = c
                c *= gamma
            for i in range(n):
                c = powers[t[i]]
                total += c * (V[s2[i]] - pV[sa[i]])
                W[sa[i]] += c
    return total, W


#: numba twin of :func:`delta_accumulate_numpy` (same arguments and results, one fused pass).
delta_accumulate_numba = _lazy_njit(_delta_accumulate)


# ---- maximum likelihood ----------------------------------------------------------------------------
def nll_accumulate_numpy(logp, sa, s2, S):
    """Negative log-likelihood of transitions and the counts its gradient needs.

    Args:
        logp: ``(S*A*S,)`` flattened log-probabilities ``log P_phi(s2 | s, a)``.
        sa, s2: ``(N,)`` state-action and next-state indices.

    Returns:
        ``(total, n_sa, n_sas)``: ``total = -sum_i logp[sa_i, s2_i]``, ``n_sa`` ``(S*A,)`` visit counts,
        ``n_sas`` ``(S*A*S,)`` transition counts (float).
    """
    flat = sa * S + s2
    SA = logp.shape[0] // S
    return (-float(logp[flat].sum()), np.bincount(sa, minlength=SA).astype(np.float64),
            np.bincount(flat, minlength=SA * S).astype(np.float64))


def _nll_accumulate(logp, sa, s2, S):  # pragma: no cover - compiled by numba
    SA = logp.shape[0] // S
    n_sa = np.zeros(SA)
    n_sas = np.zeros(SA * S)
    total = 0.0
    for i in range(sa.shape[0]):
        j = sa[i] * S + s2[i]
        total -= logp[j]
        n_sa[sa[i]] += 1.0
        n_sas[j] += 1.0
    return total, n_sa, n_sas


#: numba twin of :func:`nll_accumulate_numpy`.
nll_accumulate_numba = _lazy_njit(_nll_accumulate)
