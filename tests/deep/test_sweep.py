"""modeladv sweep through Ray Tune: a tiny sweep, its resume, its skip of finished runs, and bad addresses."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import train_run  # noqa: E402
from deep.config import make_config  # noqa: E402
from deep.sweep import check_address, plan  # noqa: E402
from modeladv.rundir import RunDir, find_runs, read_metrics  # noqa: E402

SMALL = dict(n_real=100, k_model=2, k_policy=1, policy_samples=40, refresh_samples=40, rollout_envs=4)
FLAGS = [x for k, v in SMALL.items() for x in ("--" + k.replace("_", "-"), str(v))]


def modeladv(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "modeladv.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_a_sweep_runs_through_ray_resumes_exactly_and_skips_finished_runs(tmp_path):
    pytest.importorskip("ray")
    whole = train_run(make_config("pendulum-mbbl", "ma_l1", steps=300, **SMALL), root=tmp_path / "whole",
                      progress=False)
    # a partial run, as a killed sweep leaves it: the sweep must resume it, not restart it
    part = train_run(make_config("pendulum-mbbl", "ma_l1", steps=300, **SMALL), root=tmp_path / "sweep",
                     progress=False, max_iterations=1)
    assert not RunDir(part).is_done()
    args = ["sweep", "--envs", "pendulum-mbbl", "--methods", "mle", "ma_l1", "--seeds", "1", "--steps", "300",
            *FLAGS, "--cpus", "2", "--root", str(tmp_path / "sweep")]
    out = modeladv(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stage 300: 2 trials done" in out.stdout
    runs = {c["method"]: p for c, p in find_runs(tmp_path / "sweep" / "deep")}
    assert sorted(runs) == ["ma_l1", "mle"] and all(RunDir(p).done_position() == 300 for p in runs.values())
    a, b = read_metrics(whole), read_metrics(runs["ma_l1"])
    for key in a:
        if key != "wall_s":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    stamps = {p: (p / "metrics.csv").stat().st_mtime_ns for p in runs.values()}
    assert modeladv(*args).returncode == 0  # rerun: every trial finds its run finished
    assert {p: (p / "metrics.csv").stat().st_mtime_ns for p in runs.values()} == stamps


def test_an_unreachable_cluster_is_a_one_line_error_within_15_s(tmp_path):
    t0 = time.monotonic()
    out = modeladv("sweep", "--envs", "pendulum", "--methods", "mle", "--seeds", "1", "--steps", "100",
                   "--address", "127.0.0.1:1", "--root", str(tmp_path))
    assert time.monotonic() - t0 < 15 + 10  # the check itself is bounded by 10 s; the rest is start-up
    assert out.returncode == 2 and "no Ray cluster answers at 127.0.0.1:1" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="host:port"):
        check_address("nonsense")


def test_plan_orders_seed_major_and_sweeps_alpha():
    cfgs = plan(["pendulum"], ["mle", "ma_l1"], 2, [100, 200])
    assert [(c.steps, c.seed, c.method) for c in cfgs] == [
        (100, 0, "mle"), (100, 0, "ma_l1"), (100, 1, "mle"), (100, 1, "ma_l1"),
        (200, 0, "mle"), (200, 0, "ma_l1"), (200, 1, "mle"), (200, 1, "ma_l1")]
    alphas = [c.alpha for c in plan(["pendulum-mbbl"], ["ma_vaml"], 1, [100], alpha_sweep=True)]
    assert alphas == [10.0 ** -k for k in range(5, 14)]
    with pytest.raises(ValueError, match="value-aware"):
        plan(["pendulum"], ["mle"], 1, [100], alpha_sweep=True)
