"""Exact tabular toolkit for Model-Advantage Optimization (Modhe et al., 2021).

Everything here is numpy/scipy/numba; ``import tabular`` never imports torch.
"""

from .mdp import (
    TabularMDP,
    from_gymnasium,
    policy_reward,
    transition_matrix,
    uniform_policy,
    validate_policy,
)
from .solve import (
    Evaluation,
    SolveResult,
    evaluate,
    greedy_policy,
    occupancy,
    performance,
    policy_evaluation,
    policy_iteration,
    q_values,
    state_distribution,
    value_iteration,
)

__all__ = [
    "TabularMDP",
    "from_gymnasium",
    "policy_reward",
    "transition_matrix",
    "uniform_policy",
    "validate_policy",
    "Evaluation",
    "SolveResult",
    "evaluate",
    "greedy_policy",
    "occupancy",
    "performance",
    "policy_evaluation",
    "policy_iteration",
    "q_values",
    "state_distribution",
    "value_iteration",
]
