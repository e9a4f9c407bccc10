"""The N x N gridworld of Sec. 4.1 (Figure 1): its layout, dynamics, reward and exact ``TabularMDP`` twins.

One description of the grid (:class:`GridLayout`) and two vectorized functions, :func:`grid_step` (the
dynamics) and :func:`transition_reward` (the reward; :func:`grid_reward` composes the two), are shared by the
Gymnasium environment (:class:`gridworld.env.ModelAdvGridEnv`) and its tabular twins (:func:`make_twin`),
so the two cannot drift apart; ``tests/gridworld/test_env.py`` steps them side by side. Rendering uses MiniGrid's own renderer (``minigrid.core.grid.Grid``: walls, a green goal, the agent);
the dynamics are ours (cardinal moves, not MiniGrid's turn/forward actions).

This module imports no Gymnasium; ``import gridworld`` registers the Gymnasium ids (see
:mod:`gridworld.env`).

Reward and its exact models (the design choice the issue asks to document)
---------------------------------------------------------------------------
The real environment pays, for the move ``c -> c'`` that is the ``t``-th step of the episode (``t = 1, 2, ...``)::

    r = (dist(c) - dist(c')) / dist(start)  +  [c' = goal] * (1 - 0.9 t / max_steps)

with ``dist`` the L2 (Euclidean) distance to the goal cell. The dense part is potential-based: over an
episode it telescopes to ``1 - dist(final)/dist(start)``, which is ``< 1`` unless the goal is reached and
exactly 1 when it is. The goal bonus decays with time like MiniGrid's, so the undiscounted episode return is
``> 1`` iff the goal was reached (the bonus is at least 0.1 > 0), and fewer steps give a higher return.
The time limit ``max_steps`` defaults to ``8 (size - 3)`` (four shortest paths), not MiniGrid's ``4 size^2``:
see :class:`gridworld.env.ModelAdvGridEnv`.

The decaying bonus depends on ``t``, so it is not Markov in the cell. Two exact twins are offered:

* **stationary** (``make_twin(size, gamma)``): states are the cells, the bonus is undecayed (always 1), and the
  discount ``gamma < 1`` takes over the decay's job (fewer steps -> higher discounted return). This is the
  MDP the MBRL machinery plans in and in which every exact diagnostic (gap, expected model advantage,
  objective values) is measured. Its rewards equal the environment's with ``decay=False``.
* **time-augmented** (``make_twin(size, time_augmented=True)``): states are ``(cell, t)`` for
  ``t = 0..max_steps`` (index ``t * C + cell``), ``gamma = 1``, the decayed bonus, and truncation at
  ``max_steps`` as an absorbing state. Its ``performance`` is exactly the expected undiscounted return the
  environment reports; it is meant for small ``N`` (``C (max_steps + 1)`` states).

The reward is a known function of the *transition*, ``r(c, c')`` (:func:`transition_reward`), scored on
whatever next cell a model predicts, as model-based RL with known reward functions does (only the dynamics are
learned). The stationary twin's expected reward is ``R(s, a) = r(s, step(s, a))``; a learned model's is
``R_phi(s, a) = sum_s' P_phi(s'|s, a) r(s, s')``. (Reading the paper's ``R(s, a)`` literally instead, as the
true ``r(s, step(s, a))`` handed to the agent, gives away the solution: greedy in that dense reward is
optimal here, and the agent then learns as fast with no model learning at all; see docs/gridworld_results.md.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from tabular.mdp import TabularMDP

__all__ = [
    "ACTIONS",
    "GridLayout",
    "grid_step",
    "grid_reward",
    "transition_reward",
    "make_twin",
    "render_layout",
    "GOAL_DECAY",
]

#: Action names in action-index order (the paper's {North, South, East, West}).
ACTIONS = ("north", "south", "east", "west")
# (dx, dy) per action; y grows downwards (MiniGrid's convention), so north is dy = -1.
_DX = np.array([0, 0, 1, -1])
_DY = np.array([-1, 1, 0, 0])
# MiniGrid agent direction (0 right, 1 down, 2 left, 3 up) drawn for each of our actions.
_MINIGRID_DIR = np.array([3, 1, 0, 2])

#: Goal bonus after ``t`` steps: ``1 - GOAL_DECAY * t / max_steps`` (MiniGrid's ``_reward``).
GOAL_DECAY = 0.9


@dataclass(frozen=True)
class GridLayout:
    """An ``size x size`` grid (walls included, as in MiniGrid) with an empty ``(size-2) x (size-2)`` interior.

    Cells are the interior squares, indexed row-major: ``cell = (y - 1) * W + (x - 1)`` with ``W = size - 2``
    and MiniGrid coordinates ``x`` (column) and ``y`` (row, downwards). The start is the top-left interior
    cell ``(1, 1)``, the goal the bottom-right ``(size-2, size-2)``.

    Attributes:
        size: grid side including the walls, ``>= 4`` (so that start and goal differ).
        max_steps: episode length limit of the real environment; ``None`` means ``4 x`` the Manhattan distance
            start -> goal, ``8 (size - 3)``. (MiniGrid's ``4 size^2`` is so long that a uniformly random walk
            reaches the goal: its expected return on 8x8 is 1.36 > 1, which would make "return > 1" trivial.)

    Raises:
        ValueError: ``size < 4`` or ``max_steps < 1``.
    """

    size: int = 8
    max_steps: int | None = None

    def __post_init__(self):
        if isinstance(self.size, bool) or int(self.size) != self.size or self.size < 4:
            raise ValueError(f"size must be an integer >= 4 (walls on the edges leave a (size-2)x(size-2) "
                             f"interior whose start and goal must differ); got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        if self.max_steps is None:
            object.__setattr__(self, "max_steps", 8 * (self.size - 3))
        if isinstance(self.max_steps, bool) or int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer; got {self.max_steps!r}")
        object.__setattr__(self, "max_steps", int(self.max_steps))

    @property
    def width(self) -> int:
        """Interior side ``W = size - 2``."""
        return self.size - 2

    @property
    def n_cells(self) -> int:
        """Number of cells ``C = W^2`` (the stationary twin's ``S``)."""
        return self.width ** 2

    @property
    def start(self) -> int:
        return 0

    @property
    def goal(self) -> int:
        return self.n_cells - 1

    def xy(self, cell) -> tuple[np.ndarray, np.ndarray]:
        """MiniGrid coordinates ``(x, y)`` of ``cell`` (scalar or array)."""
        cell = np.asarray(cell)
        return cell % self.width + 1, cell // self.width + 1

    def cell(self, x, y) -> np.ndarray:
        """Cell index of MiniGrid coordinates ``(x, y)`` (interior only)."""
        return (np.asarray(y) - 1) * self.width + (np.asarray(x) - 1)

    @cached_property
    def dist(self) -> np.ndarray:
        """L2 distance of each cell to the goal, ``(C,)``."""
        x, y = self.xy(np.arange(self.n_cells))
        gx, gy = self.xy(self.goal)
        return np.hypot(x - gx, y - gy)

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(next (C, A), dense (C, A), arrive (C, A) bool)`` from :func:`grid_step`/:func:`grid_reward`: the
        next cell, the reward without the goal bonus, and whether the move enters the goal. For vectorized
        rollouts: the reward of step ``t`` is ``dense + arrive * bonus(t)``."""
        cells = np.arange(self.n_cells)
        nxt = np.stack([grid_step(self, cells, a) for a in range(len(ACTIONS))], axis=1)
        arrive = (nxt == self.goal) & (cells[:, None] != self.goal)
        dense = np.stack([grid_reward(self, cells, a) for a in range(len(ACTIONS))], axis=1) - arrive
        for arr in (nxt, dense, arrive):
            arr.setflags(write=False)
        return nxt, dense, arrive

    @cached_property
    def reward_table(self) -> np.ndarray:
        """Stationary ``r(c, c')`` for every pair of cells ``(C, C)`` (undecayed bonus): the known reward function
        scored on a model's predicted next cell."""
        cells = np.arange(self.n_cells)
        r = transition_reward(self, cells[:, None], cells[None, :])
        r.setflags(write=False)
        return r

    @cached_property
    def arrival_reward(self) -> np.ndarray:
        """``u(c') = -dist(c')/dist(start) + [c' = goal]`` ``(C,)``: the part of ``r(c, c')`` that depends on the
        next cell; ``r(c, c') = u(c') + dist(c)/dist(start)`` for every ``c != goal``."""
        u = -self.dist / self.dist[self.start]
        u[self.goal] += 1.0
        u.setflags(write=False)
        return u

    def bonus(self, t) -> np.ndarray:
        """Goal bonus on arrival at step ``t`` (``t >= 1``): ``1 - 0.9 t / max_steps``."""
        return 1.0 - GOAL_DECAY * np.asarray(t, dtype=np.float64) / self.max_steps

    @property
    def manhattan(self) -> int:
        """Manhattan distance start -> goal, ``2 (size - 3)``: the optimal number of steps."""
        return 2 * (self.size - 3)

    @property
    def best_return(self) -> float:
        """The optimal real return: the dense part telescopes to 1, plus the bonus after ``manhattan`` steps."""
        return 1.0 + float(self.bonus(self.manhattan))


def grid_step(layout: GridLayout, cell, action) -> np.ndarray:
    """Deterministic cardinal move: the next cell(s), staying put when the move would enter a wall.

    The goal is absorbing. Vectorized: ``cell`` and ``action`` broadcast (ints or integer arrays).

    Raises:
        ValueError: an action outside ``{0, 1, 2, 3}`` or a cell outside ``[0, C)``.
    """
    cell = np.asarray(cell)
    action = np.asarray(action)
    if action.size and (action.min() < 0 or action.max() > 3):
        raise ValueError(f"actions must lie in 0..3 {ACTIONS}; got {action}")
    if cell.size and (cell.min() < 0 or cell.max() >= layout.n_cells):
        raise ValueError(f"cells must lie in [0, {layout.n_cells}); got {cell}")
    x, y = layout.xy(cell)
    W = layout.width
    nx = np.clip(x + _DX[action], 1, W)
    ny = np.clip(y + _DY[action], 1, W)
    nxt = layout.cell(nx, ny)
    return np.where(cell == layout.goal, cell, nxt)


def transition_reward(layout: GridLayout, cell, next_cell, t=None) -> np.ndarray:
    """Reward of the move ``cell -> next_cell`` made as the ``t``-th step of the episode (``t >= 1``).

    ``(dist(c) - dist(c'))/dist(start) + [c' = goal, c != goal] * bonus`` with ``bonus = 1 - 0.9 t/max_steps``,
    or ``bonus = 1`` when ``t is None`` (the stationary twin); zero from the goal (absorbing). A function of the
    transition, not of the action: the known reward function a learned model's predicted ``c'`` is scored
    with. Vectorized (``cell``, ``next_cell`` and ``t`` broadcast).
    """
    cell, nxt = np.asarray(cell), np.asarray(next_cell)
    d = layout.dist
    bonus = 1.0 if t is None else layout.bonus(t)
    arrive = (nxt == layout.goal) & (cell != layout.goal)
    return np.where(cell == layout.goal, 0.0, (d[cell] - d[nxt]) / d[layout.start] + arrive * bonus)


def grid_reward(layout: GridLayout, cell, action, t=None) -> np.ndarray:
    """Reward of taking ``action`` in ``cell`` as the ``t``-th step: :func:`transition_reward` of the true move."""
    return transition_reward(layout, cell, grid_step(layout, cell, action), t)


def make_twin(size: int | GridLayout = 8, gamma: float = 0.99, time_augmented: bool = False,
              max_steps: int | None = None) -> TabularMDP:
    """The exact ``TabularMDP`` of the gridworld, built from :func:`grid_step` and :func:`grid_reward`.

    Args:
        size: grid side (or a :class:`GridLayout`).
        gamma: discount of the stationary twin (ignored when ``time_augmented``: that twin uses ``gamma = 1``).
        time_augmented: ``False``: states are the ``C`` cells, undecayed bonus, goal absorbing (``terminal``),
            dense ``P`` ``(C, 4, C)``. ``True``: states ``t * C + cell`` for ``t = 0..max_steps``, decayed bonus,
            ``gamma = 1``; every goal state and every ``t = max_steps`` state is absorbing (sparse ``P``).
            ``performance`` of this twin is the environment's expected undiscounted (truncated) return.
        max_steps: the time limit (default ``8 (size - 3)``); only used by the time-augmented twin.

    Raises:
        ValueError: bad ``size``/``gamma``/``max_steps``.
    """
    layout = size if isinstance(size, GridLayout) else GridLayout(size, max_steps)
    C, A = layout.n_cells, len(ACTIONS)
    cells = np.arange(C)
    nxt = np.stack([grid_step(layout, cells, a) for a in range(A)], axis=1)  # (C, A)
    if not time_augmented:
        P = np.zeros((C, A, C))
        P[cells[:, None], np.arange(A)[None, :], nxt] = 1.0
        R = np.broadcast_to(layout.reward_table[:, None, :], (C, A, C))  # r(s, a, s') = r(s, s')
        p0 = np.zeros(C)
        p0[layout.start] = 1.0
        return TabularMDP(P, R, p0, gamma, terminal=np.array([layout.goal]))
    T = layout.max_steps
    S = C * (T + 1)
    s = np.arange(S)
    t, c = s // C, s % C
    absorbing = (c == layout.goal) | (t == T)
    rows = (s[:, None] * A + np.arange(A)[None, :]).ravel()  # (S*A,)
    target = np.where(absorbing[:, None], s[:, None], (t[:, None] + 1) * C + nxt[c]).ravel()
    P = sp.csr_matrix((np.ones(S * A), (rows, target)), shape=(S * A, S))
    R = np.stack([grid_reward(layout, c, a, t + 1) for a in range(A)], axis=1)
    R[absorbing] = 0.0
    p0 = np.zeros(S)
    p0[layout.start] = 1.0
    return TabularMDP(P, R, p0, 1.0, terminal=absorbing)


def render_layout(layout: GridLayout, cell: int | None = None, action: int | None = None,
                  tile_size: int = 32) -> np.ndarray:
    """RGB image ``(size*tile, size*tile, 3)`` of the grid drawn by MiniGrid's renderer.

    Walls on the edges, the green goal square, and the agent (a red triangle) at ``cell`` (default: the
    start) pointing along the last ``action`` (default: east).
    """
    from minigrid.core.grid import Grid  # lazy: minigrid imports take ~0.3 s
    from minigrid.core.world_object import Goal

    grid = Grid(layout.size, layout.size)
    grid.wall_rect(0, 0, layout.size, layout.size)
    gx, gy = layout.xy(layout.goal)
    grid.set(int(gx), int(gy), Goal())
    x, y = layout.xy(layout.start if cell is None else cell)
    direction = 0 if action is None else int(_MINIGRID_DIR[action])
    return grid.render(tile_size, agent_pos=(int(x), int(y)), agent_dir=direction)
