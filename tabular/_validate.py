"""The one place inputs of the exact core are checked. Public functions call these once, at the boundary, and
then call unchecked internals; every failure is a ``ValueError`` naming the offending index or value."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Tolerance on probabilities: entries may undershoot 0 or overshoot 1 by this much, rows may miss 1 by it.
PROB_ATOL = 1e-8


def check_finite(name: str, x: np.ndarray) -> None:
    x = np.asarray(x)
    if x.dtype.kind == "f":
        with np.errstate(all="ignore"):  # overflow of a finite sum only sends us to the full check
            total = np.add.reduce(x, axis=None)
        if np.isfinite(total):
            return  # a finite sum has no inf or nan among its terms (one pass, no temporary mask)
    if not np.all(np.isfinite(x)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{name} must be finite; found {x[idx]} at index {idx}")


def check_stochastic_rows(name: str, rows: np.ndarray | None, row_sums: np.ndarray, A: int | None) -> None:
    """rows: 2-D dense view (or None for sparse), row_sums: (n,). Reports the first bad (s, a) row."""

    def where(i: int) -> str:
        return f"(s={i // A}, a={i % A})" if A is not None else f"s={i}"

    if rows is not None:
        mask = (rows < -PROB_ATOL) | (rows > 1 + PROB_ATOL)
        bad = np.argwhere(mask) if mask.any() else ()
        if len(bad):
            i, j = (int(v) for v in bad[0])
            raise ValueError(f"{name}: probabilities must lie in [0, 1]; row {where(i)} has {rows[i, j]} at s'={j}")
    bad_rows = np.flatnonzero(np.abs(row_sums - 1.0) > 1e-6)
    if len(bad_rows):
        i = int(bad_rows[0])
        raise ValueError(f"{name}: each row must sum to 1; row {where(i)} sums to {row_sums[i]:.10g}")


def check_mdp(M: Any) -> None:
    from .mdp import TabularMDP

    if not isinstance(M, TabularMDP):
        raise ValueError(f"expected a TabularMDP; got {type(M).__name__}")


def check_pair(M, M2) -> None:
    """Both MDPs must live on the same state/action space with the same gamma, p0 and terminals."""
    check_mdp(M)
    check_mdp(M2)
    if (M.S, M.A) != (M2.S, M2.A):
        raise ValueError(f"the two MDPs must have the same (S, A); got {(M.S, M.A)} and {(M2.S, M2.A)}")
    if M.gamma != M2.gamma:
        raise ValueError(f"the two MDPs must have the same gamma; got {M.gamma} and {M2.gamma}")
    if not np.allclose(M.p0, M2.p0, rtol=0, atol=1e-12):
        i = int(np.argmax(np.abs(M.p0 - M2.p0)))
        raise ValueError(f"the two MDPs must have the same p0; they differ at s={i}: {M.p0[i]} vs {M2.p0[i]}")
    if not np.array_equal(M.terminal, M2.terminal):
        i = int(np.flatnonzero(M.terminal != M2.terminal)[0])
        raise ValueError(f"the two MDPs must have the same terminal states; they differ at s={i}")


def check_policy(M, pi: Any) -> np.ndarray:
    """``pi`` as a float ``(S, A)`` array, or ``ValueError`` naming the first bad row."""
    check_mdp(M)
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (M.S, M.A):
        raise ValueError(f"policy must have shape (S, A)=({M.S}, {M.A}); got {pi.shape}")
    check_finite("policy", pi)
    check_stochastic_rows("policy", pi, pi.sum(axis=1), None)
    return pi


def check_values(V: Any, S: int, name: str = "V") -> np.ndarray:
    V = np.asarray(V, dtype=np.float64)
    if V.shape != (S,):
        raise ValueError(f"{name} must have shape (S,)=({S},); got {V.shape}")
    bad = np.flatnonzero(~np.isfinite(V))
    if len(bad):
        raise ValueError(f"{name} must be finite; found {V[bad[0]]} at s={int(bad[0])}")
    return V


def check_logits(logits: Any, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[0] != logits.shape[2] or 0 in logits.shape:
        raise ValueError(f"logits must have shape (S, A, S) with S, A >= 1; got {logits.shape}")
    if shape is not None and logits.shape != shape:
        raise ValueError(f"logits must have shape (S, A, S)={shape}; got {logits.shape}")
    check_finite("logits", logits)
    return logits


def check_gamma(gamma: Any, allow_one: bool = True) -> float:
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a number; got {gamma!r}") from None
    if not (0.0 <= g <= 1.0) or (g == 1.0 and not allow_one):
        raise ValueError(f"gamma must lie in [0, 1{']' if allow_one else ')'}; got {gamma!r}")
    return g


def int_array(name: str, x: Any) -> np.ndarray:
    """A read-only 1-D ``int64`` copy of ``x``."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integers; got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.int64)
    out.setflags(write=False)
    return out


def positive_int(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer, float)) or int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer; got {n!r}")
    return int(n)


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    return rng
