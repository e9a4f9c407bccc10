"""Textbook and counterexample MDPs with closed-form answers, each with its source."""

from __future__ import annotations

import numpy as np

from .mdp import TabularMDP

__all__ = ["gridworld_example_3_5", "gridworld_example_4_1", "random_mdp", "eq5_counterexample"]

#: Grid moves in the order north, south, east, west (row, column deltas).
_MOVES = ((-1, 0), (1, 0), (0, 1), (0, -1))


def _grid_dynamics(n: int, teleports: dict, slip: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic n x n grid moves (off-grid: stay, reward -1) with optional teleports, mixed with slip.

    ``teleports`` maps a cell index to ``(target, reward)`` applied for every action. With ``slip > 0`` the
    intended move happens with probability ``1 - slip`` and a uniformly random move otherwise.
    Returns ``P (S, 4, S)`` and the expected reward ``R (S, 4)``.
    """
    S = n * n
    P_det = np.zeros((S, 4, S))
    r_det = np.zeros((S, 4))
    for s in range(S):
        r, c = divmod(s, n)
        for a, (dr, dc) in enumerate(_MOVES):
            if s in teleports:
                s2, r_det[s, a] = teleports[s]
            elif 0 <= r + dr < n and 0 <= c + dc < n:
                s2 = (r + dr) * n + c + dc
            else:
                s2, r_det[s, a] = s, -1.0
            P_det[s, a, s2] = 1.0
    P = (1 - slip) * P_det + slip * P_det.mean(axis=1, keepdims=True)
    R = (1 - slip) * r_det + slip * r_det.mean(axis=1, keepdims=True)
    return P, R


def gridworld_example_3_5(gamma: float = 0.9, slip: float = 0.0, a_reward: float = 10.0,
                          b_reward: float = 5.0) -> TabularMDP:
    """Sutton & Barto (2nd ed., 2018), Example 3.5: the 5 x 5 gridworld of Figure 3.2.

    States ``5 r + c`` (row ``r`` from the top); actions north, south, east, west. Every action in
    ``A = (0, 1)`` moves to ``A' = (4, 1)`` with reward ``+10``; in ``B = (0, 3)`` to ``B' = (2, 3)`` with
    ``+5``; a move off the grid leaves the state unchanged with reward ``-1``; all else 0. ``p0`` uniform.
    ``slip`` (not in the book) mixes a uniformly random move in, to make a second model with other dynamics.
    """
    A, A2, B, B2 = 1, 21, 3, 13
    P, R = _grid_dynamics(5, {A: (A2, a_reward), B: (B2, b_reward)}, slip)
    return TabularMDP(P, R, np.full(25, 1 / 25), gamma)


def gridworld_example_4_1() -> TabularMDP:
    """Sutton & Barto (2nd ed., 2018), Example 4.1: the 4 x 4 episodic gridworld (gamma = 1).

    States ``4 r + c``; the corners 0 and 15 are terminal (absorbing, reward 0). Every other step costs
    ``-1``; moves off the grid leave the state unchanged. ``p0`` uniform over the 14 non-terminal states.
    """
    P, _ = _grid_dynamics(4, {}, 0.0)
    R = -np.ones((16, 4))
    for t in (0, 15):
        P[t] = 0.0
        P[t, :, t] = 1.0
        R[t] = 0.0
    p0 = np.full(16, 1 / 14)
    p0[[0, 15]] = 0.0
    return TabularMDP(P, R, p0, 1.0, terminal=[0, 15])


def random_mdp(rng: np.random.Generator, S: int, A: int, gamma: float) -> TabularMDP:
    """A dense random MDP: Dirichlet(1) rows for ``P`` and ``p0``, rewards uniform in ``[-1, 1]``."""
    return TabularMDP(rng.dirichlet(np.ones(S), size=(S, A)), rng.uniform(-1, 1, size=(S, A)),
                      rng.dirichlet(np.ones(S)), gamma)


def eq5_counterexample() -> tuple[TabularMDP, TabularMDP, np.ndarray]:
    """A two-state MDP pair where Eq. 5 as printed fails (hand-checkable); returns ``(M, M2, pi)``.

    One action, ``gamma = 1/2``, start in state 0, identical rewards ``R = (0, 1)`` (state 1 pays 1 per
    step and is absorbing in both). ``M`` moves 0 -> 1; ``M2`` keeps 0 -> 0. Then::

        V_M  = (1, 2),  J_M  = 1      (V(1) = 1/(1-gamma) = 2, V(0) = gamma * 2)
        V_M2 = (0, 2),  J_M2 = 0      so  J_M - J_M2 = 1
        d_M  = (1/2, 1/2),  d_M2 = (1, 0)
        T_M V_M - T_M2 V_M  = (gamma (V_M(1) - V_M(0)), 0) = (1/2, 0)
        printed Eq. 5:  2 * (1/2 * 1/2)              = 1/2   (wrong)
        dual form:      2 * (1 * 1/2)                = 1     (d_M2 instead of d_M)
        T_M V_M2 - T_M2 V_M2 = (gamma (2 - 0), 0) = (1, 0)
        proof form:     2 * (1/2 * 1)                = 1
    """
    gamma = 0.5
    R = np.array([[0.0], [1.0]])
    p0 = np.array([1.0, 0.0])
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    P2 = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    pi = np.ones((2, 1))
    return TabularMDP(P, R, p0, gamma), TabularMDP(P2, R, p0, gamma), pi
