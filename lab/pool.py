"""Worker processes that never outlive the command that started them, and signals turned into one exception.

* :func:`interruptible`: inside it, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, so the
  command line can print one line and exit 130 (or 143) instead of a traceback.
* :class:`WorkerPool`: ``spawn``-ed workers that ignore SIGINT (the parent decides), die with their parent
  (``PR_SET_PDEATHSIG`` on Linux, and a watchdog thread everywhere), and are terminated -- then killed -- when
  the pool is left, however it is left. Runs write through :mod:`lab.rundir`, so a worker killed
  mid-iteration leaves a run that resumes exactly.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import wait as wait_any
from typing import Any, Callable, Iterator, Sequence

from .config import check_int

__all__ = ["Interrupted", "interruptible", "WorkerPool", "INTERRUPTED_MESSAGE"]

INTERRUPTED_MESSAGE = "interrupted; rerun the same command to resume"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``exit_code`` is 128 + the signal number. A ``BaseException``, like
    ``KeyboardInterrupt``, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + int(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` while inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(conn, parent: int, env: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    os.environ.update(env)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args = job
        try:
            conn.send(("ok", fn(*args)))
        except ValueError as e:
            conn.send(("value", str(e)))
        except BaseException:  # noqa: BLE001 - reported to the parent with its traceback
            conn.send(("error", traceback.format_exc()))


class WorkerPool:
    """``workers`` processes running ``fn(*args)`` for each job; ``workers == 1`` runs in this process.

    Use as a context manager; :meth:`imap` yields ``(index, result)`` as jobs finish. A ``ValueError`` in a job
    is raised again here with its message (bad input, a locked run); any other failure as ``RuntimeError``
    with the worker's traceback.
    """

    def __init__(self, workers: int, env: dict | None = None):
        self.workers = check_int("workers", workers, 1)
        self.env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "NUMBA_NUM_THREADS": "1", **(env or {})}
        self._procs: list = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, grace: float = 3.0) -> None:
        """Stop every worker now: idle ones are asked to exit, every one still alive gets SIGTERM, and any left
        after ``grace`` seconds SIGKILL (a busy worker's run resumes from its checkpoint)."""
        for p, c in self._procs:
            with contextlib.suppress(OSError, ValueError):
                c.send(None)
        for p, _ in self._procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + grace
        for p, c in self._procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
            c.close()
        self._procs = []

    def imap(self, fn: Callable, jobs: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        if self.workers == 1 or len(jobs) <= 1:
            for i, args in enumerate(jobs):
                yield i, fn(*args)
            return
        ctx = mp.get_context("spawn")
        for _ in range(len(self._procs), min(self.workers, len(jobs))):  # started once, reused by later calls
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(theirs, os.getpid(), self.env), daemon=True)
            p.start()
            theirs.close()
            self._procs.append((p, mine))
        todo = iter(enumerate(jobs))
        busy: dict = {}

        def give(p, c) -> None:
            nxt = next(todo, None)
            if nxt is not None:
                c.send((fn, nxt[1]))
                busy[c] = (nxt[0], p)

        for p, c in self._procs:
            give(p, c)
        while busy:
            for c in wait_any(list(busy), timeout=1.0):
                i, p = busy.pop(c)
                try:
                    status, value = c.recv()
                except EOFError:
                    p.join(1.0)
                    raise RuntimeError(f"a worker process died (exit code {p.exitcode}) while running job {i}") from None
                if status == "value":
                    raise ValueError(value)
                if status == "error":
                    raise RuntimeError(f"job {i} failed in a worker process:\n{value}")
                yield i, value
                give(p, c)
