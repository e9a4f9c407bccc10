"""``modeladv train``: one deep run of Algorithm 2 (value-aware MBRL with TRPO)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from deep.config import ENV_NAMES, METHOD_NAMES, RunConfig
from lab.config import bounded, check_fields
from lab.guards import check_memory, check_output_dir

from .cli import config_of

__all__ = ["Args", "RunFlags", "run", "import_torch"]


@dataclass(frozen=True)
class RunFlags(RunConfig):
    """the run's config (deep.config.RunConfig, checked when the command makes it)"""

    env: Literal[ENV_NAMES] = "pendulum"
    method: Literal[METHOD_NAMES] = "ma_l1"

    def __post_init__(self):
        pass


@dataclass(frozen=True)
class Args:
    """One deep run of Algorithm 2 (value-aware MBRL with TRPO); alpha/lambda default to the paper's Table 1.

    For example:

        modeladv train --env pendulum --method ma_l1 --steps 200000 --seed 0

    Writes <root>/deep/<config-hash>/seed<k>/; rerunning resumes it, or extends it to a larger --steps.
    """

    root: str = "runs"
    """run root: the run goes to <root>/deep/<config-hash>/seed<k>/"""
    threads: int = field(default=1, metadata=bounded(1))
    """torch CPU threads"""
    progress: bool = True
    """show a progress bar"""
    wait: bool = False
    """wait for another process working in the same run, instead of stopping"""
    run: Annotated[RunFlags, tyro.conf.OmitArgPrefixes] = field(default_factory=RunFlags)

    def __post_init__(self):
        check_fields(self)


def import_torch(command: str):
    try:
        import torch
    except ImportError:
        raise ValueError(f"modeladv {command} needs torch; install the deep extra: pip install -e '.[deep]'") from None
    return torch


def _summary(path: Path, wall: float) -> str:
    from lab.rundir import read_metrics

    m = read_metrics(path)
    steps = int(m["step"][-1]) if len(m.get("step", ())) else 0
    ret = float(m["return"][-1]) if steps else float("nan")
    return f"final return {ret:.1f} after {steps} real steps; {wall:.1f} s in this call; run directory {path}"


def run(o: Args) -> int:
    cfg = config_of(o.run, RunConfig)  # validated before torch is imported
    root = check_output_dir(o.root)
    check_memory(cfg.memory_bytes(), 1, f"--steps {cfg.steps}")
    torch = import_torch("train")

    import deep
    from deep.algorithm import resolve_device
    from deep.config import run_dir

    resolve_device(cfg.device)  # an unusable device is refused before the run directory is made
    torch.set_num_threads(o.threads)
    t0 = time.perf_counter()
    before = run_dir(root, cfg).done_position()
    path = deep.run(cfg, root, progress=o.progress, wait=o.wait)
    note = " (already finished: nothing to do)" if before is not None and before >= cfg.steps else ""
    print(f"{cfg.env} {cfg.method} seed {cfg.seed}: {_summary(path, time.perf_counter() - t0)}{note}")
    return 0
