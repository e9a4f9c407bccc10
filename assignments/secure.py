"""Grading a notebook cannot reach: instances and reference answers are made here; the notebook runs in a
sandbox (``assignments/sandbox.py``: no network, its own namespaces, uid ``nobody``, a read-only view holding
only the notebook and a student-side package with the functions the assignment allows), where its graded
functions are only *called* (``assignments/_collect.py``); their outputs come back over a pipe as plain numbers
and arrays and are compared, scored and reported here.

Why: anything in the student's process can be changed by the notebook (the tests, the trace, the collector's
bookkeeping, a results file), and a reference that is importable can be reached under some other name. So
nothing there is trusted: the instances go in only after every cell has run, the course seed never does, and
the reference implementations are not in the sandbox at all. The collector's trace still reports a call of a
function the question does not allow (a violation costs the question's points), but it is advisory.

Deterministic: instances are drawn from ``np.random.default_rng([course_seed, crc32(assignment),
crc32(question)])``; grading the same notebook twice gives the same score. Set a secret course seed once per
course (``--seed`` or ``MODELADV_COURSE_SEED``): the default one is public, so its instances and answers can be
computed ahead of time.

Where no sandbox can be made (``sandbox.status()``), :func:`grade_notebook` raises :class:`SandboxUnavailable`
unless ``unsafe=True``: the notebook then runs as a plain child process with the grader's rights.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DEFAULT_SEED = 20261201

__all__ = ["Grade", "SandboxUnavailable", "course_seed", "instances", "grade_notebook", "sandbox_status", "student_lib"]

#: bytes the notebook's process may send back (results of every call) and keep in its stderr tail
MAX_REPLY = 64 << 20
MAX_NOTEBOOK = 50 << 20


class SandboxUnavailable(ValueError):
    """No sandbox can be made on this machine (the message says why, in one line)."""


def _questions():
    sys.path.insert(0, str(ROOT / "source"))  # questions.py and grading_utils.py are instructor files
    try:
        import questions
    finally:
        sys.path.remove(str(ROOT / "source"))
    return questions


def course_seed(seed: int | None = None) -> int:
    """``seed``, else ``$MODELADV_COURSE_SEED``, else the documented default."""
    if seed is not None:
        return int(seed)
    env = os.environ.get("MODELADV_COURSE_SEED")
    if env is not None:
        try:
            return int(env)
        except ValueError:
            raise ValueError(f"MODELADV_COURSE_SEED must be an integer; got {env!r}") from None
    return DEFAULT_SEED


def instances(assignment: str, seed: int | None = None) -> dict[str, list[list[tuple]]]:
    """``{question: [[(args, want), ...] per part]}``, the same on every call for the same seed."""
    qs = _questions()
    if assignment not in qs.QUESTIONS:
        raise ValueError(f"unknown assignment {assignment!r}; choose from {', '.join(qs.QUESTIONS)}")
    out = {}
    for q in qs.QUESTIONS[assignment]:
        rng = np.random.default_rng([course_seed(seed), zlib.crc32(assignment.encode()), zlib.crc32(q.name.encode())])
        out[q.name] = [part.draw(rng, part.n, k > 0) for k, part in enumerate(q.parts)]
    return out


@dataclass(frozen=True)
class Grade:
    """Scores of one submission (either grader): per question ``(score, possible)``, why points were lost, notes."""

    submission: Path
    scores: dict[str, tuple[float, float]]
    failures: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Autograded points (written questions, NaN until graded by hand, are not counted)."""
        return float(sum(s for q, (s, _) in self.scores.items() if not q.endswith("(written)")))

    @property
    def possible(self) -> float:
        return float(sum(p for q, (_, p) in self.scores.items() if not q.endswith("(written)")))


def _side():
    sys.path.insert(0, str(ROOT))
    try:
        import _collect
        import sandbox
    finally:
        sys.path.remove(str(ROOT))
    return _collect, sandbox


def sandbox_status() -> tuple[bool, str]:
    """``(True, what isolation is in place)`` or ``(False, why no sandbox can be made here)``, one line each."""
    return _side()[1].status()


_LIBS: dict[tuple[str, ...], Path] = {}


def student_lib(assignment: str) -> Path:
    """The folder mounted at ``/sandbox/lib``: the runner and the student-side ``tabular`` holding only what
    the assignment's questions allow (built once per process and allow-list)."""
    qs = _questions()
    if assignment not in qs.QUESTIONS:
        raise ValueError(f"unknown assignment {assignment!r}; choose from {', '.join(qs.QUESTIONS)}")
    allowed = tuple(sorted({a for q in qs.QUESTIONS[assignment] for a in q.allow}))
    if allowed not in _LIBS or not (_LIBS[allowed] / "_collect.py").exists():
        _, sandbox = _side()
        tmp = Path(tempfile.mkdtemp(prefix="grade_lib_"))
        atexit.register(shutil.rmtree, tmp, True)
        _LIBS[allowed] = sandbox.student_package(tmp / "lib", allowed)
        tmp.chmod(0o755)
    return _LIBS[allowed]


def _read_line(stream, deadline: float, limit: int) -> bytes | None:
    """One line from the child, or ``None`` at end of file, past ``deadline`` or over ``limit`` bytes."""
    buf = bytearray()
    fd = stream.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(buf) > limit or not sel.select(left):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            buf += chunk
    return bytes(buf[:buf.index(b"\n")])


