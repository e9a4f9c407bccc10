"""``modeladv evaluate``: the authors' evaluation of the policies in deep runs' checkpoints."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lab.config import bounded, check_fields

from .train import import_torch

__all__ = ["Args", "run"]


@dataclass(frozen=True)
class Args:
    """Evaluate the policy of every deep run with a checkpoint under --root as the authors do: --n-envs fresh
    environments x --steps-per-env steps, the stochastic policy without exploration noise; the mean return of the
    finished episodes goes to evaluation.csv in each run directory (one row per checkpoint step).

    For example:

        modeladv evaluate --root results/ablation_protocol

    A checkpoint stays on the machine that ran it (it is not committed): evaluate before moving the logs.
    """

    root: str = "runs"
    """run root holding deep/ (or one run directory)"""
    n_envs: int = field(default=4, metadata=bounded(1))
    """fresh environments (the authors: 4)"""
    steps_per_env: int = field(default=2500, metadata=bounded(1))
    """steps in each (the authors: 2500; episodes end at termination or the task's time limit)"""

    def __post_init__(self):
        check_fields(self)


def run(o: Args) -> int:
    from deep.config import find_deep_runs

    root = Path(o.root)
    if not root.is_dir():
        raise ValueError(f"run root {root} does not exist")
    runs = [(cfg, path) for cfg, path in find_deep_runs(root)
            if "env" in cfg and "method" in cfg and (path / "checkpoint").is_file()]
    if not runs:
        raise ValueError(f"no deep run with a checkpoint under {root}")
    import_torch("evaluate")
    from tqdm import tqdm

    from deep.runner import evaluate_run
    from lab.rundir import RunDir, RunLocked

    print("| env | method | seed | step | evaluation return | episodes | run |\n|---|---|---|---|---|---|---|")
    for cfg, path in tqdm(runs, desc="evaluate", unit="run", leave=False):
        try:
            r = evaluate_run(path, o.n_envs, o.steps_per_env)
        except RunLocked:  # a live run (with --evaluate-every it records its own evaluations)
            print(f"skipped {path}: a live process ({RunDir(path).holder()}) holds the run; evaluate it when it "
                  "ends", file=sys.stderr)
            continue
        print(f"| {cfg['env']} | {cfg['method']} | {cfg['seed']} | {int(r['step'])} | {r['eval_return']:.1f} | "
              f"{int(r['eval_episodes'])} | {path} |")
    return 0
