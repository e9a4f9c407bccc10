"""Grade submitted notebooks locally, one row of scores per submission.

By default in a clean process (``assignments/secure.py``): the grader draws the instances from the course seed
and computes the reference answers itself; the notebook runs in a fresh process where its graded functions are only
*called* (under a runtime trace that fails a question when the ``tabular`` reference runs, whatever name reached
it); outputs are compared back in the grader. Deterministic for a given seed. ``--otter`` instead runs Otter's
autograder zip written by ``assignments/build.py`` (the hidden tests then run inside the student's kernel, where a
notebook can tamper with them: use it only to cross-check).

Usage::

    python assignments/grade.py a1_simulation_lemma submissions/ -o grades_a1.csv --seed 12345
    python assignments/grade.py a1_simulation_lemma alice.ipynb bob.ipynb --verbose

The CSV has one column per autograded question, one empty column per written question (fill it in from the
rubric beside the model answer in ``assignments/source/``), the autograded total, and notes.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # secure.py (the clean-process grader) lives beside this file


def autograder_zip(name: str) -> Path:
    """The autograder zip of assignment ``name`` (``ValueError`` with the build command if it is missing)."""
    path = ROOT / "autograder" / name / f"{name}-autograder.zip"
    if not path.exists():
        raise ValueError(f"{path} does not exist; run: python assignments/build.py {name}")
    return path


def grade(submission: Path | str, zip_path: Path | str) -> Grade:
    """Grade one notebook with the autograder ``zip_path`` (runs the whole notebook, then every test)."""
    from otter.api import grade_submission  # imported here: otter is slow to import

    from secure import Grade

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
    parser.add_argument("-v", "--verbose", action="store_true", help="print why points were lost")
    parser.add_argument("--seed", type=int, default=None,
                        help="course seed of the instances (default: $MODELADV_COURSE_SEED, else a fixed default)")
    parser.add_argument("--otter", action="store_true", help="grade with Otter's autograder zip instead (in-kernel)")
    args = parser.parse_args(argv)
    import secure

    try:
        subs = _submissions(args.paths)
        if args.otter:
            zip_path = autograder_zip(args.name)
        else:
            secure.instances(args.name, args.seed)  # unknown assignment or bad seed: before any notebook runs
    except ValueError as e:
        parser.error(str(e))
    grades = []
    for sub in subs:
        g = grade(sub, zip_path) if args.otter else secure.grade_notebook(sub, args.name, args.seed)
        grades.append(g)
        print(f"{g.total:6.1f} / {g.possible:.1f}  {sub}")
        for q, msgs in g.failures.items() if args.verbose else ():
            for m in msgs:
                print(f"    {q}: " + m.replace("\n", "\n        "))
    if args.output:
        questions = list(dict.fromkeys(q for g in grades for q in g.scores))
        with open(args.output, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["submission", *questions, "autograded total", "autograded possible", "notes"])
            for g in grades:
                cells = []
                for q in questions:
                    score = g.scores.get(q, (0.0, 0.0))[0]
                    cells.append("" if score != score else score)  # written: NaN -> an empty cell to fill in
                w.writerow([str(g.submission), *cells, g.total, g.possible, " | ".join(getattr(g, "notes", []))])
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
