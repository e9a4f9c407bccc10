"""Model-learning objectives for a tabular softmax model, sampled and exact, with closed-form gradients.

The model is ``P_phi(s' | s, a) = softmax(logits[s, a, :])`` with ``logits`` of shape ``(S, A, S)``; the value
``V`` ``(S,)`` is held fixed (the paper differentiates only through the model's prediction, Eq. 8 and its
footnote). Every objective returns ``(value, grad)`` with ``grad = d value / d logits`` of shape ``(S, A, S)``.

Notation: for a transition ``(s, a, s2)`` the residual is

    delta = V[s2] - sum_x P_phi(x | s, a) V[x]        (the model advantage of Eq. 2 divided by gamma)

and the softmax Jacobian gives ``d/dlogits[s, a, :] (P_phi(s, a) . V) = P_phi(s, a) * (V - P_phi(s, a) . V)``,
so every value-aware gradient is ``-(weight of row (s, a)) * P_phi(s, a) * (V - P_phi(s, a) . V)``.

Conventions:

* The residual uses the *taken* action's prediction ``P_phi(s, a)`` (``a`` from the data). In expectation over
  ``a ~ pi`` this equals the policy-averaged prediction ``P^pi_phi(s)`` of Eqs. 6-8 for the direct (linear)
  objectives; for the absolute/squared ones it is the per-action form used by the tabular experiments.
* |x| has subgradient ``sign(x)`` with ``sign(0) = 0``: at an exact zero residual (or an exact zero direct sum)
  the gradient contribution is 0.
* Exact objectives (:func:`exact_objective`) are the expectations of the sampled forms when transitions are
  drawn ``s ~ d_{M,pi}`` (normalized, Eq. 1), ``a ~ pi(s)``, ``s2 ~ P_M(s, a)``; the direct forms use
  infinitely long trajectories from ``p0``, i.e. ``|H E_d[delta]|`` (or its square) with the horizon
  ``H = sum_t gamma^t = 1 / (1 - gamma)``. (With absorbing terminal states, ``d`` lives on the live states and
  ``H`` is the expected discounted number of live steps, ``sum_s p0^T (I - gamma P_pi)^{-1}``; this is
  ``1/(1-gamma)`` without terminals, and the expected episode length for ``gamma = 1``. Episodes end on
  entering a terminal state, so no transition out of one is ever sampled; ``tabular.evaluate``'s ``d``, which
  also counts the mass absorbed in terminal states, differs from this one there.)
* Lemma 1 (equal rewards, ``V = V^pi_{M_phi}``): ``gamma * exact ma_direct_l1 = |J_M(pi) - J_{M_phi}(pi)|``.

L2 erratum (see :func:`l2_relation`). Sec. 3.2 says "L2 VAML does *not* upper bound its L2 model-advantage
objective". With the normalized distribution ``d`` this is false: Jensen gives ``E_d[delta^2] >= (E_d[delta])^2``
for every model. It is true only with the *unnormalized* time weighting ``sum_t gamma^t`` (mass ``H``):
there ``L2 = (H E_d[delta])^2`` and ``L2^VAML = H E_d[delta^2]``, and ``L2^VAML >= L2`` iff
``Var_d(delta) >= (H - 1) (E_d[delta])^2``, which fails e.g. for a constant residual (``gamma = 0.9``,
``delta = 1``: ``L2^VAML = 10 < L2 = 100``). What always holds there is ``L2 <= H * L2^VAML`` (Cauchy-Schwarz).
Writing both with ``A = gamma delta`` instead of ``delta`` multiplies both sides by ``gamma^2`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from .mdp import TabularMDP, transition_matrix, validate_policy
from .solve import evaluate

__all__ = [
    "TransitionBatch",
    "model_probs",
    "mle_loss",
    "ma_upper_l1_loss",
    "ma_vaml_l2_loss",
    "ma_direct_loss",
    "SAMPLED_OBJECTIVES",
    "exact_objective",
    "EXACT_OBJECTIVES",
    "sample_transitions",
    "sample_trajectories",
    "L2Relation",
    "l2_relation",
]

Objective = Tuple[float, np.ndarray]

#: Batches with at least this many transitions use the numba kernels of :mod:`tabular._kernels`; smaller
#: ones use the numpy references, so small uses never import numba or compile. Once compiled the kernels
#: are 2-5x faster at every size, but below ~4k transitions both take < 0.05 ms, less than the softmax over
#: the (S, A, S) logits; at N = 1e6 the whole objective is 3.5-5.6x faster (``benchmarks/tabular_bench.py``).
KERNEL_MIN_BATCH = 4096


# ---- data ---------------------------------------------------------------------------------------------
def _int_array(name: str, x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integers; got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.int64)  # a private copy: the batch is immutable
    out.setflags(write=False)
    return out


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
        arrays = {k: _int_array(k, getattr(self, k)) for k in names}
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


# ---- model --------------------------------------------------------------------------------------------
def _check_logits(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[0] != logits.shape[2] or 0 in logits.shape:
        raise ValueError(f"logits must have shape (S, A, S) with S, A >= 1; got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(logits))[0])
        raise ValueError(f"logits must be finite; found {logits[idx]} at index {idx}")
    return logits


def _check_V(V, S: int) -> np.ndarray:
    V = np.asarray(V, dtype=np.float64)
    if V.shape != (S,):
        raise ValueError(f"V must have shape (S,)=({S},); got {V.shape}")
    if not np.all(np.isfinite(V)):
        i = int(np.flatnonzero(~np.isfinite(V))[0])
        raise ValueError(f"V must be finite; found {V[i]} at s={i}")
    return V


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def model_probs(logits) -> np.ndarray:
    """``P_phi(s' | s, a) = softmax(logits[s, a, :])``, shape ``(S, A, S)`` (numerically stable).

    Raises:
        ValueError: if ``logits`` is not ``(S, A, S)`` or not finite.
    """
    return np.exp(_log_softmax(_check_logits(logits)))


def _value_jacobian(p: np.ndarray, V: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``pV = P_phi V`` ``(S, A)`` and ``J = d pV[s, a] / d logits[s, a, :] = p * (V - pV)`` ``(S, A, S)``."""
    pV = p @ V
    return pV, p * (V - pV[..., None])


def _prepare(logits, V, batch) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    logits = _check_logits(logits)
    S, A = logits.shape[:2]
    if not isinstance(batch, TransitionBatch):
        raise ValueError(f"batch must be a TransitionBatch; got {type(batch).__name__}")
    batch.check(S, A)
    return logits, (None if V is None else _check_V(V, S)), batch.sa(A)


def _delta_accumulate(pV, V, sa, s2, t, gamma, kind, SA):
    from . import _kernels  # lazy: imports numba only when an objective is first evaluated

    fn = _kernels.delta_accumulate_numba if len(sa) >= KERNEL_MIN_BATCH else _kernels.delta_accumulate_numpy
    return fn(pV, V, sa, s2, t if t is not None else sa, float(gamma), kind, SA)


def _value_aware(logits, V, batch, kind, gamma=0.0) -> Tuple[float, np.ndarray, np.ndarray]:
    """``(total, W (S, A), J (S, A, S))`` of :func:`tabular._kernels.delta_accumulate_numpy`."""
    logits, V, sa = _prepare(logits, V, batch)
    S, A = logits.shape[:2]
    pV, J = _value_jacobian(np.exp(_log_softmax(logits)), V)
    total, W = _delta_accumulate(pV.ravel(), V, sa, batch.s2, batch.t, gamma, kind, S * A)
    return total, W.reshape(S, A), J


# ---- sampled objectives -------------------------------------------------------------------------------
def mle_loss(logits, batch: TransitionBatch) -> Objective:
    """Maximum likelihood: ``L = (1/N) sum_i -log P_phi(s2_i | s_i, a_i)``.

    Args:
        logits: ``(S, A, S)``. batch: ``N`` transitions.

    Returns:
        ``(L, grad)`` with ``grad[s, a, :] = (n(s, a) P_phi(s, a) - n(s, a, .)) / N`` (counts ``n``).
    """
    logits, _, sa = _prepare(logits, None, batch)
    S, A = logits.shape[:2]
    logp = _log_softmax(logits)
    from . import _kernels

    fn = _kernels.nll_accumulate_numba if len(sa) >= KERNEL_MIN_BATCH else _kernels.nll_accumulate_numpy
    total, n_sa, n_sas = fn(logp.ravel(), sa, batch.s2, S)
    N = len(batch)
    grad = (n_sa.reshape(S, A, 1) * np.exp(logp) - n_sas.reshape(S, A, S)) / N
    return total / N, grad


def ma_upper_l1_loss(logits, V, batch: TransitionBatch) -> Objective:
    """Model-advantage upper bound, Eq. 10: ``L1^U = (1/N) sum_i |V[s2_i] - P_phi(s_i, a_i) . V|``.

    Args:
        logits: ``(S, A, S)``. V: ``(S,)`` fixed value estimate. batch: ``N`` transitions ``s ~ d``.

    Returns:
        ``(L1^U, grad)``; ``grad[s, a] = -(1/N) sum_{i at (s,a)} sign(delta_i) P_phi(s,a) (V - P_phi(s,a).V)``
        (``sign(0) = 0``). The exact form is ``E_d E_pi E_{P_M} |delta|``, the normalized Eq. 9.
    """
    total, W, J = _value_aware(logits, V, batch, 0)
    N = len(batch)
    return total / N, -(W / N)[..., None] * J


def ma_vaml_l2_loss(logits, V, batch: TransitionBatch) -> Objective:
    """L2 VAML (IterVAML, Farahmand 2017; Eq. 9 with the squared norm): ``(1/N) sum_i delta_i^2``.

    Args/returns as :func:`ma_upper_l1_loss`; ``grad[s, a] = -(1/N) sum_{i at (s,a)} 2 delta_i J[s, a]``
    with ``J[s, a] = P_phi(s,a) (V - P_phi(s,a).V)``.
    """
    total, W, J = _value_aware(logits, V, batch, 1)
    N = len(batch)
    return total / N, -(W / N)[..., None] * J


def _check_gamma(gamma) -> float:
    g = float(gamma)
    if not (0.0 <= g <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma}")
    return g


def ma_direct_loss(logits, V, batch: TransitionBatch, gamma: float, norm: int = 1) -> Objective:
    """Direct model-advantage objective, Eq. 8 (norm=1) or its square (norm=2, "MA Direct L2").

    ``X = (1/m) sum_{episodes} sum_t gamma^t (V[s_{t+1}] - P_phi(s_t, a_t) . V)`` and ``L = |X|`` or ``X^2``,
    with ``m`` the number of distinct episode ids in the batch (``batch.t`` gives each transition's ``t``).

    Args:
        logits: ``(S, A, S)``. V: ``(S,)``. batch: transitions with ``t`` and ``episode``.
        gamma: discount in ``[0, 1]``. norm: 1 or 2.

    Returns:
        ``(L, grad)``, ``grad[s, a] = -c (1/m) sum_{i at (s,a)} gamma^t_i J[s, a]``, ``c = sign(X)`` (0 at
        ``X = 0``) or ``2X``. The exact form is ``|H E_d[delta]|`` (``H = 1/(1-gamma)``); multiplied by ``gamma``
        it is ``|J_M - J_{M_phi}|`` when ``V = V^pi_{M_phi}`` and the rewards agree (Lemma 1).
    """
    if norm not in (1, 2):
        raise ValueError(f"norm must be 1 or 2; got {norm!r}")
    g = _check_gamma(gamma)
    if not isinstance(batch, TransitionBatch) or batch.t is None:
        raise ValueError("the direct objective needs a TransitionBatch with t and episode (Eq. 8 sums over "
                         "episodes); use sample_trajectories")
    total, W, J = _value_aware(logits, V, batch, 2, g)
    m = batch.n_episodes
    X = total / m
    c = np.sign(X) if norm == 1 else 2.0 * X
    value = abs(X) if norm == 1 else X * X
    return float(value), -(c / m) * W[..., None] * J


def _sampled_direct(norm: int):
    def f(logits, V, batch, gamma):
        return ma_direct_loss(logits, V, batch, gamma, norm)

    f.__name__ = f"ma_direct_l{norm}"
    f.__doc__ = f"``ma_direct_loss(logits, V, batch, gamma, norm={norm})`` (registry form)."
    return f


#: name -> ``f(logits, V, batch, gamma) -> (value, grad)``; ``mle`` ignores ``V`` and ``gamma``, the
#: upper-bound/VAML forms ignore ``gamma``.
SAMPLED_OBJECTIVES: Dict[str, Callable[..., Objective]] = {
    "mle": lambda logits, V, batch, gamma: mle_loss(logits, batch),
    "ma_direct_l1": _sampled_direct(1),
    "ma_direct_l2": _sampled_direct(2),
    "ma_upper_l1": lambda logits, V, batch, gamma: ma_upper_l1_loss(logits, V, batch),
    "ma_vaml_l2": lambda logits, V, batch, gamma: ma_vaml_l2_loss(logits, V, batch),
}


# ---- exact objectives ---------------------------------------------------------------------------------
class _Exact(NamedTuple):
    q: np.ndarray        # (S, A) d(s) pi(a|s), sums to 1 (normalized)
    H: float             # expected discounted number of live steps (1/(1-gamma) without terminals)
    p: np.ndarray        # (S, A, S) model probabilities
    logp: np.ndarray     # (S, A, S)
    pV: np.ndarray       # (S, A) P_phi V
    J: np.ndarray        # (S, A, S) d pV / d logits
    P_M: object          # (S*A, S) true dynamics, dense view or CSR
    V: np.ndarray


def _visits(M: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Discounted visit counts over live states ``w = p0^T (I - gamma P_pi)^{-1}`` (zero on terminals).

    For ``gamma < 1`` this is ``d / (1 - gamma)`` on live states with ``d`` from :func:`tabular.evaluate`, which
    is memoized per ``(M, pi)``: repeated exact objectives under a fixed policy factorize once.
    """
    if M.gamma < 1:
        w = evaluate(M, pi).d / (1.0 - M.gamma)
        w[M.terminal] = 0.0
        return w
    from .solve import _Factor

    return _Factor(M, transition_matrix(M, pi)).solve_T(M.p0)


def _exact_terms(M: TabularMDP, pi, logits, V) -> _Exact:
    if not isinstance(M, TabularMDP):
        raise ValueError(f"expected a TabularMDP; got {type(M).__name__}")
    pi = validate_policy(M, pi)
    logits = _check_logits(logits)
    if logits.shape != (M.S, M.A, M.S):
        raise ValueError(f"logits must have shape (S, A, S)=({M.S}, {M.A}, {M.S}); got {logits.shape}")
    V = _check_V(V, M.S)
    w = _visits(M, pi)
    H = float(w.sum())
    if H <= 0:
        raise ValueError("p0 is supported on terminal states only: the policy makes no transitions")
    if not M.terminal.any() and M.gamma < 1:
        H = 1.0 / (1.0 - M.gamma)  # Eq. 1 exactly (w.sum() equals it up to round-off)
    q = (w / w.sum())[:, None] * pi
    logp = _log_softmax(logits)
    p = np.exp(logp)
    pV, J = _value_jacobian(p, V)
    return _Exact(q, H, p, logp, pV, J, M.P_flat, V)


def _next_expect(P_M, pV_flat: np.ndarray, V: np.ndarray, *fs: Callable[[np.ndarray], np.ndarray]) -> list:
    """``[E_{s2 ~ P_M(s, a)} f(V[s2] - pV[s, a]) for f in fs]``, each ``(S*A,)``; O(nnz) when sparse."""
    if sp.issparse(P_M):
        rows = np.repeat(np.arange(P_M.shape[0]), np.diff(P_M.indptr))
        delta = V[P_M.indices] - pV_flat[rows]
        return [np.bincount(rows, weights=P_M.data * f(delta), minlength=P_M.shape[0]) for f in fs]
    delta = V[None, :] - pV_flat[:, None]
    return [np.einsum("ij,ij->i", P_M, f(delta)) for f in fs]


def _exact_mle(e: _Exact) -> Objective:
    S, A = e.q.shape
    P = e.P_M.toarray() if sp.issparse(e.P_M) else e.P_M
    P = P.reshape(S, A, S)
    ce = -np.einsum("sat,sat->sa", P, e.logp)  # cross-entropy per row; finite since softmax > 0
    return float((e.q * ce).sum()), e.q[..., None] * (e.p - P)


def _exact_upper_l1(e: _Exact) -> Objective:
    S, A = e.q.shape
    val, sgn = (x.reshape(S, A) for x in _next_expect(e.P_M, e.pV.ravel(), e.V, np.abs, np.sign))
    return float((e.q * val).sum()), -(e.q * sgn)[..., None] * e.J


def _exact_vaml_l2(e: _Exact) -> Objective:
    S, A = e.q.shape
    val = _next_expect(e.P_M, e.pV.ravel(), e.V, np.square)[0].reshape(S, A)
    mean = (np.asarray(e.P_M @ e.V).reshape(S, A) - e.pV)
    return float((e.q * val).sum()), -(2.0 * e.q * mean)[..., None] * e.J


def _exact_direct(e: _Exact, norm: int) -> Objective:
    S, A = e.q.shape
    mean = np.asarray(e.P_M @ e.V).reshape(S, A) - e.pV  # E_{s2 ~ P_M} delta per (s, a)
    X = e.H * float((e.q * mean).sum())
    c = np.sign(X) if norm == 1 else 2.0 * X
    value = abs(X) if norm == 1 else X * X
    return float(value), -(c * e.H) * e.q[..., None] * e.J


#: name -> ``f(M, pi, logits, V) -> (value, grad)``: the exact (population) forms of SAMPLED_OBJECTIVES.
EXACT_OBJECTIVES: Dict[str, Callable[..., Objective]] = {
    "mle": lambda M, pi, logits, V: _exact_mle(_exact_terms(M, pi, logits, V)),
    "ma_direct_l1": lambda M, pi, logits, V: _exact_direct(_exact_terms(M, pi, logits, V), 1),
    "ma_direct_l2": lambda M, pi, logits, V: _exact_direct(_exact_terms(M, pi, logits, V), 2),
    "ma_upper_l1": lambda M, pi, logits, V: _exact_upper_l1(_exact_terms(M, pi, logits, V)),
    "ma_vaml_l2": lambda M, pi, logits, V: _exact_vaml_l2(_exact_terms(M, pi, logits, V)),
}


def exact_objective(name: str, M: TabularMDP, pi, logits, V) -> Objective:
    """The expectation of the sampled objective ``name`` under the true MDP ``M`` and policy ``pi``.

    Transitions are ``s ~ d_{M,pi}`` (normalized, Eq. 1), ``a ~ pi(s)``, ``s2 ~ P_M(s, a)``, so e.g.
    ``ma_upper_l1 = E_d E_pi E_{P_M} |delta|`` and ``mle = E[-log P_phi(s2|s,a)]``; the direct forms use infinite
    trajectories from ``p0``: ``ma_direct_l1 = |H E_d[delta]|``, ``ma_direct_l2 = (H E_d[delta])^2`` with
    ``H = 1/(1-gamma)`` (see the module docstring for terminal states). ``gamma * ma_direct_l1`` equals
    ``|J_M(pi) - J_{M_phi}(pi)|`` when ``V = V^pi_{M_phi}`` and the rewards agree (Lemma 1, Eq. 3).

    Args:
        name: one of ``EXACT_OBJECTIVES``. M: the true MDP. pi: ``(S, A)``. logits: ``(S, A, S)``. V: ``(S,)``.

    Returns:
        ``(value, grad)`` with ``grad`` ``(S, A, S)`` w.r.t. ``logits`` (``V``, ``d``, ``pi`` held fixed).

    Raises:
        ValueError: unknown name (the message lists the valid ones), bad shapes, NaN logits or V, bad policy.
    """
    if name not in EXACT_OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {sorted(EXACT_OBJECTIVES)}")
    return EXACT_OBJECTIVES[name](M, pi, logits, V)


# ---- the L2 erratum -----------------------------------------------------------------------------------
class L2Relation(NamedTuple):
    """Moments of the residual under ``s ~ d`` (normalized), ``a ~ pi``, ``s2 ~ P_M``, and the horizon ``H``.

    Normalized forms: ``direct = (E[delta])^2 <= vaml = E[delta^2]`` always (Jensen).
    Unnormalized (``sum_t gamma^t``, mass ``H``): ``direct_unnormalized = H^2 (E delta)^2`` and
    ``vaml_unnormalized = H E[delta^2]``; ``vaml_unnormalized >= direct_unnormalized`` iff
    ``Var(delta) >= (H - 1) (E delta)^2`` (not always: Sec. 3.2's remark), while
    ``direct_unnormalized <= H * vaml_unnormalized`` always.
    """

    mean: float          # E[delta]
    mean_square: float   # E[delta^2]
    H: float             # 1/(1-gamma) (expected discounted live steps)

    @property
    def direct(self) -> float:
        return self.mean ** 2

    @property
    def vaml(self) -> float:
        return self.mean_square

    @property
    def direct_unnormalized(self) -> float:
        return (self.H * self.mean) ** 2

    @property
    def vaml_unnormalized(self) -> float:
        return self.H * self.mean_square

    @property
    def unnormalized_vaml_bounds_direct(self) -> bool:
        """Whether Sec. 3.2's (unnormalized) VAML happens to upper-bound the squared direct objective here."""
        return self.vaml_unnormalized >= self.direct_unnormalized


def l2_relation(M: TabularMDP, pi, logits, V) -> L2Relation:
    """Compare L2 VAML with the squared direct objective in both conventions (the Sec. 3.2 erratum).

    Consistent with :func:`exact_objective`: ``vaml = exact ma_vaml_l2`` and
    ``direct_unnormalized = exact ma_direct_l2``.
    """
    e = _exact_terms(M, pi, logits, V)
    S, A = e.q.shape
    mean = float((e.q * (np.asarray(e.P_M @ e.V).reshape(S, A) - e.pV)).sum())
    msq = float((e.q * _next_expect(e.P_M, e.pV.ravel(), e.V, np.square)[0].reshape(S, A)).sum())
    return L2Relation(mean, msq, e.H)


# ---- sampling -----------------------------------------------------------------------------------------
class _RowSampler:
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
            local = (c / c[:, -1:]).ravel()
            rows = np.repeat(np.arange(n), k)
            self._cols = np.tile(np.arange(k), n)
        # clamp the last entry of each row to exactly 1 so every draw lands inside its row
        self._G = rows + np.minimum(local, 1.0)

    def sample(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(rows))
        pos = np.searchsorted(self._G, rows + u, side="right")
        return self._cols[pos]


def _check_sampling(M, pi, rng) -> np.ndarray:
    if not isinstance(M, TabularMDP):
        raise ValueError(f"expected a TabularMDP; got {type(M).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    return validate_policy(M, pi)


def _positive_int(name: str, n) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer; got {n}")
    return int(n)


def sample_transitions(M: TabularMDP, pi, n: int, rng: np.random.Generator) -> TransitionBatch:
    """``n`` i.i.d. transitions ``s ~ d_{M,pi}`` (normalized, Eq. 1), ``a ~ pi(s)``, ``s2 ~ P_M(s, a)``.

    Their empirical objectives are unbiased for :func:`exact_objective` (the non-direct forms). With
    terminal states, ``d`` lives on the live states.
    """
    pi = _check_sampling(M, pi, rng)
    n = _positive_int("n", n)
    w = _visits(M, pi)
    if w.sum() <= 0:
        raise ValueError("p0 is supported on terminal states only: the policy makes no transitions")
    w = np.maximum(w, 0.0)  # visit counts are >= 0; drop round-off below 0
    s = rng.choice(M.S, size=n, p=w / w.sum())
    a = _RowSampler(pi).sample(s, rng)
    s2 = _RowSampler(M.P_flat).sample(s * M.A + a, rng)
    return TransitionBatch(s, a, s2)


def sample_trajectories(M: TabularMDP, pi, n_traj: int, horizon: int, rng: np.random.Generator) -> TransitionBatch:
    """``n_traj`` episodes from ``s_0 ~ p0`` following ``pi`` in ``M`` for ``horizon`` steps (or until a
    terminal state is entered), as one batch with ``t`` and ``episode`` set (sorted by episode, then ``t``).

    The direct objective of such a batch estimates the exact one up to the truncation ``gamma^horizon``.
    """
    pi = _check_sampling(M, pi, rng)
    n_traj = _positive_int("n_traj", n_traj)
    horizon = _positive_int("horizon", horizon)
    act, nxt = _RowSampler(pi), _RowSampler(M.P_flat)
    s = _RowSampler(M.p0[None, :]).sample(np.zeros(n_traj, dtype=np.int64), rng)
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
