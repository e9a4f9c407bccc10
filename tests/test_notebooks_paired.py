"""Every notebook is a pair: a jupytext percent script (the source) and its .ipynb, with the same cells.

Covers the walkthrough notebooks (``notebooks/``) and the assignment solution notebooks (``assignments/source/``).
After editing a script, regenerate its notebook with ``jupytext --to ipynb --update notebooks/<name>.py`` (keeps
outputs) and re-execute it, or for assignments run ``python assignments/build.py``.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = [ROOT / "notebooks", ROOT / "assignments" / "source"]
NOTEBOOKS = sorted(p for d in FOLDERS for p in d.glob("*.ipynb"))
SCRIPTS = sorted(p for d in FOLDERS for p in d.glob("*.py") if "jupytext:" in p.read_text()[:400])


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3 and len(SCRIPTS) >= 3


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_notebook_has_its_script(ipynb):
    assert ipynb.with_suffix(".py").exists(), f"{ipynb.name} has no paired jupytext script"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_and_notebook_have_the_same_cells(script):
    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"{script.name} has no .ipynb (run: jupytext --to ipynb {script.relative_to(ROOT)})"
    py_cells, nb_cells = _cells(jupytext.read(script)), _cells(nbformat.read(ipynb, as_version=4))
    for i, (a, b) in enumerate(zip(py_cells, nb_cells)):
        assert a == b, f"cell {i} differs between {script.name} and {ipynb.name}:\n{a[1][:300]}\n---\n{b[1][:300]}"
    assert len(py_cells) == len(nb_cells), f"{script.name} has {len(py_cells)} cells, {ipynb.name} {len(nb_cells)}"
    header = jupytext.read(script).metadata.get("jupytext", {})
    assert "py:percent" in header.get("formats", ""), f"{script.name}: pair it with formats: ipynb,py:percent"


WALKTHROUGHS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("ipynb", WALKTHROUGHS, ids=lambda p: p.name)
def test_every_code_cell_of_a_committed_walkthrough_was_executed(ipynb):
    """A walkthrough's text quotes its outputs, so each code cell must carry them: an execution count in order.
    (Assignment notebooks are templates and are committed unexecuted.)"""
    counts = [c.execution_count for c in nbformat.read(ipynb, as_version=4).cells if c.cell_type == "code"]
    missing = [i for i, n in enumerate(counts) if n is None]
    assert not missing, f"{ipynb.name}: code cell(s) {missing} were never executed (nbmake --overwrite)"
    assert counts == sorted(counts), f"{ipynb.name}: cells were executed out of order: {counts}"
