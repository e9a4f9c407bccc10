"""Run directories: one class that owns a run's config, metrics log, checkpoint, lock and DONE record.

Layout: ``<root>/<experiment>/<config-hash>/seed<k>/`` holding

* ``config.json`` -- the run's config, written once (a rerun with another config is refused);
* ``metrics.csv`` -- one row per logged iteration, appended whole and flushed row by row; its first column is
  the run's *position* (an iteration or a step count);
* ``checkpoint`` -- whatever the experiment needs to resume exactly, written atomically, and ``checkpoint.rows``
  -- how many rows the log held up to it (a log that lost rows is refused, never silently continued);
* ``lock`` -- held (``flock``) by the process working in the run, with its PID inside;
* ``DONE`` -- a JSON record of the finished log (position, rows, SHA-256), written last;
* ``extending.json`` -- while a finished run without checkpoint is rerun from the start to a longer target, the
  files it had, against which each new row is checked until the rerun passes the old log's end (restored, and
  the rerun refused, at the first row that differs: the code or the platform changed since it was logged).

:func:`execute` is the one protocol every experiment follows: lock, skip a verified finished run, resume from the
checkpoint (dropping logged rows past it, torn ones included), iterate, checkpoint, mark DONE.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

import numpy as np

__all__ = [
    "run_dir",
    "RunError",
    "RunLocked",
    "CorruptRun",
    "RunDir",
    "Trainer",
    "execute",
    "config_hash",
    "as_dict",
    "atomic_write_bytes",
    "read_metrics",
    "find_runs",
]

CONFIG, METRICS, CHECKPOINT, LOCK, DONE = "config.json", "metrics.csv", "checkpoint", "lock", "DONE"
LOGGED, EXTENDING = "checkpoint.rows", "extending.json"


class RunError(ValueError):
    """A run directory cannot be used as asked; the message names the file and what to do."""


class RunLocked(RunError):
    """Another live process holds the run's lock."""


class CorruptRun(RunError):
    """A file of the run cannot be read or does not agree with the others."""


def as_dict(cfg: Any) -> dict:
    """A config (dataclass instance or mapping) as a plain dict."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ValueError(f"config must be a dataclass instance or a mapping; got {type(cfg).__name__}")


def _canonical(d: Mapping) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def config_hash(cfg: Any, exclude: Iterable[str] = ("seed",)) -> str:
    """Stable 10-hex-digit hash of a config (dataclass or mapping), ignoring the fields in ``exclude``."""
    skip = set(exclude)
    return hashlib.sha256(_canonical({k: v for k, v in as_dict(cfg).items() if k not in skip}).encode()).hexdigest()[:10]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file, fsync and rename: an interrupted write never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _parse_csv(text: str) -> tuple[list[str], list[list[str]], int]:
    """``(header, whole rows, characters of the header and whole rows)``: a last line without a newline or with
    the wrong number of fields is a torn row (the process died while writing it) and is left out."""
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].endswith("\n"):
        return [], [], 0
    header = next(csv.reader([lines[0]]))
    rows, good = [], len(lines[0])
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        if not line.endswith("\n") or len(fields) != len(header):
            break
        rows.append(fields)
        good += len(line)
    return header, rows, good


def _read_log(path: Path) -> str:
    """A CSV log's text; bytes that are not UTF-8 are a :class:`CorruptRun` naming the file."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptRun(f"{path} is not a text log (byte {e.start} is not UTF-8); delete the run directory "
                         f"{path.parent} to restart it") from None


def _non_numeric(header: list[str], rows: list[list[str]]) -> tuple[str, str] | None:
    """The first ``(column, value)`` of a metrics log that is not a number, or ``None``."""
    for row in rows:
        for name, value in zip(header, row):
            try:
                float(value)
            except ValueError:
                return name, value
    return None


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a metrics CSV (the file or its run directory) into float column arrays; a torn last row is skipped.
    A value that is not a number, or bytes that are not text, are a :class:`CorruptRun` naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    if not path.exists():
        raise ValueError(f"no metrics file at {path}")
    header, rows, _ = _parse_csv(_read_log(path))
    bad = _non_numeric(header, rows)
    if bad is not None:
        raise CorruptRun(f"{path} has a non-numeric value {bad[1]!r} in column {bad[0]!r}")
    return {name: np.array([r[j] for r in rows], dtype=np.float64) for j, name in enumerate(header)}


