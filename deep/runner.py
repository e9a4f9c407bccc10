"""The deep experiment's two entry points, shaped like :mod:`gridworld`'s: :func:`train` yields one metrics row per
iteration of Algorithm 2 in memory; :func:`run` runs (resumes, or skips when finished) one seed in a run directory
``<root>/deep/<config-hash>/seed<k>/``. Both log the same rows for the same config."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from deep.config import RunConfig

#: the evaluation's file in a run directory: one row per evaluated checkpoint
EVALUATION = "evaluation.csv"
#: evaluation seeds are EVAL_SEED + the run's seed: disjoint from every training seed we use
EVAL_SEED = 1_000_000
_EVAL_COLUMNS = ("step", "eval_return", "eval_episodes", "n_envs", "steps_per_env")

__all__ = ["train", "run", "evaluate_run", "record_evaluation", "drop_evaluations_after", "recorded_evaluation",
           "recorded_evaluations", "EVALUATION", "EVAL_SEED"]


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


def evaluate_run(path: str | Path, n_envs: int = 4, steps_per_env: int = 2500) -> dict:
    """Evaluate the policy in the checkpoint of the run directory ``path`` as the authors do
    (:meth:`deep.algorithm.Trainer.evaluate`: ``n_envs`` fresh environments x ``steps_per_env`` steps, the
    stochastic policy without exploration noise, seed ``EVAL_SEED`` + the run's) and record the row in
    ``path/evaluation.csv`` (``step`` is the checkpoint's). A row already there for that step and these sizes is
    returned as it is; the file is replaced atomically. ``ValueError`` naming the path when the run has no
    checkpoint or its config does not load; :class:`lab.rundir.RunLocked` when a live process holds the run
    (a run with ``evaluate_every`` writes the same file)."""
    import json

    import torch

    from deep.algorithm import Trainer
    from lab.rundir import LOGGED, RunDir

    path = Path(path)
    if not (path / "checkpoint").is_file() or not (path / "config.json").is_file():
        raise ValueError(f"{path} has no checkpoint to evaluate (checkpoints stay on the machine that ran it)")
    cfg = RunConfig.from_dict(json.loads((path / "config.json").read_text()))
    run = RunDir(path)
    run.acquire()
    try:
        rows = _read_evaluations(path)
        # the checkpoint's step without loading it (tens of MB at 200K real steps), when the record is not older
        # than the checkpoint (a crash between the two writes leaves it describing the one before)
        logged, checkpoint = path / LOGGED, path / "checkpoint"
        if logged.is_file() and logged.stat().st_mtime_ns >= checkpoint.stat().st_mtime_ns:
            try:
                step = json.loads(logged.read_text())["position"]
            except (ValueError, KeyError, TypeError):
                step = None
            if step is not None and (row := _find(rows, step, n_envs, steps_per_env)) is not None:
                return row
        torch.set_flush_denormal(True)
        try:
            trainer = Trainer(cfg)
            trainer.load(checkpoint)
            return record_evaluation(path, trainer, n_envs, steps_per_env)
        finally:
            torch.set_flush_denormal(False)
    finally:
        run.release()


def record_evaluation(path: str | Path, trainer, n_envs: int = 4, steps_per_env: int = 2500) -> dict:
    """Evaluate ``trainer``'s policy at its step (:meth:`~deep.algorithm.Trainer.evaluate`, seed ``EVAL_SEED`` +
    the run's; its training state and random streams are left as they were) and add the row to
    ``path/evaluation.csv`` (replaced atomically); a row already there for that step and these sizes is returned
    as it is. The caller holds the run's lock."""
    path = Path(path)
    rows = _read_evaluations(path)
    if (row := _find(rows, trainer.step, n_envs, steps_per_env)) is not None:
        return row
    mean, episodes = trainer.evaluate(n_envs, steps_per_env, seed=EVAL_SEED + trainer.cfg.seed)
    row = dict(zip(_EVAL_COLUMNS, (trainer.step, mean, episodes, n_envs, steps_per_env)))
    _write_evaluations(path, rows + [row])
    return row


def drop_evaluations_after(path: str | Path, step: float) -> int:
    """Remove the rows of ``path/evaluation.csv`` past ``step`` (a trajectory that a resume from the checkpoint
    at ``step``, or a restart at 0, discarded); returns how many. The caller holds the run's lock."""
    path = Path(path)
    rows = _read_evaluations(path)
    keep = [r for r in rows if r["step"] <= step]
    if len(keep) < len(rows):
        _write_evaluations(path, keep)
    return len(rows) - len(keep)


def recorded_evaluation(path: str | Path, step: float, n_envs: int = 4, steps_per_env: int = 2500) -> float | None:
    """The evaluation return recorded in the run directory ``path`` at ``step`` with these sizes, or None when
    there is none (reads the file only: no torch)."""
    return recorded_evaluations(path, n_envs, steps_per_env).get(float(step))


def recorded_evaluations(path: str | Path, n_envs: int = 4, steps_per_env: int = 2500) -> dict[float, float]:
    """``{step: evaluation return}`` of every evaluation recorded in the run directory ``path`` with these sizes
    (reads the file only: no torch)."""
    return {float(r["step"]): float(r["eval_return"]) for r in _sized(_read_evaluations(Path(path)), n_envs,
                                                                      steps_per_env)}


def _read_evaluations(path: Path) -> list[dict]:
    """The rows of ``path/evaluation.csv`` as dicts (none when there is no file); ``ValueError`` naming the file
    when a column is missing."""
    from lab.rundir import read_metrics

    if not (path / EVALUATION).exists():
        return []
    m = read_metrics(path / EVALUATION)
    if set(_EVAL_COLUMNS) - set(m):
        raise ValueError(f"{path / EVALUATION} lacks columns {sorted(set(_EVAL_COLUMNS) - set(m))}")
    return [dict(zip(_EVAL_COLUMNS, vals)) for vals in zip(*(m[c] for c in _EVAL_COLUMNS))]


def _write_evaluations(path: Path, rows: list[dict]) -> None:
    """``rows`` sorted by (step, sizes) to ``path/evaluation.csv``, atomically."""
    from lab.rundir import atomic_write_bytes

    rows = sorted(rows, key=lambda r: (r["step"], r["n_envs"], r["steps_per_env"]))
    text = ",".join(_EVAL_COLUMNS) + "\n" + "".join(
        ",".join(repr(float(r[c])) if c == "eval_return" else str(int(r[c])) for c in _EVAL_COLUMNS) + "\n"
        for r in rows)
    atomic_write_bytes(path / EVALUATION, text.encode())


def _sized(rows: list[dict], n_envs: int, steps_per_env: int) -> list[dict]:
    """The rows of ``rows`` evaluated with these sizes, in order."""
    return [r for r in rows if (r["n_envs"], r["steps_per_env"]) == (n_envs, steps_per_env)]


def _find(rows: list[dict], step, n_envs: int, steps_per_env: int) -> dict | None:
    """The row of ``rows`` at ``step`` with these sizes, or None (the last one if several)."""
    hits = [r for r in _sized(rows, n_envs, steps_per_env) if r["step"] == step]
    return hits[-1] if hits else None
