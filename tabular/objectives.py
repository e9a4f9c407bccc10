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
* ``|x|`` has subgradient ``sign(x)`` with ``sign(0) = 0``: at an exact zero residual (or an exact zero direct sum)
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

from typing import Callable, Dict, NamedTuple, Tuple

import numpy as np
import scipy.sparse as sp

from ._validate import check_gamma, check_logits, check_mdp, check_policy, check_values
from .mdp import TabularMDP
from .sampling import TransitionBatch, sample_trajectories, sample_transitions
from .solve import visit_counts

__all__ = [
    "TransitionBatch",
    "model_probs",
    "mle_loss",
    "ma_l1_loss",
    "ma_vaml_loss",
    "ma_upper_l1_loss",
    "ma_vaml_l2_loss",
    "OBJECTIVE_NAMES",
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


# ---- model --------------------------------------------------------------------------------------------
def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def model_probs(logits) -> np.ndarray:
    """``P_phi(s' | s, a) = softmax(logits[s, a, :])``, shape ``(S, A, S)`` (numerically stable).

    Raises:
        ValueError: if ``logits`` is not ``(S, A, S)`` or not finite.
    """
    return np.exp(_log_softmax(check_logits(logits)))


def _value_jacobian(p: np.ndarray, V: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``pV = P_phi V`` ``(S, A)`` and ``J = d pV[s, a] / d logits[s, a, :] = p * (V - pV)`` ``(S, A, S)``."""
    pV = p @ V
    return pV, p * (V - pV[..., None])


def _prepare(logits, V, batch) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    logits = check_logits(logits)
    S, A = logits.shape[:2]
    if not isinstance(batch, TransitionBatch):
        raise ValueError(f"batch must be a TransitionBatch; got {type(batch).__name__}")
    batch.check(S, A)
    return logits, (None if V is None else check_values(V, S)), batch.sa(A)


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


def ma_l1_loss(logits, V, batch: TransitionBatch) -> Objective:
    """Model-advantage upper bound, Eq. 10: ``L1^U = (1/N) sum_i |V[s2_i] - P_phi(s_i, a_i) . V|``.

    Args:
        logits: ``(S, A, S)``. V: ``(S,)`` fixed value estimate. batch: ``N`` transitions ``s ~ d``.

    Returns:
        ``(L1^U, grad)``; ``grad[s, a] = -(1/N) sum_{i at (s,a)} sign(delta_i) P_phi(s,a) (V - P_phi(s,a).V)``
        (``sign(0) = 0``). The exact form is ``E_d E_pi E_{P_M} |delta|``, the normalized Eq. 9.

    Examples:
        The uniform model (zero logits) predicts ``P_phi . V = 1`` for ``V = (0, 2)``; both observed transitions
        land in state 1, so every ``|delta| = |2 - 1| = 1``, and the gradient moves mass towards state 1.

        >>> import numpy as np
        >>> from tabular import TransitionBatch, ma_l1_loss
        >>> batch = TransitionBatch(s=[0, 1], a=[0, 0], s2=[1, 1])
        >>> loss, grad = ma_l1_loss(np.zeros((2, 1, 2)), np.array([0.0, 2.0]), batch)
        >>> loss
        1.0
        >>> grad[:, 0]
        array([[ 0.25, -0.25],
               [ 0.25, -0.25]])
    """
    total, W, J = _value_aware(logits, V, batch, 0)
    N = len(batch)
    return total / N, -(W / N)[..., None] * J


def ma_vaml_loss(logits, V, batch: TransitionBatch) -> Objective:
    """L2 VAML (IterVAML, Farahmand 2017; Eq. 9 with the squared norm): ``(1/N) sum_i delta_i^2``.

    Args/returns as :func:`ma_l1_loss`; ``grad[s, a] = -(1/N) sum_{i at (s,a)} 2 delta_i J[s, a]``
    with ``J[s, a] = P_phi(s,a) (V - P_phi(s,a).V)``.
    """
    total, W, J = _value_aware(logits, V, batch, 1)
    N = len(batch)
    return total / N, -(W / N)[..., None] * J


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
    g = check_gamma(gamma)
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
    "ma_l1": lambda logits, V, batch, gamma: ma_l1_loss(logits, V, batch),
    "ma_vaml": lambda logits, V, batch, gamma: ma_vaml_loss(logits, V, batch),
}


#: The tabular objectives in the paper's Figure-1 order; the same names as in ``deep`` and on the command line.
OBJECTIVE_NAMES = tuple(SAMPLED_OBJECTIVES)

#: Names of the first release, kept for one more: the assignments' templates call them.
ma_upper_l1_loss = ma_l1_loss
ma_vaml_l2_loss = ma_vaml_loss


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


def _exact_terms(M: TabularMDP, pi, logits, V) -> _Exact:
    pi = check_policy(M, pi)
    logits = check_logits(logits)
    if logits.shape != (M.S, M.A, M.S):
        raise ValueError(f"logits must have shape (S, A, S)=({M.S}, {M.A}, {M.S}); got {logits.shape}")
    V = check_values(V, M.S)
    w = visit_counts(M, pi)  # memoized per (M, pi): repeated exact objectives factorize once
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
    "ma_l1": lambda M, pi, logits, V: _exact_upper_l1(_exact_terms(M, pi, logits, V)),
    "ma_vaml": lambda M, pi, logits, V: _exact_vaml_l2(_exact_terms(M, pi, logits, V)),
}


def exact_objective(name: str, M: TabularMDP, pi, logits, V) -> Objective:
    """The expectation of the sampled objective ``name`` under the true MDP ``M`` and policy ``pi``.

    Transitions are ``s ~ d_{M,pi}`` (normalized, Eq. 1), ``a ~ pi(s)``, ``s2 ~ P_M(s, a)``, so e.g.
    ``ma_l1 = E_d E_pi E_{P_M} |delta|`` and ``mle = E[-log P_phi(s2|s,a)]``; the direct forms use infinite
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

    Consistent with :func:`exact_objective`: ``vaml = exact ma_vaml`` and
    ``direct_unnormalized = exact ma_direct_l2``.
    """
    e = _exact_terms(M, pi, logits, V)
    S, A = e.q.shape
    mean = float((e.q * (np.asarray(e.P_M @ e.V).reshape(S, A) - e.pV)).sum())
    msq = float((e.q * _next_expect(e.P_M, e.pV.ravel(), e.V, np.square)[0].reshape(S, A)).sum())
    return L2Relation(mean, msq, e.H)


