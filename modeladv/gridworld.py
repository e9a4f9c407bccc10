"""``modeladv gridworld``: the Figure-1 experiment (Sec. 4.1), every (size, method, seed) run in worker processes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro
from tyro.conf import Suppress

from gridworld.config import RunConfig
from lab.config import bounded, check_fields
from lab.guards import check_figure_path, check_memory, check_output_dir

from .commands import default_figure, suppressed

__all__ = ["Args", "RunFlags", "run"]


@dataclass(frozen=True)
class RunFlags(RunConfig):
    """settings every run shares (each run's gridworld.RunConfig is checked once its size and method are known;
    None fields are resolved per run)"""

    size: Suppress[int] = 8
    method: Suppress[str] = "ma_l1"
    seed: Suppress[int] = 0
    iterations: Suppress[int] = 50
    steps_per_iter: Suppress[int] = 10

    def __post_init__(self):
        pass


@dataclass(frozen=True)
class Args:
    """The Figure-1 gridworld experiment (Sec. 4.1): tabular Algorithm 2 with A2C, five objectives.

    For example:

        modeladv gridworld                                        # quick 8x8: 5 methods x 5 seeds, 500 real steps
        modeladv gridworld --size 8 16 --seeds 10 --root results  # the full Figure 1 (then figures/make_fig1.py)
        modeladv gridworld --methods mle ma_l1 --value exact --gamma 0.9

    Runs resume after an interruption (rerun the same command); finished runs are skipped.
    """

    size: tuple[int, ...] = (8,)
    """grid size(s), walls included"""
    methods: tuple[str, ...] = ("all",)
    """all, or any of mle, ma_direct_l1, ma_direct_l2, ma_l1, ma_vaml"""
    seeds: int = 5
    """seeds per method: first_seed .. first_seed + K - 1"""
    first_seed: int = 0
    """the first seed (model-lr selection uses seeds 100-102, disjoint from the reported 0..K-1)"""
    iterations: int | None = None
    """outer iterations (None: 50 for size <= 8, else 100)"""
    steps_per_iter: int | None = None
    """real steps per iteration (None: 10 for size <= 8, else 60)"""
    root: str = "runs"
    """run root: runs go to <root>/gridworld/<config-hash>/seed<k>/"""
    workers: int = 2
    """parallel worker processes"""
    figure: str | None = None
    """figure path (None: <root>/figures/gridworld_<sizes>.png)"""
    plot: bool = True
    """write the figure at the end"""
    wait: bool = False
    """wait for runs another process is working in, instead of stopping"""
    progress: bool = True
    """show a progress bar"""
    stop_after: int | None = field(default=None, metadata=bounded(1))
    """stop each run after this many iterations (a rerun resumes it); for tests and staged work"""
    run: Annotated[RunFlags, tyro.conf.OmitArgPrefixes] = field(default_factory=RunFlags)

    def __post_init__(self):
        check_fields(self)


def run(o: Args) -> int:
    from gridworld.report import collect, format_table, plot_returns, summarize
    from gridworld.runner import make_configs, run_all

    overrides = {k: v for k, v in vars(o.run).items() if k not in suppressed(RunFlags)}  # each run sets those
    cfgs = make_configs(o.size, o.methods, o.seeds, o.iterations, o.steps_per_iter, o.first_seed, **overrides)
    root = check_output_dir(o.root)
    figure = Path(o.figure) if o.figure else default_figure(root, "gridworld", o.size)
    if o.plot:
        check_figure_path(figure)
    for c in {c.size: c for c in cfgs}.values():
        check_memory(c.memory_bytes(), min(o.workers, len(cfgs)), f"--size {c.size}")
    t0 = time.perf_counter()
    paths = run_all(cfgs, root, workers=o.workers, stop_after=o.stop_after, progress=o.progress, wait=o.wait)
    wall = time.perf_counter() - t0
    runs = collect(root, paths)
    print(format_table(summarize(runs)))
    print(f"{len(cfgs)} run(s) in {wall:.0f} s; logs under {root / 'gridworld'}/")
    if o.plot and runs:
        print(f"figure: {plot_returns(runs, figure)}")
    return 0
