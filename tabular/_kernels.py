"""Numba kernels for the hot loops of :mod:`tabular.objectives`, :mod:`tabular.mdp` and the gridworld's model
rollouts, each next to the plain-numpy reference it must equal (``tests/tabular/test_kernels.py`` checks every
pair).

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
    "rollout_numpy",
    "rollout_numba",
    "returns_numpy",
    "returns_numba",
    "adam_step_numpy",
    "adam_step_numba",
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


# ---- model rollouts -------------------------------------------------------------------------------
def rollout_numpy(G_model, G_pi, A, start, reward, terminal, u):
    """``B`` rollouts of ``T`` steps in a tabular model, by inversion on shifted cumulative tables.

    Args:
        G_model: ``(S*A*S,)`` shifted cumulative table of ``P(.|sa)`` (row ``sa`` in ``(sa, sa + 1]``, the form of
            :class:`tabular.sampling.RowSampler`); ``G_pi``: the same for ``pi`` ``(S*A,)``.
        start: ``(B,)`` start states; ``reward`` ``(S, S)`` scores ``(s, s')``; ``terminal`` ``(S,)`` bool.
        u: ``(T, 2, B)`` uniforms in ``[0, 1)``: ``u[t, 0]`` draws the actions, ``u[t, 1]`` the next states.

    Returns:
        ``(s, a, r, alive, last, last_alive)``: ``(T, B)`` states, actions, rewards (0 once terminated) and
        live masks, and the ``(B,)`` final states and live mask.
    """
    from .sampling import _shift

    T, _, B = u.shape
    S = terminal.shape[0]
    s = start.astype(np.int64).copy()
    alive = ~terminal[s]
    out_s = np.empty((T, B), dtype=np.int64)
    out_a = np.empty((T, B), dtype=np.int64)
    out_r = np.zeros((T, B))
    out_alive = np.empty((T, B), dtype=bool)
    for t in range(T):
        a = np.searchsorted(G_pi, _shift(s, u[t, 0]), side="right") % A
        out_s[t], out_a[t], out_alive[t] = s, a, alive
        s2 = np.searchsorted(G_model, _shift(s * A + a, u[t, 1]), side="right") % S
        out_r[t] = np.where(alive, reward[s, s2], 0.0)
        s = s2
        alive = alive & ~terminal[s]
    return out_s, out_a, out_r, out_alive, s, alive


def _rollout(G_model, G_pi, A, start, reward, terminal, u):  # pragma: no cover - compiled by numba
    T, _, B = u.shape
    S = terminal.shape[0]
    out_s = np.empty((T, B), dtype=np.int64)
    out_a = np.empty((T, B), dtype=np.int64)
    out_r = np.zeros((T, B))
    out_alive = np.empty((T, B), dtype=np.bool_)
    last = np.empty(B, dtype=np.int64)
    last_alive = np.empty(B, dtype=np.bool_)
    for b in range(B):
        s = np.int64(start[b])
        alive = not terminal[s]
        for t in range(T):
            # the same global search as the numpy reference, so every draw (round-off included) agrees
            x = min(s + u[t, 0, b], np.nextafter(s + 1.0, 0.0))
            a = np.searchsorted(G_pi, x, side="right") % A
            out_s[t, b], out_a[t, b], out_alive[t, b] = s, a, alive
            sa = s * A + a
            x = min(sa + u[t, 1, b], np.nextafter(sa + 1.0, 0.0))
            s2 = np.searchsorted(G_model, x, side="right") % S
            if alive:
                out_r[t, b] = reward[s, s2]
            s = s2
            alive = alive and not terminal[s]
        last[b], last_alive[b] = s, alive
    return out_s, out_a, out_r, out_alive, last, last_alive


#: numba twin of :func:`rollout_numpy` (one rollout at a time, no per-step array temporaries).
rollout_numba = _lazy_njit(_rollout)


# ---- Adam ---------------------------------------------------------------------------------------------
def adam_step_numpy(x, g, m, v, b1, b2, eps, c2, step):
    """One in-place Adam step on flat arrays (Kingma & Ba, 2015, Sec. 2's efficient form):
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``x -= step * m / (sqrt(v) + eps c2)`` with
    ``c2 = sqrt(1 - b2^n)`` and ``step = lr c2 / (1 - b1^n)``."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    denom = np.sqrt(v)
    denom += eps * c2
    x -= step * m / denom


def _adam_step(x, g, m, v, b1, b2, eps, c2, step):  # pragma: no cover - compiled by numba
    # the reference's operations in its order, element by element: the same IEEE results, one pass
    a1, a2, e = 1 - b1, 1 - b2, eps * c2
    for i in range(x.shape[0]):
        gi = g[i]
        mi = m[i] * b1 + a1 * gi
        vi = v[i] * b2 + a2 * (gi * gi)
        m[i], v[i] = mi, vi
        x[i] -= step * mi / (np.sqrt(vi) + e)


#: numba twin of :func:`adam_step_numpy`.
adam_step_numba = _lazy_njit(_adam_step)


def returns_numpy(r, alive, last, last_alive, V, gamma):
    """Bootstrapped n-step returns of :func:`rollout_numpy`'s rollouts: ``G_t = r_t + gamma G_{t+1}`` from
    ``G_T = V[last]`` (0 where the rollout ended), 0 where ``alive`` is false; ``(T, B)``."""
    G = np.where(last_alive, V[last], 0.0)
    out = np.empty_like(r)
    for t in range(r.shape[0] - 1, -1, -1):
        G = r[t] + gamma * G  # r = 0 after termination and the terminal continuation is 0
        G = np.where(alive[t], G, 0.0)
        out[t] = G
    return out


def _returns(r, alive, last, last_alive, V, gamma):  # pragma: no cover - compiled by numba
    T, B = r.shape
    out = np.empty_like(r)
    for b in range(B):
        G = V[last[b]] if last_alive[b] else 0.0
        for t in range(T - 1, -1, -1):
            G = r[t, b] + gamma * G
            if not alive[t, b]:
                G = 0.0
            out[t, b] = G
    return out


#: numba twin of :func:`returns_numpy`.
returns_numba = _lazy_njit(_returns)
