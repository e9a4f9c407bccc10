"""One gridworld MBRL run as a validated frozen dataclass; its fields are the flags of ``modeladv gridworld``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from lab.config import bounded, check_choice, check_fields

from tabular.objectives import OBJECTIVE_NAMES
from .layout import GridLayout

__all__ = ["METHODS", "VALUE_MODES", "OPTIMIZERS", "REFRESH_FROM", "SELECTED", "RunConfig", "identity_of", "default_budget",
           "selected_setting"]

#: The five model-learning objectives of Figure 1 (keys of ``tabular.SAMPLED_OBJECTIVES``), in plotting order.
METHODS = OBJECTIVE_NAMES
VALUE_MODES = ("learned", "exact")
OPTIMIZERS = ("adam", "sgd")
REFRESH_FROM = ("start", "buffer")

#: float64 arrays of shape (S, A, S) a run holds at its peak (logits, Adam moments, gradient, model
#: probabilities, sampler table, dense true and learned P, diagnostics' differences and exact-objective terms)
_SAS_ARRAYS = 16

#: ``(size, method) -> (model_lr, model_init_scale)`` selected on seeds 100-102 by the rule of
#: :mod:`gridworld.selection` (highest mean AUC of the exact return; figures/select_fig1.py).
SELECTED: dict[tuple[int, str], tuple[float, float]] = {
    (8, "mle"): (0.3, 0.0),
    (8, "ma_direct_l1"): (1.0, 0.0),
    (8, "ma_direct_l2"): (0.01, 0.0),
    (8, "ma_l1"): (0.1, 0.0),
    (8, "ma_vaml"): (1.0, 0.0),
    (16, "mle"): (1.0, 1.0),
    (16, "ma_direct_l1"): (0.01, 0.0),
    (16, "ma_direct_l2"): (0.01, 0.0),
    (16, "ma_l1"): (0.03, 1.0),
    (16, "ma_vaml"): (0.03, 0.0),
}


def selected_setting(size: int, method: str) -> tuple[float, float]:
    """``(model_lr, model_init_scale)`` of :data:`SELECTED` for ``method`` at the selected size nearest to
    ``size`` (8 for sizes up to 12, 16 above)."""
    check_choice("method", method, METHODS)
    near = min(sorted({k[0] for k in SELECTED}), key=lambda n: abs(n - size))
    return SELECTED[(near, method)]


def default_budget(size: int) -> dict:
    """Real-data budget per size: 8x8 (and smaller) 50 iterations x 10 steps; larger 100 x 60."""
    return {"iterations": 50, "steps_per_iter": 10} if size <= 8 else {"iterations": 100, "steps_per_iter": 60}


def identity_of(config: dict) -> dict:
    """The fields of a stored or new config that make two runs the same run (hashed into the run directory,
    checked on resume): all, with ``checkpoint_every`` at its default (how often a run checkpoints does not
    change its numbers)."""
    return {**config, "checkpoint_every": RunConfig.checkpoint_every}


@dataclass(frozen=True)
class RunConfig:
    """One gridworld MBRL run (Algorithm 2 with A2C). Defaults: the quick 8x8 budget of ``modeladv gridworld``."""

    size: int = 8
    """grid side including walls (MiniGrid convention: 8 -> 6x6 interior); >= 4"""
    method: Literal[METHODS] = "ma_l1"
    """model-learning objective: mle, ma_direct_l1, ma_direct_l2, ma_l1 (Eq. 10), ma_vaml"""
    seed: int = field(default=0, metadata=bounded(0))
    """seed of the run's single numpy Generator"""
    gamma: float = field(default=0.95, metadata=bounded(0.0, 1.0, low_open=True, high_open=True))
    """discount of the stationary twin / learned model (planning and diagnostics), in (0, 1)"""
    iterations: int = field(default=50, metadata=bounded(1))
    """outer iterations K of Algorithm 2"""
    steps_per_iter: int = field(default=10, metadata=bounded(1))
    """real environment steps n collected per iteration (line 4)"""
    max_steps: int | None = None
    """real episode time limit (None: 8 (size - 3), four times the shortest path)"""
    model_steps: int = field(default=20, metadata=bounded(0))
    """K_model gradient steps on the model logits per iteration (line 5)"""
    model_lr: float | None = field(default=None, metadata=bounded(0.0, low_open=True))
    """model learning rate (None: the one selected for this size and method on seeds 100-102, SELECTED)"""
    optimizer: Literal[OPTIMIZERS] = "adam"
    """model optimizer: adam or sgd"""
    model_init_scale: float | None = field(default=None, metadata=bounded(0.0))
    """std of the Gaussian initial model logits, 0 = the uniform model (None: selected with model_lr)"""
    value: Literal[VALUE_MODES] = "learned"
    """value used by the objectives and A2C: learned (tabular critic) or exact (V^pi in the learned model)"""
    value_refresh_every: int = field(default=5, metadata=bounded(1))
    """refresh V every this many model steps (Alg. 2 lines 7-8)"""
    refresh_rollouts: int = field(default=32, metadata=bounded(1))
    """model rollouts per critic refresh (value=learned)"""
    refresh_from: Literal[REFRESH_FROM] = "start"
    """start states of the critic-refresh rollouts (line 7): start (p0) or buffer (replay next states, where the
    objectives read V; measured worse on 8x8, see docs/gridworld_results.md)"""
    policy_steps: int = field(default=30, metadata=bounded(1))
    """K_policy A2C updates per iteration (line 10)"""
    rollouts: int = field(default=32, metadata=bounded(1))
    """parallel model rollouts B per A2C update"""
    rollout_len: int = field(default=0, metadata=bounded(0))
    """model rollout length T (0: twice the Manhattan distance start->goal)"""
    policy_lr: float = field(default=1.0, metadata=bounded(0.0, low_open=True))
    """A2C step size on the softmax logits (gradient summed over a rollout, averaged over rollouts)"""
    critic_lr: float = field(default=0.5, metadata=bounded(0.0, 1.0, low_open=True))
    """tabular critic step towards the per-state mean n-step return, in (0, 1]"""
    entropy_coef: float = field(default=0.01, metadata=bounded(0.0))
    """A2C entropy bonus"""
    eval_episodes: int = field(default=20, metadata=bounded(1))
    """real evaluation episodes per iteration (the logged 'return')"""
    checkpoint_every: int = field(default=10, metadata=bounded(1))
    """iterations between checkpoints"""

    def __post_init__(self):
        GridLayout(self.size, self.max_steps)  # size >= 4, max_steps >= 1
        check_choice("method", self.method, METHODS)
        if self.model_lr is None or self.model_init_scale is None:
            lr, init = selected_setting(self.size, self.method)
            if self.model_lr is None:
                object.__setattr__(self, "model_lr", lr)
            if self.model_init_scale is None:
                object.__setattr__(self, "model_init_scale", init)
        check_choice("value", self.value, VALUE_MODES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("refresh_from", self.refresh_from, REFRESH_FROM)
        check_fields(self)

    @property
    def layout(self) -> GridLayout:
        return GridLayout(self.size, self.max_steps)

    @property
    def horizon(self) -> int:
        return self.rollout_len or 2 * self.layout.manhattan

    def memory_bytes(self) -> int:
        """Peak memory of one run, estimated from its largest arrays (``(S, A, S)`` float64, ``S`` cells)."""
        S = (self.size - 2) ** 2
        return _SAS_ARRAYS * 8 * S * 4 * S + 8 * 5 * self.iterations * self.steps_per_iter

    def identity(self) -> dict:
        """:func:`identity_of` this config."""
        return identity_of(dataclasses.asdict(self))

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

