"""The Figure-1 experiment's runs: every (size, method, seed) config, run in worker processes, resumable.

Each run is :func:`gridworld.mbrl.run` in ``<root>/gridworld/<config-hash>/seed<k>/``. The parent locks
every run it will do before any starts (a second command on the same runs stops at once, naming the holder's
PID, or waits with ``wait=True``), finished runs are skipped, interrupted ones resume from their checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

from lab.config import check_int
from lab.pool import WorkerPool
from lab.rundir import RunDir, run_dir

from .config import METHODS, RunConfig, default_budget
from .layout import GridLayout
from .mbrl import EXPERIMENT

__all__ = ["EXPERIMENT", "parse_methods", "make_configs", "run_all"]


def parse_methods(methods: Iterable[str]) -> list[str]:
    """Method names (``all``, or names separated by spaces or commas), validated, in the given order."""
    names = [m for item in methods for m in str(item).replace(",", " ").split()]
    if not names:
        raise ValueError(f"no method given; choose from all, {', '.join(METHODS)}")
    if "all" in names:
        return list(METHODS)
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r}; choose from all, {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def make_configs(sizes: Sequence[int], methods: Iterable[str], seeds: int, iterations: int | None = None,
                 steps_per_iter: int | None = None, first_seed: int = 0, **overrides) -> list[RunConfig]:
    """All run configs (size x method x seed, seeds ``first_seed .. first_seed + seeds - 1``), validated;
    ``ValueError`` on any bad input."""
    seeds, first_seed = check_int("seeds", seeds, 1), check_int("first_seed", first_seed, 0)
    sizes = list(sizes)
    if not sizes:
        raise ValueError("give at least one size")
    methods = parse_methods(methods)
    cfgs = []
    for size in sizes:
        size = GridLayout(size).size  # ValueError for size < 4 or a non-integer
        budget = default_budget(size)
        if iterations is not None:
            budget["iterations"] = iterations
        if steps_per_iter is not None:
            budget["steps_per_iter"] = steps_per_iter
        for method in methods:
            for seed in range(first_seed, first_seed + seeds):
                cfgs.append(RunConfig(size=size, method=method, seed=seed, **{**budget, **overrides}))
    return cfgs


def _one(cfg: RunConfig, path: str, stop_after: int | None) -> tuple[RunConfig, str, float]:
    from .mbrl import run

    t0 = time.perf_counter()
    run(cfg, path, stop_after=stop_after, locked=True)  # the parent holds the lock
    return cfg, path, time.perf_counter() - t0


def run_all(cfgs: Sequence[RunConfig], root: str | os.PathLike, workers: int = 1, stop_after: int | None = None,
            progress: bool = True, wait: bool = False) -> list[Path]:
    """Run every config (skipping finished runs) with ``workers`` processes; returns the run directories.

    Raises:
        RunLocked: another process holds one of the runs (unless ``wait``); nothing was written then.
    """
    from tqdm.auto import tqdm

    check_int("workers", workers, 1)
    runs = [run_dir(root, EXPERIMENT, c) for c in cfgs]
    held: list[RunDir] = []
    try:
        # existing runs first, so that a clash is found before any new directory is made
        # (waiting: one fixed order for every process, so two waiting commands cannot deadlock)
        for rd in sorted(runs, key=lambda r: str(r.path) if wait else (not r.path.exists(), str(r.path))):
            rd.acquire(wait)
            held.append(rd)
        todo = [(c, str(rd.path), stop_after) for c, rd in zip(cfgs, runs) if not rd.is_done()]
        if len(todo) < len(cfgs):
            print(f"skipping {len(cfgs) - len(todo)} finished run(s) under {Path(root) / EXPERIMENT}/", file=sys.stderr)
        bar = tqdm(total=len(todo), desc="gridworld runs", unit="run", disable=not progress or not todo)
        with WorkerPool(workers) as pool:
            for _, (c, _, secs) in pool.imap(_one, todo):
                bar.set_postfix_str(f"{c.method} {c.size}x{c.size} seed {c.seed} ({secs:.0f}s)")
                bar.update()
        bar.close()
    finally:
        for rd in held:
            rd.release()
    return [rd.path for rd in runs]
