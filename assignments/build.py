"""Generate the course assignments with Otter Assign (otter-grader 7), reproducibly.

Sources (edit these): ``assignments/source/<name>.py``, jupytext percent scripts in Otter Assign's format (raw
``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` / ``# BEGIN TESTS`` cells; exception-based tests), and
``assignments/source/grading_utils.py`` (helpers of the hidden tests, shipped only in the autograder zip).

For each assignment this writes

* ``assignments/source/<name>.ipynb``: the solution notebook, paired with the script (committed);
* ``assignments/student/<name>/``: the student notebook (solutions stripped, cell ids made deterministic) and its
  public tests ``tests/q*.py`` (committed: this is what is handed out);
* ``assignments/autograder/<name>/``: ``<name>-autograder.zip`` (public + hidden tests) and the solution notebook
  as Otter runs it (git-ignored; regenerate it here).

Usage::

    python assignments/build.py                 # all assignments; runs the tests against the solutions
    python assignments/build.py a1_simulation_lemma --no-run-tests
    python assignments/build.py --check         # exit 1 if a committed generated file is out of date
    python assignments/build.py --bundle course/ # the student bundle: notebooks + public tests, nothing else

The student bundle is what students get: ``assignments/student/<name>/`` for each assignment (the notebook and
its public tests) and a README; no solutions, hidden tests, grading helpers or course seed. The package's wheel
(``pip wheel .``) holds only ``tabular``, ``deep`` and ``modeladv``, never ``assignments/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "source"
HELPERS = "grading_utils.py"
#: Cell metadata keys that jupytext adds and that carry no meaning for students.
_DROP_METADATA = ("lines_to_next_cell",)


def assignment_names() -> list[str]:
    """Names of all assignments (``assignments/source/a*_*.py``), sorted."""
    return sorted(p.stem for p in SOURCE.glob("a[0-9]*_*.py"))


def _normalize(nb: nbformat.NotebookNode, prefix: str) -> nbformat.NotebookNode:
    """Deterministic cell ids and no jupytext bookkeeping, so regenerating gives byte-identical files."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{prefix}-{i:03d}"
        for key in _DROP_METADATA:
            cell.get("metadata", {}).pop(key, None)
    if prefix == "student":  # the student notebook is not paired with a script
        nb.metadata.pop("jupytext", None)
    return nb


def solution_notebook(name: str) -> str:
    """The solution ``.ipynb`` text generated from ``source/<name>.py`` (no outputs)."""
    nb = jupytext.read(SOURCE / f"{name}.py")
    return nbformat.writes(_normalize(nb, "solution")) + "\n"


@dataclass(frozen=True)
class Built:
    """Where one built assignment lives: the student folder, the autograder zip and the solution notebook."""

    student_dir: Path
    autograder_zip: Path
    solution: Path


def build(name: str, out_root: Path = ROOT, run_tests: bool = True) -> Built:
    """Run Otter Assign on ``source/<name>.py`` and write ``<out_root>/{student,autograder}/<name>/``.

    Also writes the solution notebook ``<out_root>/source/<name>.ipynb`` (paired with the script). ``run_tests``
    makes Otter Assign run every test, hidden ones included, against the solutions (a few seconds).

    Raises:
        ValueError: unknown assignment name.
    """
    if name not in assignment_names():
        raise ValueError(f"unknown assignment {name!r}; choose from {assignment_names()}")
    from otter.assign import main as otter_assign  # imported here: otter is slow to import

    out_root = Path(out_root)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        master = tmp / "master" / f"{name}.ipynb"
        master.parent.mkdir()
        solution = solution_notebook(name)
        master.write_text(solution)
        shutil.copy(SOURCE / HELPERS, master.parent / HELPERS)
        otter_assign(str(master), str(tmp / "dist"), no_pdfs=True, no_run_tests=not run_tests)

        (out_root / "source").mkdir(parents=True, exist_ok=True)
        (out_root / "source" / f"{name}.ipynb").write_text(solution)

        student = out_root / "student" / name
        shutil.rmtree(student, ignore_errors=True)
        shutil.copytree(tmp / "dist" / "student", student)
        nb = nbformat.read(student / f"{name}.ipynb", as_version=4)
        (student / f"{name}.ipynb").write_text(nbformat.writes(_normalize(nb, "student")) + "\n")

        ag = out_root / "autograder" / name
        shutil.rmtree(ag, ignore_errors=True)
        ag.mkdir(parents=True)
        (zip_path,) = (tmp / "dist" / "autograder").glob(f"{name}-autograder_*.zip")  # otter stamps the time
        shutil.copy(zip_path, ag / f"{name}-autograder.zip")
        shutil.copy(tmp / "dist" / "autograder" / f"{name}.ipynb", ag / f"{name}.ipynb")
    return Built(student, ag / f"{name}-autograder.zip", ag / f"{name}.ipynb")


