"""Run directories, config hashing, metrics logs and resume markers, shared by every experiment.

Layout: ``<root>/<experiment>/<config-hash>/seed<k>/`` holding ``config.json``, ``metrics.csv``, any
checkpoints, and a ``DONE`` marker written last. A run whose ``DONE`` exists is skipped on rerun; a run
without it resumes from its checkpoint (the experiment decides how) and appends to its metrics.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = [
    "config_hash",
    "run_dir",
    "write_config",
    "MetricsWriter",
    "read_metrics",
    "is_done",
    "mark_done",
    "find_runs",
    "atomic_write_bytes",
]


def _as_dict(cfg: Any) -> dict:
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ValueError(f"config must be a dataclass instance or a mapping; got {type(cfg).__name__}")


def config_hash(cfg: Any, exclude: Iterable[str] = ("seed",)) -> str:
    """Stable 10-hex-digit hash of a config (dataclass or mapping), ignoring the fields in ``exclude``."""
    d = {k: v for k, v in _as_dict(cfg).items() if k not in set(exclude)}
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def run_dir(root: str | os.PathLike, experiment: str, cfg: Any, seed: int) -> Path:
    """``<root>/<experiment>/<config-hash>/seed<seed>``; not created here."""
    return Path(root) / experiment / config_hash(cfg) / f"seed{int(seed)}"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_config(path: str | os.PathLike, cfg: Any) -> None:
    """Write ``config.json`` in ``path`` (a run directory)."""
    atomic_write_bytes(Path(path) / "config.json", json.dumps(_as_dict(cfg), indent=2, sort_keys=True, default=str).encode())


class MetricsWriter:
    """Append rows to a CSV; the header is written once, and reopening on resume keeps earlier rows.

    Rows after ``truncate_after`` (a value of the first column, e.g. the step of the checkpoint being
    resumed) are dropped on open, so a resumed run never logs a step twice.
    """

    def __init__(self, path: str | os.PathLike, truncate_after: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                self._fields = rows[0]
                body = rows[1:]
                if truncate_after is not None:
                    body = [r for r in body if r and float(r[0]) <= truncate_after]
                with open(self.path, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(self._fields)
                    w.writerows(body)

    def write(self, row: Mapping[str, Any]) -> None:
        if self._fields is None:
            self._fields = list(row)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self._fields)
        elif list(row) != self._fields:
            raise ValueError(f"metrics row keys {list(row)} differ from the header {self._fields}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_fmt(row[k]) for k in self._fields])


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a metrics CSV (the file or its run directory) into column arrays (float where possible)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.exists():
        raise ValueError(f"no metrics file at {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        col = [r[j] for r in body if len(r) == len(header)]
        try:
            out[name] = np.array(col, dtype=np.float64)
        except ValueError:
            out[name] = np.array(col)
    return out


def is_done(path: str | os.PathLike) -> bool:
    return (Path(path) / "DONE").exists()


def mark_done(path: str | os.PathLike) -> None:
    atomic_write_bytes(Path(path) / "DONE", b"")


def find_runs(root: str | os.PathLike, experiment: str | None = None) -> list[tuple[dict, Path]]:
    """All run directories (with ``config.json``) under ``root`` (optionally one experiment): (config, path)."""
    root = Path(root)
    base = root / experiment if experiment else root
    found = []
    for cfg_path in sorted(base.rglob("config.json")):
        with open(cfg_path) as f:
            found.append((json.load(f), cfg_path.parent))
    return found
