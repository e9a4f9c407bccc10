"""``modeladv sweep``: many Algorithm-2 runs in worker processes, finished ones skipped, stage by stage.

The grid (envs x seeds x methods) is ordered seed-major inside each env (every method for seed 0, then seed
1, ...) so a partial sweep already compares every method. With several step budgets (``stages``) the whole
grid runs at the first before any run is extended to the next (runs resume from their checkpoints). The
Appendix C protocol (``alpha_sweep``) runs 9 log-spaced alphas per value-aware method.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from deep.config import RunConfig
from modeladv.pool import WorkerPool

__all__ = ["ALPHA_GRIDS", "plan", "run_plan"]

#: Appendix C: 9 log-scaled values per method (lower scale for VAML, whose squared values are larger)
ALPHA_GRIDS = {
    "ma_l1": [10.0 ** -k for k in range(1, 10)],
    "ma_l1_vps": [10.0 ** -k for k in range(1, 10)],
    "ma_vaml": [10.0 ** -k for k in range(5, 14)],
    "ma_vaml_vps": [10.0 ** -k for k in range(5, 14)],
}


def plan(envs: Sequence[str], methods: Sequence[str], seeds: int, stages: Sequence[int], alpha_sweep: bool = False,
         **overrides: Any) -> list[RunConfig]:
    """The validated run configs of the sweep, in run order (stage by stage)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer; got {seeds!r}")
    if not stages:
        raise ValueError("give at least one step budget")
    if alpha_sweep:
        bad = [m for m in methods if m not in ALPHA_GRIDS]
        if bad:
            raise ValueError(f"the alpha sweep needs value-aware methods ({', '.join(ALPHA_GRIDS)}); got {bad[0]!r}")
    cfgs = []
    for steps in stages:
        for env in envs:
            for seed in range(seeds):
                for method in methods:
                    alphas = ALPHA_GRIDS[method] if alpha_sweep else [None]
                    cfgs += [RunConfig(env=env, method=method, seed=seed, steps=steps, alpha=a, **overrides)
                             for a in alphas]
    return cfgs


def _train(cfg: RunConfig, root: str, wait: bool) -> tuple[RunConfig, str]:
    import torch

    from deep.algorithm import train_run

    torch.set_num_threads(1)
    return cfg, str(train_run(cfg, root=root, progress=False, wait=wait))


def run_plan(cfgs: Sequence[RunConfig], root: str | os.PathLike, workers: int = 1, wait: bool = False) -> int:
    """Run ``cfgs`` with ``workers`` processes, one stage (step budget) at a time; returns 0."""
    from tqdm.auto import tqdm

    stages = list(dict.fromkeys(c.steps for c in cfgs))
    bar = tqdm(total=len(cfgs), desc="deep runs", unit="run")
    with WorkerPool(workers) as pool:
        for steps in stages:
            jobs = [(c, str(root), wait) for c in cfgs if c.steps == steps]
            for _, (c, path) in pool.imap(_train, jobs):
                bar.set_postfix_str(f"{c.env} {c.method} s{c.seed} @{steps}")
                bar.update()
    bar.close()
    print(f"sweep finished: {len(cfgs)} runs under {Path(root) / 'deep'}/")
    return 0
