"""The gridworld as a Gymnasium environment; ``import gridworld`` registers its ids.

Ids: ``ModelAdvGrid-v0`` (``size`` keyword, default 8), ``ModelAdvGrid-8x8-v0`` and ``ModelAdvGrid-16x16-v0``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .layout import ACTIONS, GridLayout, grid_reward, grid_step, render_layout

__all__ = ["ModelAdvGridEnv", "ENV_IDS", "register"]

#: Gymnasium ids registered on ``import gridworld``.
ENV_IDS = ("ModelAdvGrid-v0", "ModelAdvGrid-8x8-v0", "ModelAdvGrid-16x16-v0")


class ModelAdvGridEnv(gym.Env):
    """Empty N x N gridworld with cardinal actions, a dense distance reward and a decaying goal bonus.

    ## Description
    The discrete gridworld of Modhe et al. (2021), Sec. 4.1 / Figure 1: an ``size x size`` MiniGrid-style grid
    with walls along all edges and an empty interior. The agent spawns in the top-left interior cell and must
    reach the fixed, absorbing goal in the bottom-right interior cell. Transitions are deterministic.

    ## Action Space
    ``Discrete(4)``: 0 North (up), 1 South (down), 2 East (right), 3 West (left). A move into a wall leaves the
    agent in place. (Not MiniGrid's turn-left/turn-right/forward actions.)

    ## Observation Space
    ``Discrete(C)``, ``C = (size - 2)^2``: the agent's interior cell, row-major, ``cell = (y-1)(size-2) + (x-1)``
    in MiniGrid coordinates (``x`` column, ``y`` row downwards). Cell 0 is the start, ``C - 1`` the goal.

    ## Rewards
    For the ``t``-th step ``c -> c'`` (``t = 1, 2, ...``): ``(dist(c) - dist(c')) / dist(start)`` (improvement of
    the L2 distance to the goal, scaled by the start's distance) plus, on arriving at the goal,
    ``1 - 0.9 t / max_steps`` (MiniGrid's decaying reward; undecayed ``1`` with ``decay=False``). The dense part
    telescopes to ``1 - dist(final)/dist(start)``, so the episode return is ``> 1`` iff the goal was reached,
    and higher the fewer steps it took. The best return is ``2 - 0.9 * 2 (size-3) / max_steps``.
    The exact twins of this reward (stationary with discounting, or time-augmented) are described in the
    docstring of :mod:`gridworld.layout` and built by :func:`gridworld.layout.make_twin`.

    ## Starting State
    The top-left interior cell (MiniGrid ``(1, 1)``), at ``t = 0``; ``reset(options={"cell": c, "t": t})``
    continues an episode from cell ``c`` after ``t`` steps instead (an exact resume from a checkpoint).
    ``reset`` and ``step`` return ``t`` in ``info``.

    ## Episode End
    Termination: the agent enters the goal. Truncation: ``max_steps`` steps, handled by the environment itself
    (no ``TimeLimit`` wrapper). The default ``8 (size - 3)`` is four times the shortest path; MiniGrid's Empty
    environments use ``4 size^2``, with which even the uniformly random policy reaches the 8x8 goal on average
    (expected return 1.36 > 1), so "return > 1" would not measure learning. With the default limit the random
    policy's expected return is 0.49 (8x8) and 0.35 (16x16).

    ## Arguments
    ``gymnasium.make("ModelAdvGrid-8x8-v0")``, ``gymnasium.make("ModelAdvGrid-16x16-v0")``, or
    ``gymnasium.make("ModelAdvGrid-v0", size=N, max_steps=None, decay=True, render_mode="rgb_array")``.
    ``size >= 4`` includes the walls (MiniGrid convention: 8x8 has a 6x6 interior).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, size: int = 8, max_steps: int | None = None, decay: bool = True,
                 render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None; got {render_mode!r}")
        self.layout = GridLayout(size, max_steps)
        self.decay = bool(decay)
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.layout.n_cells)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.cell = self.layout.start
        self.t = 0
        self._last_action: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cell, t = self.layout.start, 0
        if options:
            cell, t = options.get("cell", cell), options.get("t", t)
            if isinstance(cell, bool) or not isinstance(cell, (int, np.integer)) or not 0 <= cell < self.layout.n_cells:
                raise ValueError(f"options['cell'] must be a cell in 0..{self.layout.n_cells - 1}; got {cell!r}")
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.layout.max_steps:
                raise ValueError(f"options['t'] must be a step in 0..{self.layout.max_steps - 1}; got {t!r}")
        self.cell, self.t, self._last_action = int(cell), int(t), None
        return self.cell, {"t": self.t}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be one of 0..3 {ACTIONS}; got {action!r}")
        a = int(action)
        self.t += 1
        reward = float(grid_reward(self.layout, self.cell, a, self.t if self.decay else None))
        self.cell = int(grid_step(self.layout, self.cell, a))
        self._last_action = a
        terminated = self.cell == self.layout.goal
        truncated = (not terminated) and self.t >= self.layout.max_steps
        return self.cell, reward, bool(terminated), bool(truncated), {"t": self.t}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_layout(self.layout, self.cell, self._last_action)


def register() -> None:
    """Register :data:`ENV_IDS` with Gymnasium (idempotent)."""
    entry = f"{__name__}:ModelAdvGridEnv"
    specs = {"ModelAdvGrid-v0": {}, "ModelAdvGrid-8x8-v0": {"size": 8}, "ModelAdvGrid-16x16-v0": {"size": 16}}
    for env_id, kwargs in specs.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry, kwargs=kwargs)

