"""Samples from a :class:`TabularMDP`: the transition batch type, one inverse-CDF row sampler, and the
i.i.d.-transition and trajectory samplers the sampled objectives are estimated from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp

from ._validate import check_policy, check_rng, int_array, positive_int
from .mdp import TabularMDP
from .solve import visit_counts

__all__ = ["TransitionBatch", "RowSampler", "sample_transitions", "sample_trajectories"]


# ---- data -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TransitionBatch:
    """Transitions ``(s, a, s2)`` from the true environment, optionally with their place in an episode.

    Attributes:
        s, a, s2: ``(N,)`` integer arrays: state, action, next state.
        t: ``(N,)`` time index of each transition within its episode (``t >= 0``), or ``None``.
        episode: ``(N,)`` episode id of each transition, or ``None``. ``t`` and ``episode`` are needed only
            by the direct objectives (Eq. 8), which weight by ``gamma^t`` and average over episodes.

    The arrays are copied to read-only ``int64``; their ranges are checked once here (non-negative, equal
    length, ``N >= 1``) and against ``(S, A)`` by each objective in O(1) using the stored maxima.

    Raises:
        ValueError: on non-integer or non-1-D arrays, unequal lengths, an empty batch, negative entries, or
            only one of ``t``/``episode`` given.
    """

    s: np.ndarray
    a: np.ndarray
    s2: np.ndarray
    t: Optional[np.ndarray] = None
    episode: Optional[np.ndarray] = None
    _max: Tuple[int, int, int] = field(init=False, repr=False, compare=False)
    _n_episodes: int = field(init=False, repr=False, compare=False)
    _sa: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        names = ("s", "a", "s2") + tuple(k for k in ("t", "episode") if getattr(self, k) is not None)
        if (self.t is None) != (self.episode is None):
            raise ValueError("give both t and episode (needed by the direct objectives) or neither")
        arrays = {k: int_array(k, getattr(self, k)) for k in names}
        n = len(arrays["s"])
        for k, v in arrays.items():
            if len(v) != n:
                raise ValueError(f"all arrays must have the same length; s has {n}, {k} has {len(v)}")
        if n == 0:
            raise ValueError("a TransitionBatch needs at least one transition")
        for k, v in arrays.items():
            if v.min() < 0:
                i = int(np.argmin(v))
                raise ValueError(f"{k} must be non-negative; {k}[{i}] = {v[i]}")
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_max", (int(arrays["s"].max()), int(arrays["a"].max()), int(arrays["s2"].max())))
        n_ep = len(np.unique(arrays["episode"])) if "episode" in arrays else 0
        object.__setattr__(self, "_n_episodes", n_ep)

    def __len__(self) -> int:
        return len(self.s)

    def sa(self, A: int) -> np.ndarray:
        """Flattened state-action indices ``s * A + a`` ``(N,)`` (computed once per ``A`` and cached)."""
        if A not in self._sa:
            sa = self.s * A + self.a
            sa.setflags(write=False)
            self._sa[A] = sa
        return self._sa[A]

    @property
    def n_episodes(self) -> int:
        """Number of distinct episode ids (``m`` of Eq. 8); 0 when ``episode`` is absent."""
        return self._n_episodes

    def check(self, S: int, A: int) -> None:
        """Raise ``ValueError`` unless every ``s, s2 < S`` and ``a < A`` (O(1): uses the stored maxima)."""
        for name, hi, lim in zip(("s", "a", "s2"), self._max, (S, A, S)):
            if hi >= lim:
                i = int(np.argmax(getattr(self, name)))
                raise ValueError(f"{name} must lie in [0, {lim}); {name}[{i}] = {hi}")


# ---- samplers -----------------------------------------------------------------------------------------
def _shift(rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``rows + u``, kept below ``rows + 1``: for ``u`` within ``rows * 2^-53`` of 1 the sum rounds up to
    ``rows + 1``, which would search into the next row's table."""
    x = rows + u
    return np.minimum(x, np.nextafter(rows + 1.0, 0.0))


