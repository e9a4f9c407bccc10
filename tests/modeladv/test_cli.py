"""The `modeladv` dispatcher and flags generated from the config dataclasses (the layers: tests/test_layers.py)."""

import dataclasses
import subprocess
import sys

import pytest

from modeladv import cli
from modeladv.cli import field_docs
from modeladv.commands import COMMANDS



def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: modeladv" in capsys.readouterr().out


def test_unknown_command_is_a_clean_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_field_is_a_flag_with_its_docstring_and_default(name, capsys):
    assert cli.main([name, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for cls, skip in COMMANDS[name].flags:
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            assert flag in text, (name, flag)
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring"
            assert " ".join(docs[f.name].split()[:4]) in text, (name, f.name)


def test_the_same_option_means_the_same_thing_everywhere(capsys):
    seen = {}
    for name, c in COMMANDS.items():
        for cls, skip in c.flags:
            for f in dataclasses.fields(cls):
                if f.name in ("root", "figure", "workers", "seeds", "wait", "progress") and f.name not in skip:
                    seen.setdefault(f.name, set()).add(str(f.type))
    assert all(len(types) == 1 for types in seen.values()), seen
    assert {"root", "figure", "workers", "seeds", "wait"} <= set(seen)


def test_flags_map_to_config_fields(tmp_path, capsys):
    from gridworld.config import RunConfig

    assert set(field_docs(RunConfig)) == {f.name for f in dataclasses.fields(RunConfig)}
    rc = cli.main(["gridworld", "--size", "5", "--methods", "mle", "--seeds", "1", "--iterations", "1",
                   "--steps-per-iter", "2", "--policy-steps", "1", "--model-steps", "1", "--rollouts", "2",
                   "--eval-episodes", "1", "--gamma", "0.9", "--root", str(tmp_path), "--no-plot", "--no-progress"])
    assert rc == 0
    from lab.rundir import find_runs

    (cfg, _), = find_runs(tmp_path, "gridworld")
    assert (cfg["gamma"], cfg["policy_steps"], cfg["size"]) == (0.9, 1, 5)


def test_import_tabular_does_not_import_torch_gymnasium_numba_or_the_run_layer():
    code = ("import sys, tabular; print(*[m in sys.modules for m in "
            "('torch', 'numba', 'gymnasium', 'modeladv', 'deep', 'matplotlib')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False"] * 6, out


def test_modeladv_verify_does_not_import_torch():
    code = "import sys; from modeladv.cli import main; main(['verify', '--n-mdps', '1']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "False"
