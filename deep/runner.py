"""The deep experiment's two entry points, shaped like :mod:`gridworld`'s: :func:`train` yields one metrics row per
iteration of Algorithm 2 in memory; :func:`run` runs (resumes, or skips when finished) one seed in a run directory
``<root>/deep/<config-hash>/seed<k>/``. Both log the same rows for the same config."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from deep.config import RunConfig

__all__ = ["train", "run"]


def train(cfg: RunConfig, stop_after: int | None = None) -> Iterator[dict]:
    """Algorithm 2 for ``cfg`` in memory, yielding each iteration's metrics row until ``cfg.steps`` real steps
    (``stop_after``: at most this many iterations). No file is written.

    Like :func:`run`, denormal floats flush to zero while the generator is running (tiny Table 1 alphas drive the
    model's weights subnormal; the logged numbers depend on it); the setting is restored when it is closed.
    """
    import torch

    from deep.algorithm import Trainer

    torch.set_flush_denormal(True)
    try:
        trainer = Trainer(cfg)
        n = 0
        while trainer.position < cfg.steps and (stop_after is None or n < stop_after):
            yield trainer.iterate()
            n += 1
    finally:
        torch.set_flush_denormal(False)


def run(cfg: RunConfig, root: str | Path = "runs", stop_after: int | None = None, progress: bool = False,
        wait: bool = False) -> Path:
    """Run (or resume, or extend to a larger ``cfg.steps``, or skip when finished) one seed under ``root``; returns
    its run directory. ``stop_after`` caps the iterations done by this call (checkpointed); ``wait``: wait for
    another process working in the same run instead of failing."""
    from deep.algorithm import train_run

    return train_run(cfg, root=root, progress=progress, max_iterations=stop_after, wait=wait)
