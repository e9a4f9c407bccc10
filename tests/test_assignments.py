"""The course assignments: generate them with Otter Assign, grade locally without Docker (assignments/build.py,
assignments/grade.py). The solution earns full marks, the unanswered student version zero, and the committed
student versions are what the build generates."""

import importlib.util
import shutil
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "assignments"

# third-party noise from otter-grader 7.0's runner (pandas 3 / traitlets deprecations), not from our code
pytestmark = [pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame:Warning"),
              pytest.mark.filterwarnings("ignore:Traits should be given as instances:DeprecationWarning")]


def _load(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"assignments_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


build_mod = _load(ASSIGNMENTS / "build.py")
grade_mod = _load(ASSIGNMENTS / "grade.py")
NAMES = build_mod.assignment_names()


def test_five_assignments():
    assert NAMES == ["a1_simulation_lemma", "a2_sampled_objectives", "a3_eq5_counterexample", "a4_tabular_mbrl_loop",
                     "a5_torch_objectives"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All assignments generated into a temporary folder (the repository's files are left untouched)."""
    root = tmp_path_factory.mktemp("assignments")
    return root, {name: build_mod.build(name, root, run_tests=False) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_committed_generated_files_are_up_to_date(built, name):
    root, _ = built
    fresh, committed = build_mod._generated(root, name), build_mod._generated(ASSIGNMENTS, name)
    stale = sorted(str(p) for p in set(fresh) | set(committed) if fresh.get(p) != committed.get(p))
    assert not stale, f"out of date (run: python assignments/build.py {name}): {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(built, name):
    _, out = built
    g = grade_mod.grade(out[name].solution, out[name].autograder_zip)
    assert g.possible >= 9 and g.total == g.possible, g.failures


@pytest.mark.parametrize("name", NAMES)
def test_unanswered_student_version_gets_zero(built, name):
    _, out = built
    g = grade_mod.grade(out[name].student_dir / f"{name}.ipynb", out[name].autograder_zip)
    assert g.possible >= 9 and g.total == 0, g.scores


@pytest.mark.parametrize("name", NAMES)
def test_student_version_has_no_solutions_or_hidden_tests(built, name):
    _, out = built
    nb = nbformat.read(out[name].student_dir / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells)
    for marker in ("BEGIN SOLUTION", "# SOLUTION", "BEGIN TEST CONFIG", "grading_utils"):
        assert marker not in code, marker
    tests = list((out[name].student_dir / "tests").glob("q*.py"))
    assert tests and all("hidden=True" not in t.read_text() for t in tests)
    assert all(t.read_text().count("@test_case") >= 1 for t in tests)  # every question has a public test
    assert not (out[name].student_dir / "grading_utils.py").exists()


# ---- the hidden tests' guard against calling the tabular core -------------------------------------------------
grading_utils = _load(ASSIGNMENTS / "source" / "grading_utils.py")


def _notebook_namespace(src: str) -> dict:
    """Functions defined as in a notebook (module __main__), with ``src``'s imports."""
    ns = {"__name__": "__main__"}
    exec(src, ns)
    return ns


def test_check_independent_accepts_numpy_code():
    ns = _notebook_namespace("import numpy as np\nfrom tabular import TabularMDP, evaluate\n"
                             "def f(P, r, g):\n    return np.linalg.solve(np.eye(len(r)) - g * P, r)\n"
                             "def h(M, pi):\n    return evaluate(M, pi).V + f(M.dense_P()[:, 0], M.R[:, 0], M.gamma)\n")
    grading_utils.check_independent(ns["f"])
    grading_utils.check_independent(ns["h"], allow=("TabularMDP", "evaluate"))


@pytest.mark.parametrize("body", [
    "import tabular as tb\ndef f(M, pi):\n    return tb.policy_evaluation(M, pi)\n",
    "from tabular import policy_evaluation\ndef f(M, pi):\n    return policy_evaluation(M, pi)\n",
    "def f(M, pi):\n    import tabular\n    return tabular.policy_evaluation(M, pi)\n",
    "from tabular import evaluate\ndef g(M, pi):\n    return evaluate(M, pi).V\ndef f(M, pi):\n    return [g(M, pi) for _ in range(1)]\n",
])
def test_check_independent_rejects_calls_into_tabular(body):
    ns = _notebook_namespace(body)
    with pytest.raises(AssertionError, match="uses the tabular package"):
        grading_utils.check_independent(ns["f"])


def test_random_instance_shapes():
    M, M2, pi = grading_utils.random_instance(np.random.default_rng(0), same_rewards=True)
    assert (M.S, M.A) == (M2.S, M2.A) and pi.shape == (M.S, M.A) and np.array_equal(M.R, M2.R)


# ---- the command lines ------------------------------------------------------------------------------------------
def test_build_cli_rejects_unknown_assignment(capsys):
    with pytest.raises(SystemExit) as e:
        build_mod.main(["a9_nonexistent"])
    assert e.value.code == 2 and "unknown assignment" in capsys.readouterr().err


def test_grade_cli_rejects_unknown_assignment_missing_autograder_and_submissions(tmp_path, capsys):
    nb = tmp_path / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    with pytest.raises(SystemExit) as e:
        grade_mod.main(["a9_nonexistent", str(nb)])
    assert e.value.code == 2 and "unknown assignment" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        grade_mod.main(["a9_nonexistent", str(nb), "--otter"])
    assert e.value.code == 2 and "build.py" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no .ipynb files"):
        grade_mod._submissions([str(tmp_path / "empty")] if (tmp_path / "empty").mkdir() is None else [])


needs_sandbox = pytest.mark.skipif(shutil.which("bwrap") is None,
                                   reason="grading untrusted notebooks needs bubblewrap (apt-get install bubblewrap)")
BLANK_A3 = ASSIGNMENTS / "student" / "a3_eq5_counterexample" / "a3_eq5_counterexample.ipynb"


@needs_sandbox
def test_grade_cli_writes_a_csv_with_written_columns_to_fill_in(tmp_path, capsys):
    import csv

    assert grade_mod.main(["a3_eq5_counterexample", str(BLANK_A3), "-o", str(tmp_path / "g.csv"), "--seed", "5"]) == 0
    (row,) = list(csv.DictReader(open(tmp_path / "g.csv")))
    assert row["q5 (written)"] == "" and row["autograded total"] == "0.0" and row["autograded possible"] == "13.0"
    assert "cell 10: TypeError" in row["notes"]  # the blank template's demo cell fails on its `...`


@needs_sandbox
def test_grade_cli_verbose_prints_the_sandbox_the_failures_and_the_notes(capsys, monkeypatch):
    monkeypatch.setenv("MODELADV_COURSE_SEED", "5")
    assert grade_mod.main(["a3_eq5_counterexample", str(BLANK_A3), "-v"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sandbox: bwrap") and "    q1: " in out and "    note: cell 10: TypeError" in out


def test_grade_cli_demands_a_course_seed(monkeypatch, capsys):
    monkeypatch.delenv("MODELADV_COURSE_SEED", raising=False)
    with pytest.raises(SystemExit) as e:
        grade_mod.main(["a3_eq5_counterexample", str(BLANK_A3)])
    assert e.value.code == 2 and "no course seed" in capsys.readouterr().err


def test_grade_cli_refuses_without_a_sandbox_unless_unsafe(monkeypatch, capsys):
    import secure

    monkeypatch.setattr(secure, "sandbox_status", lambda: (False, "no sandbox: bwrap is not installed"))
    with pytest.raises(SystemExit) as e:
        grade_mod.main(["a3_eq5_counterexample", str(BLANK_A3), "--seed", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "no sandbox: bwrap is not installed; refusing" in err[-1]


def test_student_bundle_has_no_instructor_material(tmp_path, monkeypatch):
    import shutil

    out = build_mod.bundle(tmp_path / "course")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == NAMES
    names = {p.name for p in out.rglob("*")}
    assert not names & {"grading_utils.py", "questions.py", "secure.py", "sandbox.py", "_collect.py", "source"}
    # a solution that slipped into a student version stops the bundle
    fake = tmp_path / "fake"
    shutil.copytree(ASSIGNMENTS / "student", fake / "student")
    nb = fake / "student" / NAMES[0] / f"{NAMES[0]}.ipynb"
    nb.write_text(nb.read_text().replace("...", "# BEGIN SOLUTION", 1))
    monkeypatch.setattr(build_mod, "ROOT", fake)
    with pytest.raises(ValueError, match="instructor material"):
        build_mod.bundle(tmp_path / "course2")
    assert not (tmp_path / "course2").exists()


def test_the_wheel_holds_no_assignments():
    import tomllib

    cfg = tomllib.loads((ASSIGNMENTS.parent / "pyproject.toml").read_text())
    include = cfg["tool"]["setuptools"]["packages"]["find"]["include"]
    assert include and not any(p.startswith("assignments") for p in include)


@pytest.mark.parametrize("name", NAMES)
def test_every_written_question_has_a_rubric_that_students_do_not_see(name):
    source = (ASSIGNMENTS / "source" / f"{name}.py").read_text()
    written = source.count("# manual: true")
    assert written >= 1 and source.count("**Rubric (") == written
    student = (ASSIGNMENTS / "student" / name / f"{name}.ipynb").read_text()
    assert "Rubric" not in student


def test_templates_import_only_stable_public_names():
    """A semester's submissions must keep working: templates and public tests import from ``tabular``'s top level
    (its ``__all__``), never from a submodule that may move."""
    import re

    import tabular

    for path in sorted((ASSIGNMENTS / "student").rglob("*")):
        if path.suffix not in (".ipynb", ".py"):
            continue
        for mod, names in re.findall(r"from (tabular[\w.]*) import ([\w, ]+)", path.read_text()):
            assert mod == "tabular", f"{path.name}: from {mod} import ..."
            assert all(n.strip() in tabular.__all__ for n in names.split(",")), (path.name, names)
