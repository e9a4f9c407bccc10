"""Exact policy evaluation, discounted state distribution and control for :class:`TabularMDP`.

One LU factorization of ``(I - gamma P_pi)`` serves both the value (a solve) and the discounted state
distribution (a transposed solve): LAPACK for dense ``P``, SuperLU for sparse ``P``.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from .mdp import TabularMDP, policy_reward, transition_matrix, validate_policy

__all__ = [
    "Evaluation",
    "SolveResult",
    "evaluate",
    "visit_counts",
    "policy_evaluation",
    "q_values",
    "occupancy",
    "state_distribution",
    "performance",
    "greedy_policy",
    "value_iteration",
    "policy_iteration",
]


class _Factor:
    """LU factorization of ``I - gamma P_pi`` restricted to the live (non-terminal) states."""

    def __init__(self, M: TabularMDP, P_pi):
        self.S = M.S
        live = ~M.terminal
        self.live = live
        self.all_live = bool(live.all())
        gamma = M.gamma
        if M.is_sparse:
            Pl = P_pi if self.all_live else P_pi[live][:, live]
            Pl = sp.csc_matrix(Pl)
            if gamma == 1:
                _check_terminates(M, P_pi)
            Amat = (sp.identity(Pl.shape[0], format="csc") - gamma * Pl).tocsc()
            try:
                # I - gamma P_pi is a nonsingular M-matrix (diagonally dominant for gamma < 1): Gaussian
                # elimination without pivoting is stable for it, so keep the diagonal pivots and order for
                # A + A^T (nearly symmetric patterns such as grids): ~25% faster and ~half the fill of the
                # default COLAMD + partial pivoting (benchmarks/tabular_bench.py).
                lu = spla.splu(Amat, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                               options=dict(SymmetricMode=True))
            except RuntimeError as e:  # exactly singular: only possible when gamma = 1
                raise ValueError("the policy does not reach a terminal state with probability 1 (gamma = 1)") from e
            self._solve = lambda b: lu.solve(b)
            self._solve_T = lambda b: lu.solve(b, trans="T")
        else:
            Pl = P_pi if self.all_live else P_pi[np.ix_(live, live)]
            if gamma == 1:
                _check_terminates(M, P_pi)
            Amat = np.eye(Pl.shape[0]) - gamma * Pl
            lu = la.lu_factor(Amat, check_finite=False)
            self._solve = lambda b: la.lu_solve(lu, b, check_finite=False)
            self._solve_T = lambda b: la.lu_solve(lu, b, trans=1, check_finite=False)

    def _embed(self, x: np.ndarray) -> np.ndarray:
        if self.all_live:
            return x
        out = np.zeros(self.S)
        out[self.live] = x
        return out

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``x = (I - gamma P_pi)^{-1} b`` with ``x = 0`` on terminal states."""
        return self._embed(self._solve(b if self.all_live else b[self.live]))

    def solve_T(self, b: np.ndarray) -> np.ndarray:
        """``x = (I - gamma P_pi)^{-T} b`` (discounted visitation counts from ``b``), 0 on terminals."""
        return self._embed(self._solve_T(b if self.all_live else b[self.live]))


def _check_terminates(M: TabularMDP, P_pi) -> None:
    """With gamma = 1 the value is finite iff every live state reaches a terminal state (finite chain)."""
    GT = sp.csr_matrix(P_pi).T.tocsr()
    reach = np.zeros(M.S, dtype=bool)
    for t in np.flatnonzero(M.terminal):  # reverse BFS: the states from which t is reachable
        reach[csgraph.breadth_first_order(GT, int(t), return_predecessors=False)] = True
    if not reach.all():
        s = int(np.flatnonzero(~reach)[0])
        raise ValueError(
            f"the policy does not terminate: from state {s} no terminal state is reachable, so with gamma = 1 "
            "its value is undefined"
        )


