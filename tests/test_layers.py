"""The package layers stated in pyproject.toml ([tool.importlinter]), checked by import-linter:
modeladv > gridworld | deep > lab > tabular, the two experiments independent, tabular importing nothing of ours."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(root: Path, config: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_no_import_points_up():
    proc = _lint(ROOT, ROOT / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, line", [
    ("tabular/mdp.py", "import lab.rundir"),                      # the exact core reaching up
    ("lab/stats.py", "from gridworld import config"),             # the run layer importing an experiment
    ("deep/plot.py", "import gridworld.report"),                  # one experiment importing the other
])
def test_the_contract_catches_an_upward_import(tmp_path, module, line):
    for pkg in ("tabular", "lab", "gridworld", "deep", "modeladv"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{line}\n")
    proc = _lint(tmp_path, tmp_path / "pyproject.toml")
    assert proc.returncode == 1 and "BROKEN" in proc.stdout, proc.stdout + proc.stderr


def test_no_module_rebinds_sys_modules():
    """Aliases that point sys.modules at another module are invisible to the import checker."""
    offenders = [str(p.relative_to(ROOT)) for pkg in ("tabular", "lab", "gridworld", "deep", "modeladv")
                 for p in (ROOT / pkg).rglob("*.py") if "sys.modules[__name__]" in p.read_text()]
    assert not offenders, offenders


def test_the_paths_users_and_notebooks_rely_on_still_import():
    import tabular
    import tabular.verify
    from tabular import TabularMDP, evaluate, random_mdp, sample_trajectories, sample_transitions  # noqa: F401

    assert callable(tabular.verify.verify_pair) and tabular.random_mdp is random_mdp