def find_runs(root: str | os.PathLike, experiment: str | None = None) -> list[tuple[dict, Path]]:
    """All run directories (with a readable ``config.json``) under ``root`` (optionally one experiment)."""
    base = Path(root) / experiment if experiment else Path(root)
    found = []
    for cfg_path in sorted(base.rglob(CONFIG)):
        try:
            found.append((json.loads(cfg_path.read_text()), cfg_path.parent))
        except (OSError, ValueError):
            continue  # a corrupt run is reported when it is resumed, not when others are plotted
    return found


class _Metrics:
    """Appends whole rows to ``metrics.csv``, each flushed and fsynced before the next iteration starts."""

    def __init__(self, path: Path, fields: list[str] | None, rows: int = 0):
        self.path, self.fields, self.rows = path, fields, rows

    def write(self, row: Mapping[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._append(self.fields)
        elif list(row) != self.fields:
            raise ValueError(f"metrics row keys {list(row)} differ from the header {self.fields}")
        self._append([_fmt(row[k]) for k in self.fields])
        self.rows += 1

    def _append(self, values: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        with open(self.path, "a", newline="") as f:  # one write call per row
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())


class RunDir:
    """One run directory. Nothing is written until :meth:`lock` or a write method is called.

    Args:
        path: the directory (``<root>/<experiment>/<hash>/seed<k>``, see :meth:`for_config`).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None

    @classmethod
    def for_config(cls, root: str | os.PathLike, experiment: str, identity: Mapping[str, Any], seed: int) -> "RunDir":
        """``<root>/<experiment>/<hash of identity>/seed<seed>`` (``identity``: the config fields that make
        two runs the same run; the seed is its own level)."""
        return cls(Path(root) / experiment / config_hash(identity, exclude=("seed",)) / f"seed{int(seed)}")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # ---- lock ---------------------------------------------------------------------------------------
    def holder(self) -> int | None:
        """PID written in the lock file by its last holder, if any (it may no longer hold it)."""
        try:
            text = self.file(LOCK).read_text().strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None

    def acquire(self, wait: bool = False, poll: float = 0.2) -> None:
        """Take the run's lock (``flock``, released by the kernel when the process dies). Raises
        :class:`RunLocked` naming the holder's PID unless ``wait``; then blocks until it is free."""
        if self._lock_fd is not None:
            return
        lock = self.file(LOCK)
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not wait:
                    os.close(fd)
                    pid = self.holder()
                    raise RunLocked(f"run {self.path} is in use by process {pid if pid else '(unknown)'}; "
                                    "wait for it, or pass --wait") from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def lock(self, wait: bool = False) -> Iterator["RunDir"]:
        self.acquire(wait)
        try:
            yield self
        finally:
            self.release()

    # ---- config -------------------------------------------------------------------------------------
    def read_config(self) -> dict | None:
        p = self.file(CONFIG)
        if not p.exists():
            return None
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            return d
        except (OSError, ValueError) as e:
            raise CorruptRun(f"{p} is unreadable ({e}); delete the run directory {self.path} to restart it") from None

    def write_config(self, cfg: Any, identity: Callable[[dict], dict] | None = None) -> None:
        """Write ``config.json``; an existing one must describe the same run (``identity`` picks the fields that
        must agree: default all)."""
        new = as_dict(cfg)
        old = self.read_config()
        if old is not None:
            pick = identity or (lambda d: d)
            a, b = pick(old), pick(new)
            diff = sorted(k for k in set(a) | set(b) if _canonical({k: a.get(k)}) != _canonical({k: b.get(k)}))
            if diff:
                raise CorruptRun(f"{self.file(CONFIG)} describes another run (differs in {', '.join(diff)}); "
                                 f"delete the run directory {self.path} to restart it")
        atomic_write_bytes(self.file(CONFIG), json.dumps(new, indent=2, sort_keys=True, default=str).encode())

    # ---- metrics ------------------------------------------------------------------------------------
    def metrics_rows(self) -> tuple[list[str], list[list[str]]]:
        p = self.file(METRICS)
        if not p.exists():
            return [], []
        header, rows, _ = _parse_csv(_read_log(p))
        return header, rows

    def open_metrics(self, keep_through: float | None) -> _Metrics:
        """The metrics log, ready to append. Rows whose position (first column) exceeds ``keep_through`` -- those
        logged after the checkpoint being resumed -- and a torn last row are dropped (``None``: drop all)."""
        p = self.file(METRICS)
        if keep_through is None:
            p.unlink(missing_ok=True)
            return _Metrics(p, None)
        text = _read_log(p) if p.exists() else ""
        header, rows, whole = _parse_csv(text)
        if not header or not rows:
            # the checkpoint is past rows the log no longer holds: resuming would finish a run with a partial history
            state = "missing" if not p.exists() else "empty"
            raise CorruptRun(f"{p} is {state} but the run's checkpoint is at position {keep_through:g}: its history "
                             f"is lost; restore the file, or delete the run directory {self.path} to restart it")
        bad = _non_numeric(header, rows)
        if bad is not None:
            raise CorruptRun(f"{p} has a non-numeric value {bad[1]!r} in column {bad[0]!r}; delete the run "
                             f"directory {self.path} to restart it")
        kept = [r for r in rows if float(r[0]) <= keep_through]
        if not kept or float(kept[-1][0]) != keep_through:
            end = f"ends at position {float(kept[-1][0]):g}" if kept else f"starts after position {keep_through:g}"
            raise CorruptRun(f"{p} {end} but the checkpoint is at {keep_through:g}; "
                             f"delete the run directory {self.path} to restart it")
        logged = self._logged()
        have = None if logged is None else sum(float(r[0]) <= logged[0] for r in kept)
        if logged is not None and have != logged[1]:
            raise CorruptRun(f"{p} holds {have} rows up to position {logged[0]:g} where the run logged "
                             f"{logged[1]}: its history is incomplete; restore the file, or delete the run "
                             f"directory {self.path} to restart it")
        if len(kept) != len(rows) or whole != len(text):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([header, *kept])
            atomic_write_bytes(p, buf.getvalue().encode())
        return _Metrics(p, header, len(kept))

    # ---- checkpoint ---------------------------------------------------------------------------------
    def save_checkpoint(self, data: bytes, position: float | None = None, rows: int | None = None) -> None:
        """Write the checkpoint; with ``position`` and ``rows``, then record how many rows the log holds up to
        it, so that a log that lost rows is refused on resume (written second: after a crash between the two
        writes the record describes an earlier checkpoint, which the log still matches)."""
        atomic_write_bytes(self.file(CHECKPOINT), data)
        if position is not None and rows is not None:
            atomic_write_bytes(self.file(LOGGED), json.dumps({"position": position, "rows": rows}).encode())

    def _logged(self) -> tuple[float, int] | None:
        """``(position, rows)`` recorded with the latest checkpoint, or ``None`` (a run of an earlier release)."""
        p = self.file(LOGGED)
        if not p.exists():
            return None
        try:
            rec = json.loads(p.read_text())
            return float(rec["position"]), int(rec["rows"])
        except (OSError, ValueError, KeyError, TypeError):
            raise CorruptRun(f"{p} is unreadable; delete the run directory {self.path} to restart it") from None

    def load_checkpoint(self, loads: Callable[[bytes], Any]) -> Any:
        """``loads(bytes)`` of the checkpoint, or ``None`` when there is none; any failure to read or decode it is
        a :class:`CorruptRun` naming the file."""
        p = self.file(CHECKPOINT)
        if not p.exists():
            return None
        try:
            return loads(p.read_bytes())
        except RunError:
            raise
        except Exception as e:  # whatever the decoder raises for a truncated or foreign file
            first = (str(e).strip().splitlines() or [""])[0][:120]
            raise CorruptRun(f"{p} is unreadable ({type(e).__name__}: {first}); delete the run directory "
                             f"{self.path} to restart it") from None

    def drop_checkpoint(self) -> None:
        self.file(CHECKPOINT).unlink(missing_ok=True)
        self.file(LOGGED).unlink(missing_ok=True)

    # ---- extending a finished run from the start -----------------------------------------------------
    def keep_previous(self) -> None:
        """Save every file of the finished run (not its lock or checkpoint) in ``extending.json`` before a rerun
        from the start overwrites them."""
        if self.file(EXTENDING).exists():  # a save of an earlier attempt holds the finished run; keep it
            return
        skip = {LOCK, CHECKPOINT, LOGGED}
        files = {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(self.path.iterdir())
                 if p.is_file() and p.name not in skip and not p.name.startswith(".")}
        atomic_write_bytes(self.file(EXTENDING), json.dumps({"files": files}).encode())

    def previous(self) -> dict[str, bytes] | None:
        """The files :meth:`keep_previous` saved, or ``None``."""
        p = self.file(EXTENDING)
        if not p.exists():
            return None
        try:
            return {name: base64.b64decode(data) for name, data in json.loads(p.read_text())["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise CorruptRun(f"{p} is unreadable; it holds the finished run this one extends: restore it, or "
                             f"delete the run directory {self.path} to restart it") from None

    def restore_previous(self) -> None:
        """Put back the files :meth:`keep_previous` saved, drop whatever the rerun wrote, and forget the save."""
        saved = self.previous()
        if saved is None:
            return
        for p in self.path.iterdir():
            if p.is_file() and p.name not in saved and p.name not in (LOCK, EXTENDING):
                p.unlink()
        for name in sorted(saved, key=lambda n: n == DONE):  # DONE last: it vouches for the files before it
            atomic_write_bytes(self.file(name), saved[name])
        self.file(EXTENDING).unlink(missing_ok=True)

    def forget_previous(self) -> None:
        self.file(EXTENDING).unlink(missing_ok=True)

    # ---- DONE ---------------------------------------------------------------------------------------
    def _digest(self) -> tuple[int, str, float | None]:
        p = self.file(METRICS)
        data = p.read_bytes() if p.exists() else b""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptRun(f"{p} is not a text log; delete the run directory {self.path} to rerun it") from None
        header, rows, _ = _parse_csv(text)
        last = float(rows[-1][0]) if rows else None
        return len(rows), hashlib.sha256(data).hexdigest(), last

    def mark_done(self, position: float) -> None:
        rows, sha, _ = self._digest()
        record = {"position": position, "rows": rows, "metrics_sha256": sha}
        atomic_write_bytes(self.file(DONE), json.dumps(record).encode())

    def clear_done(self) -> None:
        self.file(DONE).unlink(missing_ok=True)

    def done_position(self) -> float | None:
        """The position a finished run reached, after checking its DONE record against ``metrics.csv``; ``None``
        when the run is not finished. A record that does not match the log raises :class:`CorruptRun`."""
        p = self.file(DONE)
        if not p.exists():
            return None
        rows, sha, last = self._digest()
        text = p.read_text().strip()
        if not text:  # a DONE marker of an older release: only the log's last position can be checked
            if last is None:
                raise CorruptRun(f"{p} marks a run with no metrics as finished; delete the run directory "
                                 f"{self.path} to restart it")
            return last
        try:
            rec = json.loads(text)
            position, want_rows, want_sha = float(rec["position"]), int(rec["rows"]), rec["metrics_sha256"]
        except (ValueError, KeyError, TypeError):
            raise CorruptRun(f"{p} is unreadable; delete the run directory {self.path} to restart it") from None
        if rows != want_rows or sha != want_sha or last != position:
            raise CorruptRun(f"{self.path / METRICS} does not match the run's DONE record ({rows} rows ending at "
                             f"{last}, recorded {want_rows} ending at {position:g}); delete the run directory "
                             f"{self.path} to rerun it")
        return position

    def is_done(self) -> bool:
        return self.done_position() is not None


class _Replay:
    """Checks the rows of a run rerun from the start against the log it had (:meth:`RunDir.keep_previous`), up to
    that log's end; a row that differs puts the old files back and raises :class:`CorruptRun`."""

    def __init__(self, run: RunDir, volatile: Iterable[str]):
        self.run, self.volatile = run, set(volatile)
        saved = run.previous()
        header, rows, _ = _parse_csv(saved.get(METRICS, b"").decode("utf-8", "replace")) if saved else ([], [], 0)
        self.rows = {float(r[0]): dict(zip(header, r)) for r in rows}
        self.end = max(self.rows) if self.rows else None

    def check(self, row: Mapping[str, Any]) -> None:
        if self.end is None:
            return
        values = {k: _fmt(v) for k, v in row.items()}
        position = float(next(iter(values.values())))
        if position > self.end:
            return
        old = self.rows.get(position)
        gone = None if old is None else next((k for k in old if k not in values and k not in self.volatile), None)
        if old is None:
            found = f"a row at position {position:g}, where its log has none"
        elif gone is not None:
            found = f"no column {gone} at position {position:g}, where its log has {old[gone]}"
        else:
            diff = next(((k, old[k], values[k]) for k in values
                         if k in old and k not in self.volatile and not _same(old[k], values[k])), None)
            if diff is None:
                return
            found = f"{diff[0]} = {diff[2]} at position {position:g}, where its log has {diff[1]}"
        self.run.restore_previous()
        self.end = None
        raise CorruptRun(f"{self.run.path}: rerun from the start to be extended, it logs {found}: the code or the "
                         "platform changed since it was logged. Its files are put back; extend it under another root")

    def settle(self, position: float) -> None:
        """A checkpoint at ``position``: once past the old log's end every row agreed, the saved files go."""
        if self.end is not None and position >= self.end:
            self.run.forget_previous()
            self.end = None


def _same(a: str, b: str) -> bool:
    """Two logged values agree: equal text, or floats within 1e-9 relative (another BLAS may move the last bits;
    a changed computation moves far more), NaN matching NaN."""
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return bool(np.isclose(x, y, rtol=1e-9, atol=0.0, equal_nan=True))


class Trainer(Protocol):
    """What :func:`execute` drives: an experiment's state and one iteration of its loop."""

    #: position reached so far (the first metrics column): an iteration or a step count
    position: float

    def iterate(self) -> dict:
        """Advance one iteration; the metrics row (first key: the position)."""

    def dumps(self) -> bytes:
        """Everything an exact resume needs."""

    def loads(self, data: bytes) -> None:
        """Restore :meth:`dumps`; raise on anything that does not belong to this run."""


def run_dir(root: str | os.PathLike, experiment: str, cfg: Any) -> RunDir:
    """``<root>/<experiment>/<hash of cfg.identity()>/seed<cfg.seed>``: the run directory of an experiment's
    config (``identity()``: the fields that make two runs the same run; the seed is its own level)."""
    return RunDir.for_config(root, experiment, cfg.identity(), cfg.seed)


def execute(run: RunDir, config: Any, make_trainer: Callable[[], Trainer], target: float, *,
            identity: Callable[[dict], dict] | None = None, first_row: Callable[[Trainer], dict | None] | None = None,
            checkpoint_every: int = 1, max_iterations: int | None = None, keep_checkpoint: bool = True,
            finalize: Callable[[Trainer, RunDir], None] | None = None, wait: bool = False, locked: bool = False,
            on_row: Callable[[dict], None] | None = None,
            after_iteration: Callable[[Trainer, RunDir], None] | None = None,
            volatile: Iterable[str] = ("wall_s",)) -> RunDir:
    """Run (resume, or skip when finished) one run until its position reaches ``target``.

    Args:
        run: the run directory.
        config: the run's config, written to ``config.json`` (``identity`` picks the fields an existing one must
            share: a longer step budget may resume a shorter finished run).
        make_trainer: builds a fresh trainer (its state is then replaced by the checkpoint, if any).
        target: the final position.
        first_row: a row to log before the first iteration of a fresh run (e.g. the untrained policy).
        checkpoint_every: iterations between checkpoints (one always at the end).
        max_iterations: stop after this many iterations in this call (checkpointed); for tests and staged runs.
        keep_checkpoint: keep the checkpoint once finished (so the run can later be extended).
        finalize: writes extra files of a finished run before DONE.
        wait: wait for another process's lock instead of failing.
        locked: the caller already holds the lock (a parent process that locked all its runs).
        on_row: called with each logged row (progress display).
        after_iteration: called with the trainer and the run once before the first iteration of this call (the
            fresh trainer, or the state resumed from) and after each iteration (its row logged, its checkpoint
            saved when one is due). A side record kept per iteration (e.g. an evaluation) can so drop what lies
            beyond the state it is given (a trajectory the resume discarded) and make good a record a kill
            between checkpoint and record left out. It must not change the trainer's state.
        volatile: metrics columns that measure the machine, not the run (wall time): left out when a finished run
            without checkpoint is rerun from the start to a longer ``target`` and each new row is checked against
            its log. At the first row that differs the run's files are put back and :class:`CorruptRun` is raised
            (the code or the platform changed since the log was written: extend it under another root).
    """
    if not locked:
        run.acquire(wait)
    try:
        replay = _Replay(run, volatile)
        if replay.end is not None and (run.file(DONE).exists() or replay.end >= target):
            # a rerun stopped before it cleared DONE or while its files were put back, or one that a target the
            # saved finished run already reaches makes moot: the saved run is the run (and has no checkpoint, so
            # unless it reaches the target it is saved again below)
            run.restore_previous()
        reached = run.done_position()
        if reached is not None and reached >= target:
            return run
        _, rows = run.metrics_rows()
        if reached is None and rows and float(rows[-1][0]) > target:
            return run  # already past this target on its way to a longer one (a staged sweep's later stage)
        if reached is not None and not run.file(CHECKPOINT).exists():
            run.keep_previous()  # committed logs carry no checkpoint: the rerun must log the same rows again
            warnings.warn(f"{run.path} has no checkpoint to extend from {reached:g} to {target:g}: rerunning it "
                          "from the start, each row checked against its log", RuntimeWarning, stacklevel=2)
            replay = _Replay(run, volatile)
        run.write_config(config, identity)
        trainer = make_trainer()
        resumed = run.load_checkpoint(lambda b: trainer.loads(b) or True)
        run.clear_done()
        metrics = run.open_metrics(trainer.position if resumed else None)
        if after_iteration is not None:
            after_iteration(trainer, run)
        if not resumed and first_row is not None:
            row = first_row(trainer)
            if row is not None:
                replay.check(row)
                metrics.write(row)
        n = 0
        while trainer.position < target:
            row = trainer.iterate()
            replay.check(row)
            metrics.write(row)
            if on_row is not None:
                on_row(row)
            n += 1
            last = trainer.position >= target
            if last or n % checkpoint_every == 0 or (max_iterations is not None and n >= max_iterations):
                run.save_checkpoint(trainer.dumps(), trainer.position, metrics.rows)
                replay.settle(trainer.position)
            if after_iteration is not None:
                after_iteration(trainer, run)
            if max_iterations is not None and n >= max_iterations and not last:
                return run
        if finalize is not None:
            finalize(trainer, run)
        replay.settle(trainer.position)  # a resume at the final checkpoint skips the loop
        run.mark_done(trainer.position)
        if not keep_checkpoint:
            run.drop_checkpoint()
        return run
    finally:
        if not locked:
            run.release()