@dataclass(frozen=True)
class Evaluation:
    """Exact evaluation of a policy in a model.

    Attributes:
        V: state values ``(S,)`` (unnormalized).
        d: normalized discounted state distribution ``d_{M,pi}`` of Eq. 1, ``(S,)``, sums to 1.
        J: ``p0 . V``, the policy's return.
        visits: discounted visit counts of the live states, ``w = p0^T (I - gamma P_pi)^{-1}`` restricted to
            non-terminal states (0 on terminals), ``(S,)``. ``sum_s w(s) f(s) = 1/(1-gamma) E_d[f]`` for any
            ``f`` that vanishes on terminals; with ``gamma = 1`` it is the expected sum over the episode.
    """

    V: np.ndarray
    d: np.ndarray
    J: float
    visits: np.ndarray

    def _copy(self) -> "Evaluation":
        return Evaluation(V=self.V.copy(), d=self.d.copy(), J=self.J, visits=self.visits.copy())


def _validated(M: TabularMDP, pi) -> np.ndarray:
    if not isinstance(M, TabularMDP):
        raise ValueError(f"expected a TabularMDP; got {type(M).__name__}")
    return validate_policy(M, pi)


def _prepare(M: TabularMDP, pi) -> tuple[np.ndarray, object]:
    pi = _validated(M, pi)
    return pi, transition_matrix(M, pi)


# Memo of recent evaluations: MDP (weakly, by identity; TabularMDP is immutable) -> [(pi copy, Evaluation)].
# A factorization of I - gamma P_pi is the dominant cost of everything here; callers that evaluate the same
# (M, pi) several times (evaluate, then policy_evaluation / occupancy / expected_model_advantage) pay it once.
# Hits compare pi exactly (np.array_equal) and return fresh copies, so callers may mutate what they get.
_EVAL_CACHE: "weakref.WeakKeyDictionary[TabularMDP, list]" = weakref.WeakKeyDictionary()
_EVAL_CACHE_PER_MDP = 4


def _cache_get(M: TabularMDP, pi: np.ndarray) -> "Evaluation | None":
    for key, ev in _EVAL_CACHE.get(M, ()):
        if np.array_equal(key, pi):
            return ev._copy()
    return None


def _cache_put(M: TabularMDP, pi: np.ndarray, ev: "Evaluation") -> None:
    entries = _EVAL_CACHE.setdefault(M, [])
    entries.insert(0, (np.array(pi), ev._copy()))
    del entries[_EVAL_CACHE_PER_MDP:]


def _normalize_visits(M: TabularMDP, visits: np.ndarray, P_pi) -> np.ndarray:
    if M.gamma < 1 and M.terminal.any():
        # the solve leaves terminals at 0; an absorbing terminal t keeps all mass entering it (Eq. 1):
        # visits(t) = (p0(t) + gamma sum_{live s} visits(s) P_pi(s, t)) / (1 - gamma)
        t = M.terminal
        visits = visits.copy()
        visits[t] = (M.p0[t] + M.gamma * np.asarray(P_pi.T @ visits).ravel()[t]) / (1 - M.gamma)
    total = visits.sum()
    if M.gamma < 1:
        # sum of p0 (I - gamma P)^{-1} is exactly 1/(1-gamma); dividing by the computed sum keeps d on the simplex
        return visits / total
    if total <= 0:  # gamma = 1 and the episode ends immediately (p0 on terminals only)
        return M.p0.copy()
    return visits / total


def evaluate(M: TabularMDP, pi) -> Evaluation:
    """Value ``V``, discounted distribution ``d`` and return ``J`` of ``pi`` in ``M`` from one factorization.

    ``V = (I - gamma P_pi)^{-1} r_pi`` and ``d = (1 - gamma) p0^T (I - gamma P_pi)^{-1}`` (Eq. 1).
    With ``gamma = 1`` (episodic), ``d`` is the expected visit count over live states, normalized.

    Raises:
        ValueError: bad policy, or (gamma = 1) a policy that does not terminate.

    Examples:
        Sutton & Barto's Example 3.5 (Figure 3.2): the equiprobable random policy on the 5x5 grid, gamma 0.9.

        >>> import numpy as np
        >>> from tabular import evaluate, gridworld_example_3_5, uniform_policy
        >>> M = gridworld_example_3_5()
        >>> np.round(evaluate(M, uniform_policy(M)).V.reshape(5, 5), 1)
        array([[ 3.3,  8.8,  4.4,  5.3,  1.5],
               [ 1.5,  3. ,  2.3,  1.9,  0.5],
               [ 0.1,  0.7,  0.7,  0.4, -0.4],
               [-1. , -0.4, -0.4, -0.6, -1.2],
               [-1.9, -1.3, -1.2, -1.4, -2. ]])
    """
    return _evaluate(M, _validated(M, pi))


