"""Deep value-aware model learning (torch): models, objectives, TRPO, environments, Algorithm 2.

Names are re-exported lazily so that ``import deep`` (and ``deep.plot``, ``deep.config``) never imports
torch until a torch-backed name is used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "RunConfig": "deep.config", "make_config": "deep.config", "TABLE1": "deep.config",
    "DynamicsModel": "deep.models", "Normalizer": "deep.models",
    "OBJECTIVES": "deep.objectives", "METHOD_PARTS": "deep.objectives", "model_loss": "deep.objectives",
    "frozen": "deep.objectives",
    "GaussianPolicy": "deep.policy", "ValueNet": "deep.policy", "gae": "deep.policy", "trpo_step": "deep.policy",
    "ENVS": "deep.envs", "make_spec": "deep.envs",
    "Trainer": "deep.algorithm", "train_run": "deep.algorithm", "train": "deep.runner", "run": "deep.runner",
    "plot_runs": "deep.plot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deep' has no attribute {name!r}")
