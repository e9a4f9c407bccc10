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
