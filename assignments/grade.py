"""Grade submitted notebooks locally with Otter (no Docker), one row of scores per submission.

Uses the autograder zip written by ``assignments/build.py`` (``assignments/autograder/<name>/<name>-autograder.zip``)
and Otter's non-containerized runner (the same as ``otter run -a <zip> <notebook>``), so the grading machine needs
this package installed (``pip install -e .``), as a student's machine does. Hidden tests draw fresh random
instances on each run; a failure message names the seed.

Usage::

    python assignments/grade.py a1_simulation_lemma submissions/ -o grades_a1.csv
    python assignments/grade.py a1_simulation_lemma alice.ipynb bob.ipynb --verbose
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def autograder_zip(name: str) -> Path:
    """The autograder zip of assignment ``name`` (``ValueError`` with the build command if it is missing)."""
    path = ROOT / "autograder" / name / f"{name}-autograder.zip"
    if not path.exists():
        raise ValueError(f"{path} does not exist; run: python assignments/build.py {name}")
    return path


@dataclass(frozen=True)
class Grade:
    """Scores of one submission: per question ``(score, possible)`` and the failed test messages."""

    submission: Path
    scores: dict[str, tuple[float, float]]
    failures: dict[str, list[str]]

    @property
    def total(self) -> float:
        return float(sum(s for s, _ in self.scores.values()))

    @property
    def possible(self) -> float:
        return float(sum(p for _, p in self.scores.values()))


def grade(submission: Path | str, zip_path: Path | str) -> Grade:
    """Grade one notebook with the autograder ``zip_path`` (runs the whole notebook, then every test)."""
    from otter.api import grade_submission  # imported here: otter is slow to import

    results = grade_submission(str(submission), str(zip_path), quiet=True)
    scores = {q: (float(r.score), float(r.possible)) for q, r in results.results.items()}
    failures = {q: [t.message for t in r.test_case_results if not t.passed] for q, r in results.results.items()}
    return Grade(Path(submission), scores, {q: m for q, m in failures.items() if m})


def _submissions(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.suffix == ".ipynb" and p.exists():
            found.append(p)
        else:
            raise ValueError(f"{p} is neither a notebook nor a folder of notebooks")
    if not found:
        raise ValueError(f"no .ipynb files found in {paths}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="assignment name, e.g. a1_simulation_lemma")
    parser.add_argument("paths", nargs="+", help="submitted notebooks or folders of them")
    parser.add_argument("-o", "--output", type=Path, help="write a CSV of scores here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the failed tests' messages")
    args = parser.parse_args(argv)
    try:
        zip_path, subs = autograder_zip(args.name), _submissions(args.paths)
    except ValueError as e:
        parser.error(str(e))
    grades = []
    for sub in subs:
        g = grade(sub, zip_path)
        grades.append(g)
        print(f"{g.total:6.1f} / {g.possible:.1f}  {sub}")
        for q, msgs in g.failures.items() if args.verbose else ():
            for m in msgs:
                print(f"    {q}: " + m.replace("\n", "\n        "))
    if args.output:
        questions = sorted({q for g in grades for q in g.scores})
        with open(args.output, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["submission", "total", "possible", *questions])
            for g in grades:
                scores = (g.scores.get(q, (0.0, 0.0))[0] for q in questions)
                w.writerow([str(g.submission), g.total, g.possible, *scores])
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
