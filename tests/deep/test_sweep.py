"""modeladv sweep through Ray Tune: a tiny sweep, its resume, its skip of finished runs, failed trials named in one
line, bad addresses, and the one-line fix for Ray's token authentication (the real two-node cluster is in
test_sweep_cluster.py, slow)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import train_run  # noqa: E402
from deep.config import make_config  # noqa: E402
from deep.sweep import (CLUSTER_DOC, auth_hint, check_address, check_auth, failed_trials_message, plan,  # noqa: E402
                        token_source, wait_for_root)
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
    # a trial that raises (here: its run locked by this process) ends the sweep in one line naming it
    with RunDir(runs["mle"]).lock():
        out = modeladv(*args)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr[-2000:]
    assert err[0].startswith("modeladv sweep: error: 1 of 2 trials failed: pendulum-mbbl mle seed 0 alpha 1 (")
    assert f"({runs['mle']}); first error: " in err[0] and f"is in use by process {os.getpid()}" in err[0]
    assert err[0].endswith("rerun the same command to resume them from their checkpoints")


def test_an_unreachable_cluster_is_a_one_line_error_within_15_s(tmp_path):
    t0 = time.monotonic()
    out = modeladv("sweep", "--envs", "pendulum", "--methods", "mle", "--seeds", "1", "--steps", "100",
                   "--address", "127.0.0.1:1", "--root", str(tmp_path))
    assert time.monotonic() - t0 < 15 + 10  # the check itself is bounded by 10 s; the rest is start-up
    assert out.returncode == 2 and "no Ray cluster answers at 127.0.0.1:1" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="host:port"):
        check_address("nonsense")


def test_failed_trials_are_one_line_naming_their_runs_and_the_first_error():
    class ActorUnavailableError(Exception):  # what Ray 2.60 raises for a trial whose node was killed
        pass

    lost = ActorUnavailableError("The actor 5023 is unavailable: The actor is temporarily unavailable: RpcError: "
                                 "RPC error: Socket closed rpc_code: 14.")
    cfgs = plan(["pendulum-mbbl"], ["mle", "ma_l1"], 3, [300])
    msg = failed_trials_message([(cfgs[1], "/r/deep/ab/seed0", lost)], 6)
    assert msg == ("1 of 6 trials failed: pendulum-mbbl ma_l1 seed 0 alpha 0.05 (/r/deep/ab/seed0); first error: "
                   "ActorUnavailableError: The actor 5023 is unavailable: The actor is temporarily unavailable: "
                   "RpcError: RPC error: Socket closed rpc_code: 14.; rerun the same command to resume them from "
                   "their checkpoints")
    # a trial's own exception arrives as a traceback: its last line already names the type
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad input\n"
    msg = failed_trials_message([(c, f"/r/{i}", tb) for i, c in enumerate(cfgs[:5])], 6)
    assert "\n" not in msg and msg.startswith("5 of 6 trials failed: pendulum-mbbl mle seed 0 alpha 1 (/r/0); ")
    assert "(/r/2); and 2 more; first error: ValueError: bad input; rerun" in msg and "/r/3" not in msg
    long = failed_trials_message([(cfgs[0], "/r", RuntimeError("x" * 1000))], 1)
    error = long.split("first error: ")[1].split("; rerun")[0]  # cut to 300 characters
    assert error == "RuntimeError: " + "x" * (300 - len("RuntimeError: ") - 3) + "..."


def test_a_trial_on_a_node_without_the_run_root_names_it(tmp_path):
    import re
    import socket

    wait_for_root(tmp_path, timeout=0)  # there: returns at once
    with pytest.raises(ValueError, match=re.escape(f"run root {tmp_path / 'elsewhere'} does not exist on node "
                                                   f"{socket.gethostname()}: every node needs the driver's run root")):
        wait_for_root(tmp_path / "elsewhere", timeout=0.3, poll=0.1)


RAY_REFUSAL = ("AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or incorrect. Note: "
               "RAY_AUTH_MODE is currently 'disabled' (not 'token').")  # Ray 2.60's words, as check_auth sees them


def test_token_source_follows_rays_order(tmp_path):
    home, other = tmp_path / "home", tmp_path / "token"
    assert token_source({}, home) is None
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("a" * 64)
    other.write_text("b" * 64)
    assert token_source({}, home) == str(home / ".ray" / "auth_token")
    assert token_source({"RAY_AUTH_TOKEN_PATH": str(other)}, home) == str(other)
    assert token_source({"RAY_AUTH_TOKEN": "c", "RAY_AUTH_TOKEN_PATH": str(other)}, home) == "RAY_AUTH_TOKEN"
    assert token_source({"RAY_AUTH_TOKEN": " "}, home) == str(home / ".ray" / "auth_token")  # empty: skipped
    with pytest.raises(ValueError, match=r"RAY_AUTH_TOKEN_PATH names .*missing, which does not exist"):
        token_source({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, home)


def test_auth_hint_names_the_fix_for_each_token_setup(tmp_path):
    home = tmp_path / "home"
    # not an authentication failure: no hint, the caller reports it as it is
    assert auth_hint("h:6379", "RpcError: Timed out while waiting for GCS to become available.", {}, home) is None
    head = "the Ray cluster at h:6379 requires token authentication: "
    doc = (Path(__file__).parents[2] / CLUSTER_DOC).read_text()  # the page every hint points to
    assert "RAY_AUTH_MODE=token" in doc and "RAY_AUTH_TOKEN" in doc
    # a fresh shell: the driver sends no token to an explicit address unless RAY_AUTH_MODE=token
    assert auth_hint("h:6379", RAY_REFUSAL, {}, home) == (
        head + "set RAY_AUTH_MODE=token here and put the head node's token in one of RAY_AUTH_TOKEN, the file named "
        f"by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token (see {CLUSTER_DOC})")
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("a" * 64)  # what any local sweep leaves behind
    assert auth_hint("h:6379", RAY_REFUSAL, {}, home) == (
        head + f"set RAY_AUTH_MODE=token here: Ray then sends the token in {home / '.ray' / 'auth_token'}, which "
        f"must be the head node's (see {CLUSTER_DOC})")
    assert auth_hint("h:6379", RAY_REFUSAL, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x"}, home) == (
        head + "the token in RAY_AUTH_TOKEN is not the cluster's: the driver and every node need the head node's "
        f"token (see {CLUSTER_DOC})")
    assert auth_hint("h:6379", RAY_REFUSAL, {"RAY_AUTH_MODE": "TOKEN"}, tmp_path / "empty") == (
        head + "RAY_AUTH_MODE=token is set but no token was found in RAY_AUTH_TOKEN, the file named by "
        f"RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token: put the head node's token there (see {CLUSTER_DOC})")


def test_token_mode_without_a_token_is_one_line_before_any_connection(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    # port 1 answers nothing: the error comes from the check before Ray's client (which would abort the process)
    with pytest.raises(ValueError, match="^the Ray cluster at 127.0.0.1:1 requires token authentication: "
                                         "RAY_AUTH_MODE=token is set but no token was found"):
        check_auth("127.0.0.1:1")
    assert check_auth("auto") is None and check_auth("ray://head:10001") is None  # left to Ray


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