def _evaluate(M: TabularMDP, pi: np.ndarray) -> Evaluation:
    hit = _cache_get(M, pi)
    if hit is not None:
        return hit
    P_pi = transition_matrix(M, pi)
    f = _Factor(M, P_pi)
    V = f.solve(policy_reward(M, pi))
    raw = f.solve_T(M.p0)
    d = _normalize_visits(M, raw, P_pi)
    if M.gamma < 1:
        # d / (1 - gamma) is the same count, with the normalization of d (sum exactly 1/(1-gamma) without terminals)
        visits = d / (1.0 - M.gamma)
        visits[M.terminal] = 0.0
    else:
        visits = raw
    ev = Evaluation(V=V, d=d, J=float(M.p0 @ V), visits=visits)
    _cache_put(M, pi, ev)
    return ev


def visit_counts(M: TabularMDP, pi) -> np.ndarray:
    """Discounted visit counts of the live states ``w = p0^T (I - gamma P_pi)^{-1}`` (0 on terminals), ``(S,)``.

    The weighting behind every ``1/(1-gamma) E_{s~d}[f(s)]`` of the paper (Eq. 1 unnormalized); the same
    factorization as :func:`evaluate` (memoized per ``(M, pi)``).
    """
    return evaluate(M, pi).visits


def policy_evaluation(M: TabularMDP, pi) -> np.ndarray:
    """``V^pi_M = (I - gamma P_pi)^{-1} r_pi``, shape ``(S,)``; zero on terminal states.

    Computed by :func:`evaluate` (one factorization; ``d`` costs one more triangular solve pair), so a later
    ``evaluate``/``occupancy`` of the same ``(M, pi)`` is free.
    """
    return evaluate(M, pi).V


def _q_from_v(M: TabularMDP, V: np.ndarray) -> np.ndarray:
    PV = M.P_flat @ V
    Q = M.R + M.gamma * np.asarray(PV).reshape(M.S, M.A)
    if M.terminal.any():
        Q[M.terminal] = 0.0
    return Q


def q_values(M: TabularMDP, pi) -> np.ndarray:
    """``Q^pi(s, a) = R(s, a) + gamma sum_s' P(s'|s,a) V^pi(s')``, shape ``(S, A)``; zero on terminals."""
    return _q_from_v(M, policy_evaluation(M, pi))


def occupancy(M: TabularMDP, pi) -> np.ndarray:
    """Normalized discounted state distribution ``d_{M,pi}(s) = (1-gamma) sum_t gamma^t P_t(s)`` (Eq. 1).

    Shape ``(S,)``, sums to 1. Satisfies the flow equation ``d = (1-gamma) p0 + gamma P_pi^T d``.
    """
    return evaluate(M, pi).d


def state_distribution(M: TabularMDP, pi, t: int) -> np.ndarray:
    """``P^pi_t``: the distribution of ``s_t`` when ``s_0 ~ p0`` and actions follow ``pi``, shape ``(S,)``."""
    if int(t) != t or t < 0:
        raise ValueError(f"t must be a non-negative integer; got {t}")
    pi, P_pi = _prepare(M, pi)
    x = M.p0.copy()
    PT = P_pi.T
    for _ in range(int(t)):
        x = np.asarray(PT @ x).ravel()
    return x


def performance(M: TabularMDP, pi) -> float:
    """``J_M(pi) = p0 . V^pi_M``."""
    return float(M.p0 @ policy_evaluation(M, pi))


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """Deterministic greedy policy (one-hot ``(S, A)``); ties go to the lowest action index."""
    Q = np.asarray(Q)
    pi = np.zeros_like(Q, dtype=np.float64)
    pi[np.arange(Q.shape[0]), np.argmax(Q, axis=1)] = 1.0
    return pi