def _write_all(stream, data: bytes, deadline: float) -> bool:
    """Write ``data`` to the child unless it stops reading before ``deadline`` (a full pipe must not hang us)."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while view:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return False
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    continue
        stream.close()
    except OSError:
        return False
    return True


def _converse(proc, job: dict, timeout: float) -> tuple[dict | None, str | None]:
    """Wait for the child's cells to finish, send the job, read the results: ``(report, why not)``."""
    deadline = time.monotonic() + timeout
    ready = _read_line(proc.stdout, deadline, 1 << 20)
    if ready is None:
        return None, "the notebook's process ended or stalled before its cells finished"
    if not _write_all(proc.stdin, (json.dumps(job) + "\n").encode(), deadline):
        return None, "the notebook's process did not take its instances"
    line = _read_line(proc.stdout, deadline, MAX_REPLY)
    if line is None:
        return None, "the notebook's process ended or stalled without results"
    try:
        head, report = json.loads(ready), json.loads(line)
        cell_errors = [str(e)[:300] for e in head.get("cell_errors", [])][:20]
        results = {str(k): list(v) for k, v in report["results"].items()}
        violations = {str(k): sorted({str(m)[:200] for m in v})[:20] for k, v in report["violations"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None, "the notebook's process sent malformed results"
    return {"results": results, "violations": violations, "cell_errors": cell_errors}, None


def _stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass


def grade_notebook(notebook: str | Path, assignment: str, seed: int | None = None, timeout: float = 600,
                   unsafe: bool = False) -> Grade:
    """Grade one notebook in the sandbox (see the module text). ``ValueError`` for a missing notebook or an
    unknown assignment; :class:`SandboxUnavailable` where no sandbox can be made, unless ``unsafe``."""
    collect, sandbox = _side()
    qs = _questions()
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"{notebook} is not a notebook file")
    if notebook.stat().st_size > MAX_NOTEBOOK:
        raise ValueError(f"{notebook} is larger than {MAX_NOTEBOOK >> 20} MiB")
    cases = instances(assignment, seed)
    ok, why = sandbox.status()
    if not ok and not unsafe:
        raise SandboxUnavailable(f"{why}; refusing to run untrusted notebooks (pass --unsafe to run them anyway)")
    lib = student_lib(assignment)
    questions = qs.QUESTIONS[assignment]
    job = {"questions": [{"name": q.name, "function": q.function, "allow": list(q.allow), "forbidden": list(q.forbidden),
                          "instances": [collect.encode(list(args)) for part in cases[q.name] for args, _ in part]}
                         for q in questions],
           "watch": [] if ok else _package_dirs()}
    notes: list[str] = [] if ok else ["graded WITHOUT a sandbox (--unsafe): the notebook ran with the grader's rights"]
    env = {"HOME": "/tmp", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "NUMBA_CACHE_DIR": "/tmp/numba",
           "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MODELADV_CELL_SECONDS"):
        if k in os.environ:
            env[k] = os.environ[k]
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        sub = Path(tmp) / "submission"
        sub.mkdir()
        (sub / "notebook.ipynb").write_bytes(notebook.read_bytes())
        for p in (Path(tmp), sub, sub / "notebook.ipynb"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        with tempfile.TemporaryFile() as err:
            if ok:
                proc = sandbox.run(lib, sub, env, stderr=err)
            else:
                env["TMPDIR"] = env["HOME"] = tmp
                _, site = sandbox._python_trees()
                proc = subprocess.Popen([sys.executable, "-I", "-S", str(lib / "_collect.py"), str(sub / "notebook.ipynb"),
                                         *site], cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=err, start_new_session=True)
            try:
                report, problem = _converse(proc, job, timeout)
            finally:
                _stop(proc)
            if problem:
                err.seek(max(0, err.seek(0, os.SEEK_END) - 300))
                tail = err.read().decode(errors="replace").strip()
                notes.append(f"{problem} (exit {proc.returncode}): {tail}")
    scores, failures = {}, {}
    for q in questions:
        got_all = report["results"].get(q.name, []) if report else []
        violated = report["violations"].get(q.name, []) if report else []
        score, i = 0.0, 0
        for part, part_cases in zip(q.parts, cases[q.name]):
            ok_part = True
            for args, want in part_cases:
                try:
                    got = collect.decode(got_all[i]) if i < len(got_all) else {"err": "no output"}
                except (ValueError, TypeError, KeyError, RecursionError) as e:
                    got = {"err": f"malformed output: {e}"[:300]}
                i += 1
                if isinstance(got, dict) and set(got) == {"err"}:
                    why_not = got["err"]
                else:
                    try:  # the output is the student's: a check that chokes on it fails the part, not the grader
                        why_not = (q.check(got, want, args) if q.check is not None
                                   else qs.compare(got, want, q.rtol, q.atol))
                    except Exception as e:
                        why_not = f"could not check the output: {type(e).__name__}: {e}"[:300]
                if why_not:
                    ok_part = False
                    failures.setdefault(q.name, []).append(why_not)
                    break
            if ok_part and not violated:
                score += part.points
        if violated:
            failures.setdefault(q.name, []).insert(0, f"used the reference implementation: {', '.join(violated)} "
                                                      f"(allowed from {'/'.join(q.forbidden)}: {', '.join(q.allow) or 'nothing'})")
        scores[q.name] = (score, float(q.points))
    if report:
        notes += report["cell_errors"][:5]
    for name, points in qs.WRITTEN.get(assignment, ()):
        scores[f"{name} (written)"] = (float("nan"), float(points))
    return Grade(notebook, scores, failures, notes)


def _package_dirs() -> list[str]:
    """The real course packages' folders: watched by the trace when grading without a sandbox."""
    import importlib.util

    out = []
    for name in ("tabular", "deep"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            out.append(os.path.dirname(os.path.abspath(spec.origin)) + os.sep)
    return out
