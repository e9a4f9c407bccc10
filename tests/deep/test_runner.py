"""deep.train (rows in memory) and deep.run (a run directory) log the same rows, as gridworld.train and .run do."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deep  # noqa: E402
from deep.config import make_config  # noqa: E402
from lab.rundir import read_metrics  # noqa: E402

TINY = dict(n_real=150, k_model=4, value_refresh_every=2, refresh_samples=40, k_policy=2, policy_samples=40,
            rollout_envs=4, model_hidden=(16, 16), policy_hidden=(8,), value_hidden=(8,), model_batch=16,
            checkpoint_every=1, device="cpu")


def test_train_in_memory_logs_what_run_writes(tmp_path):
    cfg = make_config("pendulum", "ma_l1", steps=300, **TINY)
    torch.set_num_threads(1)
    rows = list(deep.train(cfg))
    m = read_metrics(deep.run(cfg, tmp_path))
    assert [r["step"] for r in rows] == list(m["step"]) == [150, 300]
    for key in rows[0]:
        if key != "wall_s":  # seconds, not a result
            np.testing.assert_array_equal([r[key] for r in rows], m[key], err_msg=key)  # repr() round-trips


def test_train_stops_after(tmp_path):
    cfg = make_config("pendulum", "mle", steps=450, **TINY)
    assert [r["step"] for r in deep.train(cfg, stop_after=1)] == [150]
