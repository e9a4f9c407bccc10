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


def _rows(path):
    from lab.rundir import read_metrics

    return read_metrics(path)


def test_evaluating_every_iteration_records_each_step_and_changes_no_logged_number(tmp_path):
    """evaluate_every=1: one evaluation row at step 0 (the untrained policy, as the authors' first stage) and one
    per iteration, at the logged steps; every metrics column but the wall time equals the run without
    evaluations; the last row is what `modeladv evaluate` finds in that run's final checkpoint (the same policy,
    the same evaluation seed)."""
    cfg = make_config("pendulum", "ma_l1", steps=450, **TINY)
    plain = run(cfg, root=tmp_path / "plain")
    evaluated = run(make_config("pendulum", "ma_l1", steps=450, evaluate_every=1, **TINY), root=tmp_path / "eval")
    assert plain.relative_to(tmp_path / "plain") == evaluated.relative_to(tmp_path / "eval")  # the same run
    m0, m1 = _rows(plain / "metrics.csv"), _rows(evaluated / "metrics.csv")
    assert set(m0) == set(m1)
    for col in set(m0) - {"wall_s"}:
        np.testing.assert_array_equal(m0[col], m1[col], err_msg=col)
    ev = _rows(evaluated / EVALUATION)
    np.testing.assert_array_equal(ev["step"], [0, *m1["step"]])
    assert (ev["n_envs"] == 4).all() and (ev["steps_per_env"] == 2500).all()
    assert ev["eval_episodes"].tolist() == [4 * (2500 // 200)] * 4  # Pendulum-v1 episodes last 200 steps
    assert evaluate_run(plain)["eval_return"] == ev["eval_return"][-1]
    assert len((plain / EVALUATION).read_text().splitlines()) == 2  # plain: the header and evaluate_run's row


def test_a_resume_drops_evaluations_past_its_checkpoint_and_makes_good_a_missing_one(tmp_path):
    """Stopped after 1 of 3 iterations; then its row at that step lost (a kill after the checkpoint) and rows at
    later steps forged (a trajectory the resume discards, e.g. a kill between checkpoints): the resumed run drops
    those, evaluates the checkpoint's step again, and every row equals the uninterrupted run's."""
    cfg = make_config("pendulum", "mle", steps=450, evaluate_every=1, **TINY)
    whole = _rows(run(cfg, root=tmp_path / "whole") / EVALUATION)
    path = run(cfg, root=tmp_path / "cut", stop_after=1)
    lines = (path / EVALUATION).read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "150"]
    (path / EVALUATION).write_text("\n".join([lines[0], lines[1], "300,-1.0,1,4,2500", "450,-2.0,1,4,2500"]) + "\n")
    cut = _rows(run(cfg, root=tmp_path / "cut") / EVALUATION)
    assert set(whole) == set(cut)
    for col in whole:
        np.testing.assert_array_equal(whole[col], cut[col], err_msg=col)


def test_evaluate_every_is_checked_and_every_second_iteration_and_the_last_are_evaluated(tmp_path):
    with pytest.raises(ValueError, match="evaluate_every must be a non-negative integer"):
        make_config("pendulum", "mle", evaluate_every=-1)
    path = run(make_config("pendulum", "mle", steps=450, evaluate_every=2, **TINY), root=tmp_path)
    assert _rows(path / EVALUATION)["step"].tolist() == [0, 300, 450]


def test_evaluate_skips_a_run_a_live_process_holds(tmp_path, capsys):
    """A live run writes its own evaluation.csv: `modeladv evaluate` leaves it alone (two writers would lose
    rows), says so on stderr, and evaluates the others."""
    from lab.rundir import RunDir
    from modeladv.cli import main

    held = run(make_config("pendulum", "mle", steps=150, **TINY), root=tmp_path)
    free = run(make_config("pendulum", "mle", seed=1, steps=150, **TINY), root=tmp_path)
    other = RunDir(held)
    other.acquire()  # the lock is per open file description: this one stands for another process
    try:
        assert main(["evaluate", "--root", str(tmp_path), "--n-envs", "1", "--steps-per-env", "200"]) == 0
    finally:
        other.release()
    assert f"skipped {held}" in capsys.readouterr().err
    assert not (held / EVALUATION).exists() and (free / EVALUATION).exists()