@dataclass(frozen=True)
class SolveResult:
    """Result of a control solver. Unpacks as ``V, pi = result``.

    Attributes:
        V: optimal values ``(S,)``. pi: a greedy optimal policy, one-hot ``(S, A)``.
        n_iter: iterations used. converged: whether the stopping rule was met.
    """

    V: np.ndarray
    pi: np.ndarray
    n_iter: int
    converged: bool

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.V, self.pi))


def value_iteration(M: TabularMDP, tol: float = 1e-10, max_iter: int = 100_000, V0=None) -> SolveResult:
    """Value iteration ``V <- max_a [R + gamma P V]`` until the greedy policy is ``tol``-optimal.

    Stops when ``||V_{k+1} - V_k||_inf < tol (1 - gamma) / (2 gamma)`` (Puterman Thm. 6.3.1), so the
    returned ``V`` is within ``tol/2`` of ``V*``. With ``gamma = 1`` it stops at ``||dV||_inf < tol``.

    Returns:
        :class:`SolveResult`; ``converged`` is False (and a ``RuntimeWarning`` is issued) when ``max_iter``
        iterations end before the stopping rule holds: ``V`` is then the last iterate, not ``tol``-optimal.
    """
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    if not tol > 0:
        raise ValueError(f"tol must be positive; got {tol}")
    V = np.zeros(M.S) if V0 is None else np.array(V0, dtype=np.float64)
    if V.shape != (M.S,):
        raise ValueError(f"V0 must have shape (S,)=({M.S},); got {V.shape}")
    g = M.gamma
    thresh = tol if g in (0.0, 1.0) else tol * (1 - g) / (2 * g)
    converged = False
    n, delta = 0, float("inf")
    for n in range(1, int(max_iter) + 1):
        Q = _q_from_v(M, V)
        V_new = Q.max(axis=1)
        delta = np.max(np.abs(V_new - V)) if M.S else 0.0
        V = V_new
        if delta < thresh:
            converged = True
            break
    if not converged:
        warnings.warn(f"value_iteration did not converge in {max_iter} iterations (last change {delta:.3g}, "
                      f"threshold {thresh:.3g}); the result's converged is False", RuntimeWarning, stacklevel=2)
    pi = greedy_policy(_q_from_v(M, V))
    return SolveResult(V=V, pi=pi, n_iter=n, converged=converged)


def policy_iteration(M: TabularMDP, pi0=None, max_iter: int = 10_000) -> SolveResult:
    """Howard's policy iteration: exact evaluation (one LU solve) then greedy improvement.

    Stops when the greedy policy no longer strictly improves any state's Q (ties keep the current
    action, so it cannot cycle). Finite and exact: the result is an optimal deterministic policy.
    Starts from ``pi0`` (argmax per state) or, by default, from the policy greedy in the immediate reward
    (one Bellman step from ``V = 0``; usually saves an evaluation over an arbitrary start).
    """
    if pi0 is None:
        actions = np.argmax(_q_from_v(M, np.zeros(M.S)), axis=1)
    else:
        actions = np.argmax(validate_policy(M, pi0), axis=1)
    rows = np.arange(M.S)
    converged = False
    n = 0
    for n in range(1, max_iter + 1):
        # deterministic policy: P_pi gathers one row per state instead of contracting over actions
        P_pi = M.P[rows * M.A + actions] if M.is_sparse else M.P[rows, actions]
        V = _Factor(M, P_pi).solve(M.R[rows, actions])
        Q = _q_from_v(M, V)
        best = np.argmax(Q, axis=1)
        current = Q[rows, actions]
        # switch only where strictly better (up to round-off) to avoid cycling between tied actions
        improve = Q[rows, best] > current + 1e-12 * (1 + np.abs(current))
        if not improve.any():
            converged = True
            break
        actions = np.where(improve, best, actions)
    pi = np.zeros((M.S, M.A))
    pi[rows, actions] = 1.0
    return SolveResult(V=V, pi=pi, n_iter=n, converged=converged)
