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
from lab.rundir import RunDir, find_runs, read_metrics  # noqa: E402

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


def _fake_run(root, env, method, alpha, seed, returns):
    """A run directory as the trainer writes it (config.json + metrics.csv), with the given returns."""
    from deep.config import run_dir
    from lab.rundir import as_dict

    cfg = make_config(env, method, alpha=alpha, seed=seed, steps=100 * len(returns))
    rd = run_dir(root, cfg)
    rd.write_config(cfg)
    metrics = rd.open_metrics(None)
    for i, r in enumerate(returns, 1):
        metrics.write({"step": 100 * i, "return": r})
    return as_dict(cfg)


def test_alpha_table_selects_the_highest_mean_and_draws_it(tmp_path):
    from deep.plot import alpha_table, format_alpha_table, plot_alpha_sweep

    # alpha 0.1: finals 10, 20 (mean 15); alpha 0.01: 30, 40 (mean 35, selected); the last 5 points count
    for alpha, finals in ((0.1, (10.0, 20.0)), (0.01, (30.0, 40.0))):
        for seed, f in enumerate(finals):
            _fake_run(tmp_path, "pendulum-mbbl", "ma_l1", alpha, seed, [-500.0] * 3 + [f] * 5)
    rows = alpha_table(tmp_path)
    assert [(r["alpha"], r["mean"], r["n"], r["selected"]) for r in rows] == [(0.01, 35.0, 2, True),
                                                                            (0.1, 15.0, 2, False)]
    assert rows[0]["sem"] == pytest.approx(5.0) and rows[0]["table1"] == 0.05 and rows[0]["step"] == 800
    assert "**0.01** (selected)" in format_alpha_table(rows)
    assert plot_alpha_sweep(tmp_path, tmp_path / "a.png").stat().st_size > 0
    # --alpha-from feeds the selection to the main runs, Table 1 elsewhere
    cfgs = plan(["pendulum-mbbl", "cartpole-mbbl"], ["ma_l1"], 1, [100],
                alphas={(r["env"], r["method"]): r["alpha"] for r in rows if r["selected"]})
    assert [(c.env, c.alpha) for c in cfgs] == [("pendulum-mbbl", 0.01), ("cartpole-mbbl", 0.05)]


def _ray_processes(session: int) -> list[int]:
    """PIDs of live processes in process group/session ``session`` (the sweep and everything Ray started)."""
    from pathlib import Path

    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session and fields[0] != "Z":  # session id, not a zombie
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_ctrl_c_stops_the_sweep_and_ray_with_one_line_and_the_rerun_resumes(tmp_path):
    pytest.importorskip("ray")
    import signal

    args = ["sweep", "--envs", "pendulum-mbbl", "--methods", "mle", "--seeds", "1", "--steps", "3000", *FLAGS,
            "--cpus", "1", "--root", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modeladv.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    t0 = time.monotonic()
    while not any(len(read_metrics(p).get("step", [])) >= 2 for _, p in find_runs(tmp_path / "deep")
                  if (p / "metrics.csv").exists()):
        assert time.monotonic() - t0 < 240 and proc.poll() is None, "the trial never logged two iterations"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == 130
    err = proc.stderr.read().strip().splitlines()
    assert err[-1] == "interrupted; rerun the same command to resume" and not any("Traceback" in e for e in err)
    t1 = time.monotonic()
    while _ray_processes(proc.pid):
        assert time.monotonic() - t1 < 20, f"Ray processes left running: {_ray_processes(proc.pid)}"
        time.sleep(0.5)
    out = modeladv(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    (_, path), = find_runs(tmp_path / "deep")
    assert read_metrics(path)["step"].tolist() == list(range(100, 3001, 100)) and RunDir(path).is_done()
