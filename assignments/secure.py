"""Grading a notebook cannot reach: instances and reference answers are made here, the student's functions are
only *called* in a separate fresh process (``assignments/_collect.py``, under a runtime trace), and their
outputs are compared here.

Why: hidden tests that run inside the student's kernel can be defeated from the notebook (replacing
``numpy.testing.assert_allclose`` or the grading helpers), and a name-based check misses the reference reached
under another name (a default argument, ``getattr`` with a built string, ``__import__``, ``sys.modules``). Here
the comparison never runs in the student's process, and the trace fails a question when *any* frame of the
``tabular`` package outside the question's allow-list runs during the student's call, whatever name reached it.

Deterministic: instances are drawn from ``np.random.default_rng([course_seed, crc32(assignment),
crc32(question)])``; grading the same notebook twice gives the same score. Set the course seed once per course
(``--seed`` or ``MODELADV_COURSE_SEED``) and keep it from students.

Not a sandbox: student code runs with the grader's rights; run untrusted submissions in a container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DEFAULT_SEED = 20261201

__all__ = ["Grade", "course_seed", "instances", "grade_notebook"]


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


def grade_notebook(notebook: str | Path, assignment: str, seed: int | None = None, timeout: float = 600) -> Grade:
    """Grade one notebook (see the module text). ``ValueError`` for a missing notebook or unknown assignment."""
    sys.path.insert(0, str(ROOT))
    try:
        from _collect import decode, encode
    finally:
        sys.path.remove(str(ROOT))
    qs = _questions()
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"{notebook} is not a notebook file")
    cases = instances(assignment, seed)
    questions = qs.QUESTIONS[assignment]
    job = {"questions": [{"name": q.name, "function": q.function, "allow": list(q.allow), "forbidden": list(q.forbidden),
                          "instances": [encode(list(args)) for part in cases[q.name] for args, _ in part]}
                         for q in questions]}
    failures: dict[str, list[str]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job))
        env = {k: v for k, v in os.environ.items() if k not in ("MODELADV_COURSE_SEED",)}  # the seed stays here
        env["MPLBACKEND"] = "Agg"
        try:
            proc = subprocess.run([sys.executable, str(ROOT / "_collect.py"), str(notebook.resolve()), str(job_path),
                                   str(out_path)], cwd=notebook.resolve().parent, env=env, capture_output=True,
                                  text=True, timeout=timeout)
            report = json.loads(out_path.read_text()) if out_path.exists() else None
            if report is None:
                notes.append(f"the notebook's process ended without results (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-300:]}")
        except subprocess.TimeoutExpired:
            report = None
            notes.append(f"the notebook did not finish within {timeout:g} s")
    scores = {}
    for q in questions:
        got_all = report["results"].get(q.name, []) if report else []
        violated = report["violations"].get(q.name, []) if report else []
        score, i = 0.0, 0
        for part, part_cases in zip(q.parts, cases[q.name]):
            ok = True
            for args, want in part_cases:
                got = decode(got_all[i]) if i < len(got_all) else {"err": "no output"}
                i += 1
                if isinstance(got, dict) and "err" in got and set(got) == {"err"}:
                    why = got["err"]
                elif q.check is not None:
                    why = q.check(got, want, args)
                else:
                    why = qs.compare(got, want, q.rtol, q.atol)
                if why:
                    ok = False
                    failures.setdefault(q.name, []).append(why)
                    break
            if ok and not violated:
                score += part.points
        if violated:
            failures.setdefault(q.name, []).insert(0, f"used the reference implementation: {', '.join(violated)} "
                                                      f"(allowed from {'/'.join(q.forbidden)}: {', '.join(q.allow) or 'nothing'})")
        scores[q.name] = (score, float(q.points))
    if report:
        notes += [f"read tabular source: {', '.join(report['source_reads'])}"] if report["source_reads"] else []
        notes += report["cell_errors"][:5]
    for name, points in qs.WRITTEN.get(assignment, ()):
        scores[f"{name} (written)"] = (float("nan"), float(points))
    return Grade(notebook, scores, failures, notes)
