"""The `modeladv` dispatcher and the import-time promises of the package."""

import subprocess
import sys

import pytest

from tabular import cli


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: modeladv" in capsys.readouterr().out


def test_unknown_command_is_a_clean_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["no-such-command"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_registered_command_is_importable():
    missing = [name for name, (mod, _) in cli.COMMANDS.items() if name not in cli._available()]
    assert not missing, f"registered commands without a module: {missing}"


def test_import_tabular_does_not_import_torch_or_compile():
    code = "import sys, tabular; print('torch' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], out
