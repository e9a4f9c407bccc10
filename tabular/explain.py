"""Inside the simulation lemma: which states and transitions make ``J_M(pi) - J_M2(pi)``.

Lemma 1 (Eq. 3, unnormalized values, with the ``1/(1-gamma)`` on the reward term that makes it exact) splits
the performance gap into per-state and per-transition pieces. With ``w = p0^T (I - gamma P^pi_M)^{-1}`` the
discounted visit counts of ``pi`` in ``M`` (``w(s) = d_M(s) / (1 - gamma)``, Eq. 1) and ``A = A^pi_M2`` the
model advantage of ``M2`` (Eq. 2, ``V = V^pi_M2``)::

    J_M - J_M2 = sum_s [ma(s) + reward(s)]
    ma(s)      = w(s) sum_s' P^pi_M(s, s') A(s, s')        = sum_s' flow(s, s')
    reward(s)  = w(s) (R^pi_M(s) - R^pi_M2(s))

``flow(s, s') = w(s) P^pi_M(s, s') A(s, s')`` is the share of one transition the true dynamics ``M`` take;
only transitions that carry probability (``P^pi_M(s, s') > 0``) contribute.

:func:`explain` returns all of these; :func:`perturb` makes the "second model" of a stated noise level.
``modeladv explain`` draws them (``modeladv.explain``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_pair, check_rng
from .advantage import SimulationLemma, mean_model_advantage, model_advantage, simulation_lemma
from .mdp import TabularMDP, policy_reward, transition_matrix, validate_policy
from .solve import evaluate

__all__ = ["Transition", "Explanation", "explain", "perturb", "MAX_STATES"]

#: the dense ``(S, S)`` tables of :func:`explain` are refused above this many states (memory)
MAX_STATES = 5000


@dataclass(frozen=True)
class Transition:
    """One transition ``s -> s2`` and its share of the gap: ``flow = w(s) P^pi_M(s, s2) A(s, s2)``."""

    s: int
    s2: int
    w: float
    prob: float
    advantage: float
    flow: float


@dataclass(frozen=True)
class Explanation:
    """Lemma 1's pieces for ``(M, M2, pi)``; every array is over states ``(S,)`` or pairs ``(S, S)``.

    Attributes:
        w: discounted visit counts of ``pi`` in ``M``. P_pi: ``P^pi_M`` ``(S, S)``. A: ``A^pi_M2`` ``(S, S)``.
        flow: ``w[:, None] * P_pi * A`` ``(S, S)``. ma: per-state model-advantage term ``flow.sum(1)``.
        reward: per-state reward term ``w (R^pi_M - R^pi_M2)``. total: ``ma + reward``.
        gap: ``J_M(pi) - J_M2(pi)``. lemma: :func:`tabular.simulation_lemma`'s two sides and residuals.
        top: the transitions with the largest ``|flow|``, largest first.
    """

    w: np.ndarray
    P_pi: np.ndarray
    A: np.ndarray
    flow: np.ndarray
    ma: np.ndarray
    reward: np.ndarray
    total: np.ndarray
    gap: float
    lemma: SimulationLemma
    top: tuple[Transition, ...]

    @property
    def residual(self) -> float:
        """``gap - total.sum()``: zero up to round-off (Lemma 1, per state)."""
        return float(self.gap - self.total.sum())


def explain(M: TabularMDP, M2: TabularMDP, pi, top: int = 8) -> Explanation:
    """Per-state and per-transition decomposition of ``J_M(pi) - J_M2(pi)`` (Lemma 1; see the module text).

    Args:
        M: the true model (its ``d`` and ``P`` weigh the pieces). M2: the second model (its ``V`` and ``P``
            make ``A``). pi: policy ``(S, A)``. top: how many transitions to list (by ``|flow|``).

    Raises:
        ValueError: models that do not share ``(S, A, gamma, p0, terminals)``, a bad policy, ``top < 0``,
            or more than :data:`MAX_STATES` states.
    """
    check_pair(M, M2)
    pi = validate_policy(M, pi)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top must be a non-negative integer; got {top!r}")
    if M.S > MAX_STATES:
        raise ValueError(f"explain forms (S, S) tables; S = {M.S} exceeds {MAX_STATES}")
    ev, ev2 = evaluate(M, pi), evaluate(M2, pi)
    w = ev.visits
    P_pi = transition_matrix(M, pi)
    P_pi = np.asarray(P_pi.toarray() if hasattr(P_pi, "toarray") else P_pi, dtype=np.float64)
    A = model_advantage(M2, pi, V=ev2.V)
    flow = w[:, None] * P_pi * A
    ma = w * mean_model_advantage(M, M2, pi, V=ev2.V)  # = flow.sum(1), without the (S, S) round-off
    reward = w * (policy_reward(M, pi) - policy_reward(M2, pi))
    order = np.argsort(-np.abs(flow), axis=None, kind="stable")[:top]
    carrying = [int(i) for i in order if P_pi.flat[i] > 0]
    rows = tuple(Transition(s=i // M.S, s2=i % M.S, w=float(w[i // M.S]), prob=float(P_pi.flat[i]),
                            advantage=float(A.flat[i]), flow=float(flow.flat[i])) for i in carrying)
    return Explanation(w=w, P_pi=P_pi, A=A, flow=flow, ma=ma, reward=reward, total=ma + reward,
                       gap=float(ev.J - ev2.J), lemma=simulation_lemma(M, M2, pi), top=rows)


def perturb(M: TabularMDP, noise: float, rng: np.random.Generator, reward=None) -> TabularMDP:
    """``M`` with each live row mixed with a random distribution: ``P2(s, a) = (1 - noise) P(s, a) + noise q``,
    ``q ~ Dirichlet(1, ..., 1)`` over all states; same ``p0``, ``gamma`` and absorbing terminals.

    ``noise`` in ``[0, 1]`` bounds the error per row (``||P2(s, a) - P(s, a)||_1 <= 2 noise``). Rewards: with
    ``reward`` ``(S, A, S)`` (the reward of each transition, e.g. :func:`tabular.gymnasium_transition_rewards`)
    the second model scores its own dynamics, ``R2(s, a) = sum_s2 P2(s2|s, a) reward[s, a, s2]``, so Lemma 1's
    reward term is not zero; without it ``R2 = R``.
    """
    check_rng(rng)
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating)) or not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise must be a number in [0, 1]; got {noise!r}")
    P = M.dense_P()
    q = rng.dirichlet(np.ones(M.S), size=(M.S, M.A))
    P2 = (1.0 - noise) * P + noise * q
    P2[M.terminal] = P[M.terminal]  # terminals stay absorbing
    if reward is None:
        return TabularMDP(P2, M.R, M.p0, M.gamma, terminal=M.terminal)
    reward = np.asarray(reward, dtype=np.float64)
    if reward.shape != P.shape:
        raise ValueError(f"reward must have shape (S, A, S) = {P.shape}; got {reward.shape}")
    reward = np.where(M.terminal[:, None, None], 0.0, reward)
    return TabularMDP(P2, reward, M.p0, M.gamma, terminal=M.terminal)
