"""Finite MDPs: a validated, immutable container and the policy-induced quantities.

Conventions (shared by the whole package):

* ``P`` has shape ``(S, A, S)`` (dense ``numpy`` array) or is a ``scipy.sparse`` matrix of shape
  ``(S*A, S)`` whose row ``s*A + a`` is ``P(. | s, a)``.
* ``R`` has shape ``(S, A)`` (expected reward) or ``(S, A, S)`` (reward of the transition); the latter is
  reduced once to the expected reward ``r[s, a] = sum_s' P[s, a, s'] R[s, a, s']``.
* ``pi`` is an ``(S, A)`` row-stochastic matrix.
* Values are *unnormalized*: ``V(s) = E[sum_t gamma^t R(s_t, a_t) | s_0 = s]`` (the paper's main-text
  convention; Appendix A uses ``(1 - gamma) V``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validate import PROB_ATOL, check_finite as _check_finite, check_gamma, check_policy, check_stochastic_rows as _check_stochastic_rows

__all__ = [
    "TabularMDP",
    "from_gymnasium",
    "gymnasium_transition_rewards",
    "validate_policy",
    "softmax_policy",
    "transition_matrix",
    "policy_reward",
    "uniform_policy",
    "PROB_ATOL",
]

class TabularMDP:
    """A finite MDP ``(S, A, P, R, p0, gamma)``, validated once and read-only afterwards.

    Args:
        P: transition probabilities, dense ``(S, A, S)`` or ``scipy.sparse`` ``(S*A, S)``.
        R: rewards, ``(S, A)`` or ``(S, A, S)``.
        p0: start-state distribution, ``(S,)``.
        gamma: discount in ``[0, 1)``; ``gamma = 1`` is allowed only for an episodic MDP that declares
            absorbing ``terminal`` states.
        terminal: optional absorbing states (boolean mask ``(S,)`` or integer indices). Each must loop to
            itself under every action with zero reward.

    Raises:
        ValueError: on any shape mismatch, non-finite entry, probability outside ``[0, 1]``, a row not
            summing to 1, gamma outside its range, or a terminal state that is not absorbing.
    """

    __slots__ = ("_P", "_r", "_p0", "_gamma", "_terminal", "_S", "_A", "__weakref__")  # weakref: solve.py's cache

    def __init__(self, P: Any, R: Any, p0: Any, gamma: float, terminal: Any = None):
        # --- P -----------------------------------------------------------------------------------
        if sp.issparse(P):
            P = sp.csr_matrix(P, dtype=np.float64, copy=True)  # the MDP owns (and freezes) its arrays
            n_rows, S = P.shape
            if n_rows % max(S, 1) or S == 0:
                raise ValueError(f"sparse P must have shape (S*A, S); got {P.shape}")
            A = n_rows // S
            if A == 0:
                raise ValueError(f"sparse P must have shape (S*A, S) with A >= 1; got {P.shape}")
            P.sum_duplicates()
            P.eliminate_zeros()
            _check_finite("P", P.data)
            bad = np.flatnonzero((P.data < -PROB_ATOL) | (P.data > 1 + PROB_ATOL))
            if len(bad):
                row = int(np.searchsorted(P.indptr, bad[0], side="right") - 1)
                raise ValueError(
                    f"P: probabilities must lie in [0, 1]; row (s={row // A}, a={row % A}) has {P.data[bad[0]]}"
                )
            _check_stochastic_rows("P", None, np.asarray(P.sum(axis=1)).ravel(), A)
            P.data.setflags(write=False)
        else:
            P = np.array(P, dtype=np.float64)  # copy: the MDP owns its arrays
            if P.ndim != 3 or P.shape[0] != P.shape[2] or 0 in P.shape:
                raise ValueError(f"dense P must have shape (S, A, S) with S, A >= 1; got {P.shape}")
            S, A = P.shape[0], P.shape[1]
            _check_finite("P", P)
            flat = P.reshape(S * A, S)
            _check_stochastic_rows("P", flat, flat.sum(axis=1), A)
            P.setflags(write=False)

        # --- R -----------------------------------------------------------------------------------
        R = np.asarray(R, dtype=np.float64)
        if R.shape == (S, A):
            r = R.copy()
        elif R.shape == (S, A, S):
            _check_finite("R", R)
            if sp.issparse(P):
                r = np.asarray(P.multiply(R.reshape(S * A, S)).sum(axis=1)).reshape(S, A)
            else:
                r = np.einsum("ijk,ijk->ij", P, R)
        else:
            raise ValueError(f"R must have shape (S, A)=({S}, {A}) or (S, A, S)=({S}, {A}, {S}); got {R.shape}")
        _check_finite("R", r)
        r.setflags(write=False)

        # --- p0 ----------------------------------------------------------------------------------
        p0 = np.array(p0, dtype=np.float64)
        if p0.shape != (S,):
            raise ValueError(f"p0 must have shape (S,)=({S},); got {p0.shape}")
        _check_finite("p0", p0)
        _check_stochastic_rows("p0", p0[None, :], np.array([p0.sum()]), None)
        p0.setflags(write=False)

        # --- terminal ----------------------------------------------------------------------------
        term = np.zeros(S, dtype=bool)
        if terminal is not None:
            t = np.asarray(terminal)
            if t.dtype == bool:
                if t.shape != (S,):
                    raise ValueError(f"terminal mask must have shape (S,)=({S},); got {t.shape}")
                term = t.copy()
            else:
                t = t.ravel()
                if t.size and (not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= S):
                    raise ValueError(f"terminal indices must be integers in [0, {S}); got {t}")
                term[t.astype(int)] = True
        for s in np.flatnonzero(term):
            rows = P[s * A:(s + 1) * A].toarray() if sp.issparse(P) else P[s]
            if not np.allclose(rows[:, s], 1.0, atol=1e-6):
                raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] = 1 for every action a")
            if np.any(r[s] != 0):
                raise ValueError(f"terminal state {s} must have zero reward; got R[{s}] = {r[s]}")
        term.setflags(write=False)

        # --- gamma -------------------------------------------------------------------------------
        try:
            gamma = check_gamma(gamma)
        except ValueError:
            raise ValueError(f"gamma must lie in [0, 1) (1 only for an episodic MDP); got {gamma!r}") from None
        if gamma == 1 and not term.any():
            raise ValueError("gamma = 1 requires an episodic MDP: declare its absorbing `terminal` states")

        self._P, self._r, self._p0, self._gamma, self._terminal, self._S, self._A = P, r, p0, gamma, term, S, A

    # ---- read-only views ------------------------------------------------------------------------
    @property
    def P(self):
        """Transition probabilities: dense ``(S, A, S)`` or sparse CSR ``(S*A, S)``."""
        return self._P

    @property
    def R(self) -> np.ndarray:
        """Expected reward ``r[s, a]``, shape ``(S, A)``."""
        return self._r

    @property
    def p0(self) -> np.ndarray:
        return self._p0

    @property
    def gamma(self) -> float:
        return self._gamma

    @property
    def terminal(self) -> np.ndarray:
        """Boolean mask ``(S,)`` of absorbing terminal states."""
        return self._terminal

    @property
    def S(self) -> int:
        return self._S

    @property
    def A(self) -> int:
        return self._A

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self._P)

    @property
    def P_flat(self):
        """``P`` as ``(S*A, S)``: a dense reshape (view) or the sparse CSR matrix."""
        return self._P if self.is_sparse else self._P.reshape(self._S * self._A, self._S)

    def dense_P(self) -> np.ndarray:
        """``P`` as a dense ``(S, A, S)`` array (a copy when sparse)."""
        if self.is_sparse:
            return self._P.toarray().reshape(self._S, self._A, self._S)
        return self._P

    def replace(self, **changes) -> "TabularMDP":
        """A new validated MDP with some of ``P, R, p0, gamma, terminal`` replaced."""
        kw = dict(P=self._P, R=self._r, p0=self._p0, gamma=self._gamma,
                  terminal=self._terminal if self._terminal.any() else None)
        unknown = set(changes) - set(kw)
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}; choose from {sorted(kw)}")
        kw.update(changes)
        return TabularMDP(**kw)

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        return f"TabularMDP(S={self._S}, A={self._A}, gamma={self._gamma}, {kind}, terminal={int(self._terminal.sum())})"


def validate_policy(M: TabularMDP, pi: Any) -> np.ndarray:
    """Return ``pi`` as a float ``(S, A)`` array, or raise ``ValueError`` naming the first bad row."""
    return check_policy(M, pi)


def uniform_policy(M: TabularMDP) -> np.ndarray:
    """The uniformly random policy, ``(S, A)``."""
    return np.full((M.S, M.A), 1.0 / M.A)


def softmax_policy(theta) -> np.ndarray:
    """The softmax policy ``pi(a|s) = exp(theta[s, a]) / sum_b exp(theta[s, b])``, ``(S, A)`` from logits
    ``theta`` ``(S, A)`` (numerically stable; :func:`tabular.model_probs` is the same map for model logits
    ``(S, A, S)``).

    Examples:
        >>> softmax_policy(np.array([[0.0, 0.0], [np.log(3.0), 0.0]]))
        array([[0.5 , 0.5 ],
               [0.75, 0.25]])
    """
    z = np.asarray(theta, dtype=float)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def transition_matrix(M: TabularMDP, pi: np.ndarray):
    """State-to-state kernel ``P_pi[s, s'] = sum_a pi[s, a] P[s, a, s']``.

    Returns a dense ``(S, S)`` array, or a sparse CSR ``(S, S)`` matrix when ``M`` is sparse.
    ``pi`` is assumed validated (see :func:`validate_policy`).
    """
    S, A = M.S, M.A
    if M.is_sparse:
        # W[s, s*A + a] = pi[s, a]; P_pi = W @ P_flat keeps sparsity.
        W = sp.csr_matrix((pi.ravel(), np.arange(S * A), np.arange(0, S * A + 1, A)), shape=(S, S * A))
        return (W @ M.P).tocsr()
    return np.einsum("sa,sat->st", pi, M.P)


def policy_reward(M: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """``r_pi[s] = sum_a pi[s, a] R[s, a]``, shape ``(S,)`` (the paper's ``R^pi_M``)."""
    return np.einsum("sa,sa->s", pi, M.R)


def _gym_tables(env: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """``(unwrapped, P (S', A, S'), PR (S', A, S'), terminal (S',))`` of a toy-text ``P`` dict (see
    :func:`from_gymnasium`; ``PR[s, a, s2]`` sums ``prob * reward`` over the entries of ``P[s][a]`` reaching
    ``s2``)."""
    u = getattr(env, "unwrapped", env)
    table = getattr(u, "P", None)
    if not isinstance(table, dict):
        raise ValueError(f"{type(u).__name__} has no tabular `P` dict; only toy-text style environments are supported")
    S = int(u.observation_space.n)
    A = int(u.action_space.n)
    entries = [(s, a, float(p), int(s2), float(rew), bool(done))
               for s in range(S) for a in range(A) for (p, s2, rew, done) in table[s][a]]
    done_targets = {s2 for (_, _, _, s2, _, done) in entries if done}
    entered_live = {s2 for (s, _, _, s2, _, done) in entries if not done and s2 != s}
    use_sink = bool(done_targets & entered_live)
    S_total = S + 1 if use_sink else S
    P = np.zeros((S_total, A, S_total))
    PR = np.zeros((S_total, A, S_total))  # sum of p * reward per (s, a, target)
    for (s, a, p, s2, rew, done) in entries:
        if not use_sink and s in done_targets:
            continue  # made absorbing below
        target = S if (done and use_sink) else s2
        P[s, a, target] += p
        PR[s, a, target] += p * rew
    terminal = np.zeros(S_total, dtype=bool)
    absorbing = [S] if use_sink else sorted(done_targets)
    for t in absorbing:
        P[t] = 0.0
        P[t, :, t] = 1.0
        PR[t] = 0.0
        terminal[t] = True
    return u, P, PR, terminal


def gymnasium_transition_rewards(env: Any) -> np.ndarray:
    """The reward of each transition ``r[s, a, s2]`` ``(S, A, S)`` of a toy-text environment, on the states of
    :func:`from_gymnasium` (0 where ``P = 0`` and on absorbing states): to score a second model's dynamics
    with the environment's own reward, ``R2(s, a) = sum_s2 P2(s2|s, a) r[s, a, s2]``."""
    _, P, PR, _ = _gym_tables(env)
    return np.divide(PR, P, out=np.zeros_like(PR), where=P > 0)


def from_gymnasium(env: Any, gamma: float) -> TabularMDP:
    """Build a :class:`TabularMDP` from a Gymnasium toy-text environment's ``P`` dict.

    Works for FrozenLake, Taxi and CliffWalking (any env whose unwrapped object has
    ``P[s][a] = [(prob, s_next, reward, terminated), ...]`` and discrete spaces). A transition flagged
    ``terminated`` ends the episode: its target state is made absorbing with zero reward and declared
    ``terminal`` (exactly the episodic semantics). If such a target is also entered by a non-terminating
    transition, a separate absorbing state ``S`` is appended instead, so no reachable dynamics change.
    The start distribution is the env's ``initial_state_distrib`` when it has one, else uniform over the
    states where ``reset`` can start (FrozenLake/CliffWalking: ``isd``/start cell).

    Raises:
        ValueError: if ``env`` has no tabular ``P`` dict.

    Examples:
        FrozenLake 4x4: 16 cells, 4 actions, the four holes and the goal terminal, the start cell 0.

        >>> import gymnasium as gym
        >>> import numpy as np
        >>> from tabular import from_gymnasium
        >>> M = from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
        >>> M.S, M.A, np.flatnonzero(M.terminal).tolist(), float(M.p0[0])
        (16, 4, [5, 7, 11, 12, 15], 1.0)
    """
    u, P, PR, terminal = _gym_tables(env)
    S, S_total = int(u.observation_space.n), P.shape[0]
    R = PR.sum(axis=2)
    isd = getattr(u, "initial_state_distrib", None)
    if isd is None:
        isd = getattr(u, "isd", None)
    if isd is None:
        start = getattr(u, "start_state_index", None)
        if start is None:
            raise ValueError(f"cannot find the start distribution of {type(u).__name__}")
        isd = np.eye(S)[int(start)]
    p0 = np.zeros(S_total)
    p0[:S] = np.asarray(isd, dtype=np.float64)
    p0 /= p0.sum()
    return TabularMDP(P, R, p0, gamma, terminal=terminal)
