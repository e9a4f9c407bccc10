"""The README's two set-up commands and .ci/run stay in step (a green CI must run what the README says)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block, "README must open with a fenced bash block of set-up commands"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_readme_opens_with_exactly_two_setup_commands():
    cmds = _setup_commands()
    assert len(cmds) == 2, cmds
    assert "modeladv gridworld" in cmds[0]
    assert cmds[1].rstrip().endswith("pytest")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = re.search(r"^TEST_CMD='(.*)'$", ci, re.M).group(1)
    assert _setup_commands()[1].endswith(test_cmd), (test_cmd, _setup_commands()[1])
    assert "python3 -m venv" in ci  # a fresh environment, not the developer's


def test_readme_is_a_readme():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_fault_row_names_tests_that_exist():
    text = (ROOT / "docs" / "site" / "runs.md").read_text()
    table = text.split("| fault or bad input | what happens | test |", 1)[1].split("\n\n", 1)[0]
    rows = [r for r in table.strip().splitlines()[1:] if r.startswith("|")]
    assert len(rows) >= 12
    last_file = None
    for row in rows:
        refs = re.findall(r"`([\w/.]*?::?[\w*]+)`", row.rsplit("|", 2)[-2])
        assert refs, row
        for ref in refs:
            file, _, name = ref.rpartition("::")
            file = file if file.startswith("tests/") else last_file if not file else f"tests/modeladv/{file}"
            last_file = file
            source = (ROOT / file).read_text()
            pattern = rf"def {re.escape(name.rstrip('*'))}" + ("" if name.endswith("*") else r"\(")
            assert re.search(pattern, source), (ref, file)


def test_readme_says_which_torch_the_pin_installs():
    text = (ROOT / "README.md").read_text()
    assert "torch==2.13.0" in text and "https://download.pytorch.org/whl/cpu" in text and "CUDA" in text
