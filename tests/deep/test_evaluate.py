"""The authors' evaluation (deep.algorithm.Trainer.evaluate, deep.runner.evaluate_run, modeladv evaluate)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import Trainer  # noqa: E402
from deep.config import make_config  # noqa: E402
from deep.envs import make_spec  # noqa: E402
from deep.runner import EVALUATION, evaluate_run, run  # noqa: E402
from tests.deep.test_algorithm import TINY  # noqa: E402


def test_evaluating_leaves_the_run_as_it_was():
    """Two trainers of one seed: the one evaluated between iterations logs the same next row."""
    cfg = make_config("hopper", "ma_l1", steps=450, ou_sigma=0.3, **TINY)
    a, b = Trainer(cfg), Trainer(cfg)
    a.iterate(), b.iterate()
    a.evaluate(n_envs=2, steps_per_env=60, seed=5)
    ra, rb = a.iterate(), b.iterate()
    assert {k: v for k, v in ra.items() if k != "wall_s"} == pytest.approx(
        {k: v for k, v in rb.items() if k != "wall_s"}, nan_ok=True)


def test_episode_count_and_seed():
    """Pendulum never terminates: k time limits per environment finish exactly k episodes each; the same seed
    gives the same number, another seed (policy noise, start states) another one."""
    trainer = Trainer(make_config("pendulum", "mle", steps=150, **TINY))
    limit = make_spec("pendulum").max_steps
    mean, episodes = trainer.evaluate(n_envs=3, steps_per_env=2 * limit, seed=1)
    assert episodes == 6 and np.isfinite(mean)
    assert trainer.evaluate(n_envs=3, steps_per_env=2 * limit, seed=1) == (mean, 6)
    assert trainer.evaluate(n_envs=3, steps_per_env=2 * limit, seed=2)[0] != mean
    assert trainer.evaluate(n_envs=1, steps_per_env=limit - 1, seed=1) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_evaluate_run_records_once_per_checkpoint(tmp_path):
    path = run(make_config("pendulum", "mle", steps=300, **TINY), root=tmp_path)
    row = evaluate_run(path, n_envs=1, steps_per_env=200)
    assert row["step"] == 300 and row["eval_episodes"] == 1
    text = (path / EVALUATION).read_text()
    assert text.splitlines()[0] == "step,eval_return,eval_episodes,n_envs,steps_per_env"
    assert evaluate_run(path, n_envs=1, steps_per_env=200) == pytest.approx(row)  # recorded: not redone
    assert (path / EVALUATION).read_text() == text
    evaluate_run(path, n_envs=2, steps_per_env=200)  # other sizes: a second row for the same step
    assert len((path / EVALUATION).read_text().splitlines()) == 3
    (path / "checkpoint").unlink()
    with pytest.raises(ValueError, match=f"{path} has no checkpoint"):
        evaluate_run(path)


def test_the_command(tmp_path, capsys):
    from modeladv.cli import main

    path = run(make_config("pendulum", "mle", steps=150, **TINY), root=tmp_path)
    assert main(["evaluate", "--root", str(tmp_path), "--n-envs", "1", "--steps-per-env", "200"]) == 0
    assert f"| pendulum | mle | 0 | 150 |" in capsys.readouterr().out and (path / EVALUATION).exists()
    assert main(["evaluate", "--root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (path / "checkpoint").unlink()
    assert main(["evaluate", "--root", str(tmp_path)]) == 2
    assert "no deep run with a checkpoint" in capsys.readouterr().err


def test_a_recorded_step_is_not_loaded_again_and_a_new_checkpoint_is(tmp_path, monkeypatch):
    """The checkpoint's step is read from checkpoint.rows: a step already evaluated returns its row without
    loading the checkpoint; after the run is extended, the new step is evaluated (a second row)."""
    cfg = make_config("pendulum", "mle", steps=150, **TINY)
    path = run(cfg, root=tmp_path)
    row = evaluate_run(path, n_envs=1, steps_per_env=200)
    real_load = Trainer.load

    def no_load(self, p):
        raise AssertionError("the checkpoint was loaded")

    monkeypatch.setattr(Trainer, "load", no_load)
    assert evaluate_run(path, n_envs=1, steps_per_env=200) == pytest.approx(row)
    monkeypatch.setattr(Trainer, "load", real_load)
    assert run(cfg.__class__(**{**cfg.to_dict(), "steps": 300}), root=tmp_path) == path
    assert evaluate_run(path, n_envs=1, steps_per_env=200)["step"] == 300
    assert [line.split(",")[0] for line in (path / EVALUATION).read_text().splitlines()[1:]] == ["150", "300"]
