"""Model-learning-rate and initial-model selection for the Figure-1 gridworld, per (method, grid size).

The rule, fixed before any run (as the paper's Appendix C selects per method): for each (size, method), every
``model_lr`` of :data:`LR_GRID` with each initial model of :data:`INIT_GRID` (``model_init_scale``: N(0, 1)
logits or a uniform model) is run on the selection seeds :data:`SELECTION_SEEDS` (disjoint from the reported
seeds ``0..K-1``) at the size's default budget; the setting with the highest mean AUC of the exact return
(``summarize``'s normalized area under the ``return_exact`` curve: the mean return over the budget) is selected.
Ties (equal means to 1e-9) go to the larger learning rate, then to the N(0, 1) initial model.

    python figures/select_fig1.py            # runs what is missing, prints the table, checks SELECTED

:data:`gridworld.config.SELECTED` holds the result; ``tests/gridworld/test_selection.py``
recomputes it from the committed logs under ``results/gridworld_select/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lab.rundir import find_runs, read_metrics

from .config import METHODS, RunConfig, default_budget
from .mbrl import EXPERIMENT
from .report import auc  # the same AUC as the reported table's

__all__ = ["LR_GRID", "INIT_GRID", "SELECTION_SEEDS", "SIZES", "selection_configs", "auc", "score_table", "select"]

LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
#: ``model_init_scale``: 1.0 = N(0, 1) initial logits, 0.0 = the uniform model
INIT_GRID = (1.0, 0.0)
SELECTION_SEEDS = (100, 101, 102)
SIZES = (8, 16)


def selection_configs(sizes: Sequence[int] = SIZES, methods: Iterable[str] = METHODS) -> list[RunConfig]:
    """Every (size, method, model_lr, model_init_scale, selection seed) run, at each size's default budget;
    ordered so that each setting gets all its seeds before the next setting starts."""
    return [RunConfig(size=size, method=m, seed=seed, model_lr=lr, model_init_scale=init, **default_budget(size))
            for size in sizes for init in INIT_GRID for lr in LR_GRID for m in methods for seed in SELECTION_SEEDS]


def score_table(root: str | os.PathLike) -> list[dict]:
    """One row per (size, method, model_lr, model_init_scale) found under ``root``: the selection seeds'
    AUCs of the exact return, their mean and s.e.m. Runs that did not reach their budget are left out."""
    base = Path(root) / EXPERIMENT if (Path(root) / EXPERIMENT).is_dir() else Path(root)
    groups: dict[tuple, list[float]] = {}
    for cfg, path in find_runs(base):
        if cfg.get("seed") not in SELECTION_SEEDS or not (path / "metrics.csv").exists():
            continue
        m = read_metrics(path)
        if len(m.get("iteration", ())) == 0 or int(m["iteration"][-1]) < cfg["iterations"]:
            continue
        key = (int(cfg["size"]), cfg["method"], float(cfg["model_lr"]), float(cfg["model_init_scale"]))
        groups.setdefault(key, []).append(auc(m["steps"], m["return_exact"]))
    rows = []
    for (size, method, lr, init), v in sorted(groups.items()):
        v = np.asarray(v)
        rows.append(dict(size=size, method=method, model_lr=lr, model_init_scale=init, n=len(v), auc=float(v.mean()),
                         sem=float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0))
    return rows


def select(rows: Sequence[dict], seeds: int = len(SELECTION_SEEDS)) -> dict[tuple[int, str], tuple[float, float]]:
    """``(size, method) -> (model_lr, model_init_scale)`` by the rule above, over settings with all ``seeds``
    selection seeds; ``ValueError`` when a (size, method) lacks any setting of the grid."""
    out = {}
    for size in sorted({r["size"] for r in rows}):
        for method in METHODS:
            cand = [r for r in rows if r["size"] == size and r["method"] == method and r["n"] >= seeds]
            if not cand:
                continue
            have = {(r["model_lr"], r["model_init_scale"]) for r in cand}
            missing = [(lr, i) for i in INIT_GRID for lr in LR_GRID if (lr, i) not in have]
            if missing:
                raise ValueError(f"{size}x{size} {method}: no complete selection runs for (model_lr, init) {missing[0]}")
            best = max(cand, key=lambda r: (round(r["auc"], 9), r["model_lr"], r["model_init_scale"]))
            out[(size, method)] = (best["model_lr"], best["model_init_scale"])
    return out
