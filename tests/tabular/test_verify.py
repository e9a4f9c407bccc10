"""`modeladv verify`: the table, the exit codes, JSON output and input validation."""

import json
import re

import pytest

from modeladv.cli import main


def test_verify_prints_table_and_passes(capsys):
    assert main(["verify", "--n-mdps", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for header in ("J_M-J_M2", "Lem1", "Lem1(norm)", "Eq3 print", "Cor2 proof", "Cor2 dual", "Eq5 print"):
        assert header in out
    assert "random #2" in out and "S&B 3.5 grid" in out and "eq5_counterexample" in out
    assert "PASS: exact forms of Lemma 1 and Corollary 2 hold to 1e-08 on 6/6 pairs" in out
    assert "printed Eq. 5 fails on 5/6 pairs" in out  # 3 random + slip grid + counterexample; not the reward-only grid
    assert "printed Eq. 3 (unnormalized values) fails on 4/6 pairs" in out  # 3 random + reward-only grid


def test_verify_json(capsys):
    assert main(["verify", "--json", "--n-mdps", "2", "--states", "1", "--actions", "1", "--gamma", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pass"] is True and data["n"] == len(data["rows"]) == 5
    first = data["rows"][0]
    assert first["S"] == 1 and first["gamma"] == 0.0
    assert abs(first["printed_eq3"]) < 1e-12 and abs(first["printed_eq5"]) < 1e-12  # gamma = 0: printed forms hold


@pytest.mark.parametrize("args, msg", [
    (["--gamma", "1.0"], r"gamma must lie in \[0, 1\); got 1.0"),
    (["--gamma", "-0.5"], r"gamma must lie in \[0, 1\)"),
    (["--gamma", "nan"], r"gamma must be finite"),
    (["--gamma", "abc"], r"argument --gamma: invalid float value: 'abc'"),
    (["--states", "0"], "states must be a positive integer; got 0"),
    (["--actions", "0"], "actions must be a positive integer"),
    (["--n-mdps", "-1"], "n_mdps must be a non-negative integer"),
])
def test_verify_bad_input_exits_2(capsys, args, msg):
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modeladv verify: error:") and err.count("\n") == 1  # one line
    assert re.search(msg, err)
    assert "Traceback" not in err
