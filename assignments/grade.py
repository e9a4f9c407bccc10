"""Grade submitted notebooks locally, one row of scores per submission.

By default in a sandbox (``assignments/secure.py``, ``assignments/sandbox.py``; docs/grading.md): the grader
draws the instances from the course seed and computes the reference answers itself; the notebook runs in a
sandbox that cannot see the grader, the repository, the network or the seed, beside a student-side package that
holds only the functions the assignment allows; its graded functions are only *called* there, and their
outputs are compared back in the grader. Deterministic for a given seed. Where no sandbox can be made the
grader says why and refuses, unless told ``--unsafe``. ``--otter`` instead runs Otter's autograder zip written
by ``assignments/build.py`` (the hidden tests then run inside the student's kernel, where a notebook can tamper
with them: use it only to cross-check).

Usage::

    python assignments/grade.py a1_simulation_lemma submissions/ -o grades_a1.csv --seed 12345
    MODELADV_COURSE_SEED=12345 python assignments/grade.py a1_simulation_lemma alice.ipynb bob.ipynb -v

The course seed is required (``--seed`` or ``MODELADV_COURSE_SEED``): the default one is public, so answers to
its instances could be computed ahead of time. The CSV has one column per autograded question, one empty
column per written question (fill it in from the rubric beside the model answer in ``assignments/source/``),
the autograded total, and notes.
"""

from __future__ import annotations

import argparse
import csv
import os
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
    parser.add_argument("-v", "--verbose", action="store_true", help="print why points were lost, and the notes")
    parser.add_argument("--seed", type=int, default=None,
                        help="secret course seed of the instances (default: $MODELADV_COURSE_SEED; required)")
    parser.add_argument("--unsafe", action="store_true",
                        help="where no sandbox can be made, run the notebooks anyway, with your rights")
    parser.add_argument("--otter", action="store_true", help="grade with Otter's autograder zip instead (in-kernel)")
    args = parser.parse_args(argv)
    import secure

    try:
        subs = _submissions(args.paths)
        if args.otter:
            zip_path = autograder_zip(args.name)
        else:
            secure.instances(args.name, args.seed)  # unknown assignment or bad seed: before any notebook runs
            if args.seed is None and "MODELADV_COURSE_SEED" not in os.environ:
                raise ValueError("no course seed: pass --seed or set MODELADV_COURSE_SEED to a secret integer "
                                 "(the default seed is public, so its answers can be computed ahead of time)")
            ok, why = secure.sandbox_status()
            if not ok and not args.unsafe:
                raise secure.SandboxUnavailable(f"{why}; refusing to run untrusted notebooks (--unsafe runs them "
                                                "anyway, with your rights)")
            if args.verbose:
                print(why if ok else f"{why}: running WITHOUT a sandbox (--unsafe)")
    except ValueError as e:
        parser.error(str(e))
    grades = []
    for sub in subs:
        g = grade(sub, zip_path) if args.otter else secure.grade_notebook(sub, args.name, args.seed,
                                                                            unsafe=args.unsafe)
        grades.append(g)
        print(f"{g.total:6.1f} / {g.possible:.1f}  {sub}")
        for q, msgs in g.failures.items() if args.verbose else ():
            for m in msgs:
                print(f"    {q}: " + m.replace("\n", "\n        "))
        for note in getattr(g, "notes", []) if args.verbose else ():
            print("    note: " + note.replace("\n", "\n        "))
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
