"""``modeladv sweep``: many deep runs as Ray Tune trials, one step budget (stage) at a time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro
from tyro.conf import Suppress

from deep.config import ENV_NAMES, METHOD_NAMES, RunConfig
from deep.protocol import CELLS
from lab.config import bounded, check_fields
from lab.guards import check_memory, check_output_dir

from .commands import default_figure, suppressed

__all__ = ["Args", "RunFlags", "run"]


@dataclass(frozen=True)
class RunFlags(RunConfig):
    """settings every run of the sweep shares (each run's deep.config.RunConfig is checked when the sweep plans
    it; alpha and lambda come from Table 1, the alpha grid or --alpha-from)"""

    env: Suppress[str] = "pendulum"
    method: Suppress[str] = "ma_l1"
    seed: Suppress[int] = 0
    steps: Suppress[int] = 200_000
    alpha: Suppress[float | None] = None
    lam: Suppress[float | None] = None

    def __post_init__(self):
        pass


@dataclass(frozen=True)
class Args:
    """Many deep runs as Ray Tune trials, finished ones skipped, one step budget (stage) at a time.

    For example:

        modeladv sweep --envs pendulum-mbbl cartpole-mbbl acrobot-mbbl --seeds 5 --stages 50000 200000 --cpus 2
        modeladv sweep --envs pendulum-mbbl --methods ma_l1 ma_vaml --alpha-sweep --steps 50000   # Appendix C
        modeladv sweep --address head-node:6379 ...                                 # on an existing Ray cluster
        modeladv sweep --envs hopper-slbo --methods mle ma_l1 --cells ours rollouts authors --steps 100000  # ablation

    Trials run through Ray Tune (the sweep extra); a killed sweep rerun skips finished runs and resumes the rest.
    """

    envs: tuple[Literal[ENV_NAMES], ...] = ("pendulum-mbbl", "cartpole-mbbl", "acrobot-mbbl")
    """environments (default: the paper's classic-control tasks)"""
    methods: tuple[Literal[METHOD_NAMES], ...] = METHOD_NAMES
    """model objectives"""
    seeds: int = 3
    """seeds per (env, method): first_seed .. first_seed + K - 1"""
    first_seed: int = 0
    """the first seed (a selection sweep takes seeds disjoint from the reported runs', e.g. 100)"""
    steps: int = 200_000
    """real steps of every run"""
    stages: tuple[int, ...] = ()
    """step budgets run in turn over the whole grid (runs resume from their checkpoints); empty: just --steps"""
    alpha_sweep: bool = False
    """Appendix C: 9 log-spaced alphas per value-aware method, times the seeds"""
    alpha_from: str | None = None
    """run root of an alpha sweep: its selected alpha (highest mean final return) replaces Table 1's for the
    (env, method) pairs it swept"""
    cells: tuple[Literal[CELLS], ...] = ()
    """ablation cells (deep.protocol): ours, one divergence from the authors' loop switched on (rollouts,
    reward_term, exploration, update_ratio, small), or authors (all of them); each (env, method, seed) runs in
    every cell that changes its config. Empty: the run options as given"""
    root: str = "runs"
    """run root"""
    cpus: int | None = field(default=None, metadata=bounded(1))
    """CPUs of the local Ray started for the sweep, one trial each (None: all of this machine's)"""
    address: str | None = None
    """an existing Ray cluster (host:port or ray://host:port) instead of a local Ray"""
    wait: bool = False
    """wait for runs another process is working in, instead of stopping"""
    dry_run: bool = False
    """print the runs only"""
    run: Annotated[RunFlags, tyro.conf.OmitArgPrefixes] = field(default_factory=RunFlags)

    def __post_init__(self):
        check_fields(self)


def run(o: Args) -> int:
    from deep.sweep import plan, run_plan

    from .plot import report_alpha_sweep
    from .train import import_torch

    over = {k: v for k, v in vars(o.run).items() if k not in suppressed(RunFlags)}  # each run sets those
    alphas = None
    if o.alpha_from:
        from deep.plot import alpha_table

        if not Path(o.alpha_from).is_dir():
            raise ValueError(f"--alpha-from {o.alpha_from} does not exist")
        alphas = {(r["env"], r["method"]): r["alpha"] for r in alpha_table(o.alpha_from) if r["selected"]}
        if not alphas:
            raise ValueError(f"--alpha-from {o.alpha_from} holds no alpha-sweep runs")
        print("alpha from the sweep: " + ", ".join(f"{e} {m} {a:g}" for (e, m), a in sorted(alphas.items())))
    cfgs = plan(o.envs, o.methods, o.seeds, o.stages or (o.steps,), o.alpha_sweep, o.first_seed, alphas, o.cells,
                **over)
    if o.dry_run:
        from deep.ablation import cell_of

        for c in cfgs:
            cell = f" cell {cell_of(c)}" if o.cells else ""
            print(f"{c.env} {c.method} seed {c.seed} steps {c.steps} alpha {c.alpha:g} lam {c.lam:g}{cell}")
        return 0
    root = check_output_dir(o.root)
    check_memory(max(c.memory_bytes() for c in cfgs), o.cpus or os.cpu_count() or 1, "the sweep's largest run")
    import_torch("sweep")
    from deep.algorithm import resolve_device

    for device in sorted({c.device for c in cfgs}):
        resolve_device(device)  # refused here, not in every trial
    run_plan(cfgs, root, o.cpus, o.address, o.wait)
    if o.alpha_sweep:
        report_alpha_sweep(root, default_figure(root, "alpha_sweep"))
    return 0