def _generated(root: Path, name: str) -> dict[Path, bytes]:
    """The generated files of one assignment that are committed, by path relative to ``root``."""
    files = [p for p in (root / "student" / name).rglob("*") if p.is_file()]
    files.append(root / "source" / f"{name}.ipynb")
    return {p.relative_to(root): p.read_bytes() for p in files if p.exists()}


def stale_files(names: list[str]) -> list[str]:
    """Committed generated files (solution notebooks, student folders) that differ from a fresh build."""
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            build(name, Path(tmp), run_tests=False)
            fresh, committed = _generated(Path(tmp), name), _generated(ROOT, name)
            stale += [str(Path("assignments") / rel) for rel in sorted(set(fresh) | set(committed))
                      if fresh.get(rel) != committed.get(rel)]
    return stale


#: words that must never reach students (solutions, hidden tests, instructor helpers)
_INSTRUCTOR_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "BEGIN TEST CONFIG", "grading_utils",
                       "QUESTIONS", "course_seed", "Rubric")


def bundle(out: Path, names: list[str] | None = None) -> Path:
    """Copy the committed student versions into ``out`` (which must not exist), with a README, and check that
    nothing in it carries an instructor marker; ``ValueError`` otherwise."""
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists; give a new folder for the student bundle")
    names = names or assignment_names()
    out.mkdir(parents=True)
    for name in names:
        shutil.copytree(ROOT / "student" / name, out / name, ignore=shutil.ignore_patterns("__pycache__"))
    (out / "README.md").write_text(
        "# Assignments\n\nInstall the package (`pip install model-advantage`, or `pip install -e .` from the course's copy),\n"
        "open each notebook, and run `grader.check(\"q1\")` etc. for the public tests. Submit the notebook.\n"
        f"Assignments: {', '.join(names)}.\n")
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="ignore")
            bad = [m for m in _INSTRUCTOR_MARKERS if m in text]
            if bad:
                shutil.rmtree(out)
                raise ValueError(f"{f.relative_to(out)} carries instructor material ({bad[0]!r}); rebuild the student versions")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {assignment_names()})")
    parser.add_argument("--no-run-tests", action="store_true", help="skip running the tests on the solutions")
    parser.add_argument("--check", action="store_true", help="only check that committed generated files are fresh")
    parser.add_argument("--bundle", type=Path, help="write the student bundle (no solutions, no hidden tests) here")
    args = parser.parse_args(argv)
    names = args.names or assignment_names()
    unknown = sorted(set(names) - set(assignment_names()))
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; choose from {assignment_names()}")
    if args.bundle:
        try:
            print(f"student bundle: {bundle(args.bundle, names)}")
        except ValueError as e:
            parser.error(str(e))
        return 0
    if args.check:
        stale = stale_files(names)
        for path in stale:
            print(f"out of date: {path}  (run: python assignments/build.py)")
        return 1 if stale else 0
    for name in names:
        built = build(name, run_tests=not args.no_run_tests)
        print(f"{name}: student version {built.student_dir.relative_to(ROOT.parent)}, "
              f"autograder {built.autograder_zip.relative_to(ROOT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