class RowSampler:
    """Draws a column from chosen rows of a row-stochastic matrix (dense ``(n, k)`` or CSR) by inversion.

    Row ``r``'s cumulative distribution is shifted to ``(r, r + 1]`` so one ``searchsorted`` over all rows
    serves every draw; zero-probability entries are never drawn.
    """

    def __init__(self, P):
        if sp.issparse(P):
            P = sp.csr_matrix(P)
            lengths = np.diff(P.indptr)
            rows = np.repeat(np.arange(P.shape[0]), lengths)
            cum = np.cumsum(P.data)
            start = np.concatenate(([0.0], cum))[P.indptr[:-1]]
            totals = np.add.reduceat(P.data, P.indptr[:-1]) if len(P.data) else np.zeros(0)
            totals = np.where(lengths > 0, totals, 1.0)
            local = (cum - start[rows]) / totals[rows]
            local[P.indptr[1:][lengths > 0] - 1] = 1.0  # each row's cdf ends at exactly 1
            self._cols = P.indices
        else:
            P = np.asarray(P)
            n, k = P.shape
            c = np.cumsum(P, axis=1)
            c /= c[:, -1:]
            np.minimum(c, 1.0, out=c)  # the last entry of each row is exactly 1: every draw lands inside its row
            c += np.arange(n, dtype=np.float64)[:, None]
            self._G = c.ravel()
            self._k = k  # dense: the column is the flat index mod k (no (n*k,) column table)
            return
        # clamp the last entry of each row to exactly 1 so every draw lands inside its row
        self._G = rows + np.minimum(local, 1.0)
        self._k = None

    @property
    def table(self) -> np.ndarray:
        """The shifted cumulative table ``(n*k,)`` of a dense sampler (row ``r`` in ``(r, r + 1]``); the column
        of flat index ``i`` is ``i % k``."""
        if self._k is None:
            raise ValueError("table: only a sampler built from a dense matrix has a flat (n*k,) table")
        return self._G

    def draw(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The column of each row in ``rows`` ``(B,)`` whose cumulative probability first exceeds ``u`` ``(B,)``,
        ``u`` uniform in ``[0, 1)``."""
        i = np.searchsorted(self._G, _shift(rows, u), side="right")
        return i % self._k if self._k is not None else self._cols[i]

    def sample(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw from each row in ``rows`` ``(B,)`` (``B`` uniforms from ``rng``)."""
        return self.draw(rows, rng.random(len(rows)))


def _check_sampling(M, pi, rng) -> np.ndarray:
    check_rng(rng)
    return check_policy(M, pi)


def sample_transitions(M: TabularMDP, pi, n: int, rng: np.random.Generator) -> TransitionBatch:
    """``n`` i.i.d. transitions ``s ~ d_{M,pi}`` (normalized, Eq. 1), ``a ~ pi(s)``, ``s2 ~ P_M(s, a)``.

    Their empirical objectives are unbiased for :func:`exact_objective` (the non-direct forms). With
    terminal states, ``d`` lives on the live states.
    """
    pi = _check_sampling(M, pi, rng)
    n = positive_int("n", n)
    w = visit_counts(M, pi)
    if w.sum() <= 0:
        raise ValueError("p0 is supported on terminal states only: the policy makes no transitions")
    w = np.maximum(w, 0.0)  # visit counts are >= 0; drop round-off below 0
    s = rng.choice(M.S, size=n, p=w / w.sum())
    a = RowSampler(pi).sample(s, rng)
    s2 = RowSampler(M.P_flat).sample(s * M.A + a, rng)
    return TransitionBatch(s, a, s2)


def sample_trajectories(M: TabularMDP, pi, n_traj: int, horizon: int, rng: np.random.Generator) -> TransitionBatch:
    """``n_traj`` episodes from ``s_0 ~ p0`` following ``pi`` in ``M`` for ``horizon`` steps (or until a
    terminal state is entered), as one batch with ``t`` and ``episode`` set (sorted by episode, then ``t``).

    The direct objective of such a batch estimates the exact one up to the truncation ``gamma^horizon``.
    """
    pi = _check_sampling(M, pi, rng)
    n_traj = positive_int("n_traj", n_traj)
    horizon = positive_int("horizon", horizon)
    act, nxt = RowSampler(pi), RowSampler(M.P_flat)
    s = RowSampler(M.p0[None, :]).sample(np.zeros(n_traj, dtype=np.int64), rng)
    ep = np.arange(n_traj)
    live = ~M.terminal[s]
    s, ep = s[live], ep[live]
    parts = []
    for t in range(horizon):
        if len(s) == 0:
            break
        a = act.sample(s, rng)
        s2 = nxt.sample(s * M.A + a, rng)
        parts.append((s, a, s2, np.full(len(s), t), ep))
        live = ~M.terminal[s2]
        s, ep = s2[live], ep[live]
    if not parts:
        raise ValueError("p0 is supported on terminal states only: the policy makes no transitions")
    s, a, s2, t, e = (np.concatenate(x) for x in zip(*parts))
    order = np.lexsort((t, e))
    return TransitionBatch(s[order], a[order], s2[order], t[order], e[order])
