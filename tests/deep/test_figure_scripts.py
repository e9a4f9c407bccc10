"""figures/probe_models.py (its columns against closed forms) and figures/make_fig2.py on tiny runs."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import Trainer, train_run  # noqa: E402
from deep.config import RunConfig, make_config  # noqa: E402
from tests.deep.test_algorithm import TINY  # noqa: E402


def load_script(name: str = "probe_models"):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "figures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded(path) -> Trainer:
    trainer = Trainer(RunConfig.from_dict(json.loads((path / "config.json").read_text())))
    trainer.load(path / "checkpoint")
    return trainer


def test_probe_columns_match_closed_forms(tmp_path):
    probe_models = load_script()
    path = train_run(make_config("pendulum", "ma_vaml", steps=300, model_weight_decay=0.01, **TINY), root=tmp_path,
                     progress=False)
    trainer = loaded(path)
    r = probe_models.probe(trainer, n=100)
    squares = sum(float(p.detach().pow(2).sum()) for p in trainer.model.parameters())
    assert r["sum_sq"] == pytest.approx(squares, rel=1e-6)
    # the gradient of wd * sum(theta^2) / 2 is wd * theta
    assert r["grad_decay"] == pytest.approx(0.01 * np.sqrt(squares), rel=1e-5)
    assert r["abs_action"] == pytest.approx(np.abs(trainer.buffer.act[trainer.buffer.n - 100:trainer.buffer.n, 0]
                                                   ).mean(), rel=1e-6)
    assert r["action_effect"] > 0 and r["grad_objective"] > 0
    # a model whose last layer is zero predicts the mean delta whatever the action
    last = [m for m in trainer.model.net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    assert probe_models.probe(trainer, n=100)["action_effect"] == 0.0


def test_probe_script_prints_one_row_per_checkpointed_run(tmp_path, capsys):
    probe_models = load_script()
    for method in ("mle", "ma_l1"):
        train_run(make_config("pendulum", method, steps=300, **TINY), root=tmp_path, progress=False)
    probe_models.main(["--root", str(tmp_path), "--n", "50"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| pendulum")]
    assert [row.split(" | ")[1] for row in rows] == ["mle", "ma_l1"]
    with pytest.raises(SystemExit) as e:
        probe_models.main(["--root", str(tmp_path / "empty")])
    assert e.value.code == 2


def test_make_fig2_draws_and_tabulates_the_claims(tmp_path, capsys):
    make_fig2 = load_script("make_fig2")
    for seed in (0, 1):
        for method in ("mle", "slbo", "ma_l1"):
            train_run(make_config("pendulum", method, seed=seed, steps=300, **TINY), root=tmp_path, progress=False)
    assert make_fig2.main(["--root", str(tmp_path), "--figure", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "| pendulum | " in out and "(n=2, 0.3K)" in out
    claims = [line for line in out.splitlines() if line.startswith("| MA-L1 comparable to")]
    assert [c.split(" | ")[0] for c in claims] == ["| MA-L1 comparable to SLBO (the paper's baseline)",
                                                 "| MA-L1 comparable to MLE"]
    assert all("n = 2 vs 2" in c for c in claims)


def test_make_fig2_compares_the_recorded_evaluations(tmp_path, capsys):
    """--measure eval reads evaluation.csv at --at-step: the table's means and the claim's difference and Welch
    interval are those of the hand-written evaluations; a run without one is named and left out."""
    from scipy import stats

    from deep.runner import EVALUATION

    make_fig2 = load_script("make_fig2")
    values = {("mle", 0): 100.0, ("mle", 1): 140.0, ("mle", 2): 120.0, ("ma_l1", 0): 50.0, ("ma_l1", 1): 70.0}
    for (method, seed) in [*values, ("ma_l1", 2)]:
        path = train_run(make_config("pendulum", method, seed=seed, steps=300, **TINY), root=tmp_path, progress=False)
        if (method, seed) in values:  # a row at another step and one with other sizes must not be read
            (path / EVALUATION).write_text("step,eval_return,eval_episodes,n_envs,steps_per_env\n"
                                           f"200,-1.0,1,4,2500\n300,{values[method, seed]!r},1,4,2500\n"
                                           "300,-5.0,1,1,100\n")
    assert make_fig2.main(["--root", str(tmp_path), "--figure", str(tmp_path / "f.png"), "--measure", "eval",
                           "--at-step", "300", "--finals-figure", str(tmp_path / "finals.png")]) == 0
    assert (tmp_path / "finals.png").stat().st_size > 0
    captured = capsys.readouterr()
    assert "pendulum ma_l1 seed 2: no evaluation at 300 steps" in captured.err
    mle, ma = np.array([100.0, 140.0, 120.0]), np.array([50.0, 70.0])
    row = next(line for line in captured.out.splitlines() if line.startswith("| pendulum | "))
    assert "120 ± 12 (n=3, 0.3K)" in row and "60 ± 10 (n=2, 0.3K)" in row  # sem: std(ddof=1)/sqrt(n)
    claim = next(line for line in captured.out.splitlines() if line.startswith("| MA-L1 comparable to MLE"))
    se = np.sqrt(mle.var(ddof=1) / 3 + ma.var(ddof=1) / 2)
    df = se ** 4 / ((mle.var(ddof=1) / 3) ** 2 / 2 + (ma.var(ddof=1) / 2) ** 2 / 1)
    lo, hi = -60.0 - stats.t.ppf(0.975, df) * se, -60.0 + stats.t.ppf(0.975, df) * se
    diff, ci_lo, ci_hi = map(float, re.search(r"\| (-?[\d.]+) \[95% welch CI (-?[\d.]+), (-?[\d.]+)\]", claim).groups())
    # the table prints one decimal: compare within half of it
    assert diff == pytest.approx(-60.0, abs=0.05) and ci_lo == pytest.approx(lo, abs=0.05)
    assert ci_hi == pytest.approx(hi, abs=0.05) and "n = 2 vs 3" in claim
    assert make_fig2.main(["--root", str(tmp_path), "--figure", str(tmp_path / "f.png"), "--measure", "eval",
                           "--at-step", "300", "--eval-window", "150"]) == 0  # each run's mean of 200 and 300
    out = capsys.readouterr().out
    assert "mean of its evaluations after 0.15K up to 0.3K" in out
    claim = next(line for line in out.splitlines() if line.startswith("| MA-L1 comparable to MLE"))
    diff = float(re.search(r"\| (-?[\d.]+) \[95% welch CI", claim).group(1))
    assert diff == pytest.approx(np.mean((ma - 1) / 2) - np.mean((mle - 1) / 2), abs=0.05)  # (-1 + v) / 2: -30
    for argv in (["--measure", "eval"], ["--measure", "eval", "--at-step", "999"],  # no step; none there
                 ["--measure", "eval", "--at-step", "300", "--eval-window", "-1"]):  # a negative window
        with pytest.raises(SystemExit) as e:
            make_fig2.main(["--root", str(tmp_path), "--figure", str(tmp_path / "g.png"), *argv])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no evaluation at 999 steps" in err and "--eval-window must be >= 0 real steps, got -1" in err


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@pytest.mark.parametrize("script, committed_file, figures, envs", [
    ("make_mujoco_slbo.sh", "mujoco_slbo/claims_200k.md", ("mujoco_slbo", "mujoco_slbo_finals"),
     ("hopper-slbo", "halfcheetah-slbo")),
    ("make_fig2_mbbl_200k.sh", "fig2_mbbl_200k/claims.md", ("fig2_mbbl_200k", "fig2_mbbl_200k_finals"),
     ("pendulum-mbbl", "cartpole-mbbl", "acrobot-mbbl")),
])
def test_committed_claims_are_what_the_committed_logs_give(tmp_path, script, committed_file, figures, envs):
    """A committed claims table regenerated from the committed logs by its script: the same text, and every number
    within one unit of its last printed digit (rounding may differ by platform)."""
    repo = Path(__file__).parents[2]
    committed = (repo / "results" / committed_file).read_text()
    out = tmp_path / "claims.md"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "FIGURES": str(tmp_path)}
    subprocess.run(["sh", f"figures/{script}"], cwd=repo, env=env, check=True, capture_output=True)
    assert all((tmp_path / f"{name}.png").stat().st_size > 0 for name in figures)

    def tables(text):  # the commands echoed above each section name the output paths, which differ here
        return "\n".join(line for line in text.splitlines() if not line.startswith("python "))

    committed, fresh = tables(committed), tables(out.read_text())
    assert NUMBER.sub("#", fresh) == NUMBER.sub("#", committed)
    for old, new in zip(NUMBER.findall(committed), NUMBER.findall(fresh)):
        mantissa, _, exponent = old.lower().partition("e")
        unit = 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))  # one unit of the last printed digit
        assert abs(float(new) - float(old)) <= 1.01 * unit, (old, new)
    assert all(f"| {e} |" in fresh for e in envs)
