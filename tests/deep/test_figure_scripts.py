"""figures/probe_models.py (its columns against closed forms) and figures/make_fig2.py on tiny runs."""

import importlib.util
import json
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
