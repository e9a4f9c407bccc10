"""Faults and bad input, as a user meets them on the command line (each subprocess bounded in time).

Every row of the README's "fault -> what happens" table is checked here.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lab.rundir import RunDir, find_runs, read_metrics

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 120  # seconds any one command may take

#: a gridworld config that takes a few seconds, so that a second command can meet it while it runs
SLOW = ["gridworld", "--size", "6", "--methods", "mle", "ma_l1", "--seeds", "2", "--iterations", "60",
        "--steps-per-iter", "10", "--no-plot", "--no-progress"]


def modeladv(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "modeladv.cli", *args], capture_output=True, text=True,
                          timeout=LIMIT, env=env, cwd=kw.get("cwd"))


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "modeladv.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def wait_for(cond, timeout=60.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.add(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def rows_started(root: Path) -> bool:
    return any(len(read_metrics(p).get("iteration", [])) >= 3 for _, p in find_runs(root)
               if (p / "metrics.csv").exists())


def assert_clean_log(root: Path, n_runs: int, iterations: int) -> dict:
    logs = {}
    for cfg, p in find_runs(root / "gridworld"):
        m = read_metrics(p)
        assert m["iteration"].tolist() == list(range(iterations + 1)), p  # no duplicate, no interleaved row
        assert RunDir(p).is_done()
        logs[(cfg["method"], cfg["seed"])] = (p / "metrics.csv").read_bytes()
    assert len(logs) == n_runs
    return logs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The logs of one uninterrupted run of SLOW, to compare interrupted-and-resumed runs with."""
    root = tmp_path_factory.mktemp("reference")
    assert modeladv(*SLOW, "--root", str(root), "--workers", "2").returncode == 0
    return assert_clean_log(root, 4, 60)


# ---- 1. locks ---------------------------------------------------------------------------------------------
def test_a_second_command_on_locked_runs_stops_at_once_naming_the_holder(tmp_path, reference):
    first = start(*SLOW, "--root", str(tmp_path), "--workers", "1")
    try:
        wait_for(lambda: rows_started(tmp_path), what="the first command's rows")
        before = {p: (p / "metrics.csv").read_bytes() for _, p in find_runs(tmp_path / "gridworld")}
        second = modeladv(*SLOW, "--root", str(tmp_path), "--workers", "1")
        assert second.returncode == 2
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"is in use by process {first.pid}" in err[0] and "--wait" in err[0], err
        for p, data in before.items():  # the second command wrote nothing
            assert (p / "metrics.csv").read_bytes()[:len(data)] == data
        waiting = modeladv(*SLOW, "--root", str(tmp_path), "--workers", "2", "--wait")
        assert waiting.returncode == 0, waiting.stderr
        assert first.wait(LIMIT) == 0
    finally:
        first.kill()
    assert "skipping 4 finished run(s)" in waiting.stderr
    assert assert_clean_log(tmp_path, 4, 60) == reference


# ---- 2. signals and the death of the parent ---------------------------------------------------------------
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_workers_prints_one_line_and_resumes_exactly(tmp_path, reference, sig, code):
    proc = start(*SLOW, "--root", str(tmp_path), "--workers", "2")
    wait_for(lambda: rows_started(tmp_path) and len(children(proc.pid)) >= 2, what="workers writing rows")
    workers = children(proc.pid)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)  # Ctrl-C reaches the group
    assert proc.wait(LIMIT) == code
    err = proc.stderr.read()
    assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume", err
    assert "Traceback" not in err
    wait_for(lambda: not any(alive(w) for w in workers), timeout=5, what="the workers to stop")
    rerun = modeladv(*SLOW, "--root", str(tmp_path), "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert assert_clean_log(tmp_path, 4, 60) == reference


def test_workers_die_with_their_parent_and_a_torn_row_is_repaired(tmp_path, reference):
    proc = start(*SLOW, "--root", str(tmp_path), "--workers", "2")
    wait_for(lambda: rows_started(tmp_path) and len(children(proc.pid)) >= 2, what="workers writing rows")
    workers = children(proc.pid)
    proc.kill()
    proc.wait(LIMIT)
    wait_for(lambda: not any(alive(w) for w in workers), timeout=5, what="orphaned workers to stop")
    _, path = find_runs(tmp_path / "gridworld")[0]
    with open(path / "metrics.csv", "a") as f:
        f.write("99,1,2")  # as if killed mid-row
    rerun = modeladv(*SLOW, "--root", str(tmp_path), "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert assert_clean_log(tmp_path, 4, 60) == reference


# ---- 3-4. logs, checkpoints and configs that cannot be trusted ------------------------------------------------
TINY_TRAIN = ["train", "--env", "pendulum", "--method", "mle", "--steps", "200", "--n-real", "100", "--k-model", "2",
              "--k-policy", "1", "--policy-samples", "40", "--refresh-samples", "40", "--rollout-envs", "4",
              "--no-progress", "--checkpoint-every", "1"]


def test_corrupt_checkpoint_and_config_give_one_line_naming_the_file(tmp_path):
    assert modeladv(*TINY_TRAIN, "--steps", "100", "--root", str(tmp_path)).returncode == 0
    (_, path), = find_runs(tmp_path)
    data = (path / "checkpoint").read_bytes()
    (path / "checkpoint").write_bytes(data[: len(data) // 2])
    out = modeladv(*TINY_TRAIN, "--root", str(tmp_path))
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert str(path / "checkpoint") in err[0] and "delete the run directory" in err[0]
    assert "weights_only" not in out.stderr and "Traceback" not in out.stderr
    (path / "config.json").write_text('{"env": "pendulum", ')
    out = modeladv(*TINY_TRAIN, "--root", str(tmp_path))
    assert out.returncode == 2 and f"{path / 'config.json'} is unreadable" in out.stderr


def test_a_finished_run_whose_log_was_changed_is_refused(tmp_path):
    args = [*SLOW[:2], "5", "--methods", "mle", "--seeds", "1", "--iterations", "2", "--no-plot", "--no-progress"]
    assert modeladv(*args, "--root", str(tmp_path)).returncode == 0
    (_, path), = find_runs(tmp_path)
    with open(path / "metrics.csv", "a") as f:
        f.write(f"3{',0' * (len(read_metrics(path)) - 1)}\n")
    out = modeladv(*args, "--root", str(tmp_path))
    assert out.returncode == 2 and "does not match the run's DONE record" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1



def test_extending_a_log_this_code_does_not_reproduce_is_refused_and_the_log_kept(tmp_path):
    """A finished deep run without checkpoint (as committed) extended to more steps is rerun from the start; a log
    written by other code (here: one value changed, its DONE record rewritten to match) is refused at its first
    differing row, one line, exit 2, every file as it was; the untouched run extends."""
    pytest.importorskip("torch")
    args = [*TINY_TRAIN[:TINY_TRAIN.index("--steps")], *TINY_TRAIN[TINY_TRAIN.index("--steps") + 2:],
            "--root", str(tmp_path)]
    assert modeladv(*args, "--steps", "200").returncode == 0
    (_, path), = find_runs(tmp_path)
    for name in ("checkpoint", "checkpoint.rows"):
        (path / name).unlink(missing_ok=True)
    clean = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"}
    lines = (path / "metrics.csv").read_text().splitlines(keepends=True)
    head, first = lines[0].rstrip("\n").split(","), lines[1].rstrip("\n").split(",")
    column = head.index("model_loss")
    first[column] = repr(float(first[column]) + 0.5)
    (path / "metrics.csv").write_text("".join([lines[0], ",".join(first) + "\n", *lines[2:]]))
    RunDir(path).mark_done(float(lines[-1].split(",")[0]))  # a consistent finished run, as other code logged it
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"}
    out = modeladv(*args, "--steps", "400")
    warning, error = out.stderr.strip().splitlines()  # the warning that it reruns from the start, one line
    assert out.returncode == 2 and warning.startswith("modeladv train: warning: ") and "checked" in warning
    assert error.startswith("modeladv train: error: ") and "logs model_loss = " in error
    assert "extend it under another root" in error
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"} == before

    for name, data in clean.items():  # the log this code wrote: the rerun agrees with it and goes on
        (path / name).write_bytes(data)
    assert modeladv(*args, "--steps", "400").returncode == 0
    assert RunDir(path).done_position() == 400 and not (path / "extending.json").exists()
    (tmp_path / "short.csv").write_bytes(clean["metrics.csv"])
    short, extended = read_metrics(tmp_path / "short.csv"), read_metrics(path)
    n = len(short["step"])
    assert len(extended["step"]) > n and all(np.array_equal(short[k], extended[k][:n], equal_nan=True)
                                             for k in short if k != "wall_s")

# ---- 5-7. bad paths, sizes and numbers, refused before anything is written -------------------------------------
@pytest.mark.parametrize("case", ["root is a file", "root under a file", "figure is a folder", "figure suffix"])
def test_unusable_output_paths_are_refused_before_any_run(tmp_path, case):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = {"root is a file": ["--root", str(blocker)],
            "root under a file": ["--root", str(blocker / "runs")],
            "figure is a folder": ["--root", str(tmp_path / "runs"), "--figure", str(tmp_path)],
            "figure suffix": ["--root", str(tmp_path / "runs"), "--figure", str(tmp_path / "fig.txt")]}[case]
    out = modeladv("gridworld", "--seeds", "1", "--no-progress", *args)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "runs").exists() and blocker.read_text() == "x"


@pytest.mark.parametrize("args, message", [
    (["gridworld", "--size", "1000"], "--size 1000 needs about"),
    (["train", "--steps", "1000000000000"], "--steps 1000000000000 needs about"),
    (["train", "--alpha", "inf"], "alpha must be finite"),
    (["train", "--steps", "0"], "steps must be a positive integer"),
    (["train", "--method", "slbo", "--mle-weight", "0.5"], "mle_weight is for the value-aware methods"),
    (["train", "--gamma", "abc"], "argument --gamma: invalid float value: 'abc'"),
    (["gridworld", "--gamma", "nan"], "gamma must be finite"),
    (["sweep", "--envs", "pendulum", "--max-kl", "-1", "--dry-run"], "max_kl must lie in [0, inf)"),
])
def test_resource_guards_and_meaningless_numbers(tmp_path, args, message):
    out = modeladv(*args, "--root", str(tmp_path / "runs"))
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_value_iteration_that_does_not_converge_warns():
    from tabular import value_iteration
    from tabular.examples import gridworld_example_3_5

    with pytest.warns(RuntimeWarning, match="did not converge in 3 iterations"):
        res = value_iteration(gridworld_example_3_5(), max_iter=3)
    assert not res.converged and res.n_iter == 3


# ---- 8-9. figures stay where they belong; train says what it did -------------------------------------------------
def test_plot_writes_under_the_run_root_unless_told(tmp_path):
    committed = {p: p.stat().st_mtime_ns for p in (ROOT / "figures").glob("*.png")}
    args = ["gridworld", "--size", "5", "--methods", "mle", "--seeds", "1", "--iterations", "2", "--no-progress"]
    run = modeladv(*args, "--root", str(tmp_path), cwd=ROOT)
    assert run.returncode == 0 and (tmp_path / "figures" / "gridworld_5.png").exists(), run.stderr
    out = modeladv("plot", "--root", str(tmp_path), cwd=ROOT)
    assert out.returncode == 0 and (tmp_path / "figures" / "gridworld_5.png").exists(), out.stderr
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "figures").glob("*.png")} == committed
    out = modeladv("plot", "--root", str(tmp_path), "--figure", str(tmp_path / "elsewhere.png"))
    assert out.returncode == 0 and (tmp_path / "elsewhere.png").exists()


def test_train_ends_with_a_summary_line(tmp_path):
    out = modeladv(*TINY_TRAIN, "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    (_, path), = find_runs(tmp_path)
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("pendulum mle seed 0: final return ") and "after 200 real steps" in last
    assert f"run directory {path}" in last and " s in this call" in last


# ---- the deep commands under the same faults --------------------------------------------------------------------
LONG_TRAIN = [*TINY_TRAIN[:-2], "--steps", "3000", "--k-model", "20", "--k-policy", "4"]


def test_train_interrupted_resumes_to_the_uninterrupted_log(tmp_path):
    whole = modeladv(*LONG_TRAIN, "--root", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    proc = start(*LONG_TRAIN, "--root", str(tmp_path / "part"))
    wait_for(lambda: any(len(read_metrics(p).get("step", [])) >= 2 for _, p in find_runs(tmp_path / "part")
                         if (p / "metrics.csv").exists()), what="two logged iterations")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(LIMIT) == 130
    err = proc.stderr.read()
    assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume" and "Traceback" not in err
    rerun = modeladv(*LONG_TRAIN, "--root", str(tmp_path / "part"))
    assert rerun.returncode == 0, rerun.stderr
    (_, a), = find_runs(tmp_path / "whole")
    (_, b), = find_runs(tmp_path / "part")
    ma, mb = read_metrics(a), read_metrics(b)
    assert mb["step"].tolist() == ma["step"].tolist() == list(range(100, 3001, 100))
    for key in ma:
        if key != "wall_s":
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=key)  # NaN where no episode ended


# ---- a run's history is never lost silently; junk in a log is named, not a traceback ----------------------------
STOPPED = ["gridworld", "--size", "5", "--methods", "mle", "--seeds", "1", "--iterations", "6",
           "--stop-after", "3", "--no-plot", "--no-progress"]


def _stopped_run(tmp_path):
    """A gridworld run stopped after 3 of 6 iterations: a checkpoint at 3 and rows 0..3 in its log."""
    out = modeladv(*STOPPED, "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    (_, path), = find_runs(tmp_path)
    assert (path / "checkpoint").exists() and read_metrics(path)["iteration"].tolist() == [0, 1, 2, 3]
    return path


def _one_line_error(out, *words):
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1 and "Traceback" not in out.stderr, out.stderr
    assert all(w in err[0] for w in words), err[0]


@pytest.mark.parametrize("damage", ["emptied to its header", "deleted", "rows before the checkpoint deleted"])
def test_a_log_that_lost_its_history_is_refused_and_nothing_is_written(tmp_path, damage):
    path = _stopped_run(tmp_path)
    log = path / "metrics.csv"
    lines = log.read_text().splitlines(keepends=True)
    if damage == "deleted":
        log.unlink()
    else:
        log.write_text(lines[0] if damage == "emptied to its header" else lines[0] + lines[-1])
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != "lock"}
    out = modeladv(*STOPPED[:-4], "--no-plot", "--no-progress", "--root", str(tmp_path))
    _one_line_error(out, str(log), "restore the file", "delete the run directory")
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != "lock"} == before
    assert not (path / "DONE").exists()


def test_a_non_numeric_or_binary_log_is_named_on_resume_and_by_plot(tmp_path):
    path = _stopped_run(tmp_path)
    log = path / "metrics.csv"
    header, *rows = log.read_text().splitlines()
    cols = rows[1].split(",")
    cols[1] = "oops"
    log.write_text("\n".join([header, rows[0], ",".join(cols), *rows[2:]]) + "\n")
    resume = modeladv(*STOPPED[:-4], "--no-plot", "--no-progress", "--root", str(tmp_path))
    _one_line_error(resume, str(log), "'oops'", header.split(",")[1])
    _one_line_error(modeladv("plot", "--root", str(tmp_path)), str(log), "'oops'")
    log.write_bytes(b"iteration,return\n\xff\xfe\x00junk\n")
    _one_line_error(modeladv("plot", "--root", str(tmp_path)), str(log), "not UTF-8")
    _one_line_error(modeladv(*STOPPED[:-4], "--no-plot", "--no-progress", "--root", str(tmp_path)), str(log))


def test_changing_how_often_a_run_checkpoints_resumes_the_same_run(tmp_path):
    path = _stopped_run(tmp_path)
    out = modeladv(*STOPPED[:-4], "--checkpoint-every", "2", "--no-plot", "--no-progress", "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    (_, again), = find_runs(tmp_path)
    assert again == path and read_metrics(path)["iteration"].tolist() == list(range(7))


@pytest.mark.parametrize("args, message", [
    (["gridworld", "--figure", "/proc/modeladv-figure.png"], "/proc is not writable"),
    (["train", "--threads", "-3"], "threads must be a positive integer"),
    (["train", "--device", "cuda"], "CUDA is not available"),
    (["sweep", "--envs", "pendulum", "--methods", "mle", "--seeds", "1", "--device", "cuda"], "CUDA is not available"),
    (["verify", "--gamma", "1"], "gamma must lie in [0, 1)"),
    (["gridworld", "--gamma", "1"], "gamma must lie in (0, 1)"),
    (["train", "--gamma", "1"], "gamma must lie in [0, 1)"),
])
def test_bad_output_paths_and_options_stop_before_any_file(tmp_path, args, message):
    if "cuda" in args:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    out = modeladv(*args, *(["--root", str(tmp_path / "runs")] if args[0] != "verify" else []))
    _one_line_error(out, message)
    assert not (tmp_path / "runs").exists()


def test_train_without_torch_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from modeladv.cli import main; "
            f"raise SystemExit(main(['train', '--root', {str(tmp_path / 'runs')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT)
    _one_line_error(out, "pip install -e '.[deep]'")
    assert not (tmp_path / "runs").exists()


def test_plot_alpha_without_a_sweep_selects_nothing(tmp_path):
    out = modeladv(*TINY_TRAIN, "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    _one_line_error(modeladv("plot", "--experiment", "alpha", "--root", str(tmp_path)), "no alpha sweep")


def test_plot_names_the_figure_as_the_command_that_made_the_runs(tmp_path):
    assert modeladv(*TINY_TRAIN, "--root", str(tmp_path)).returncode == 0
    out = modeladv("plot", "--experiment", "deep", "--root", str(tmp_path))
    assert out.returncode == 0 and (tmp_path / "figures" / "deep_pendulum.png").exists(), out.stderr


def test_mujoco_warnings_become_python_warnings_not_a_log_file(tmp_path):
    pytest.importorskip("mujoco")
    code = ("import warnings, numpy as np; from deep.envs import make_spec\n"
            "env = make_spec('hopper').make(); env.reset(seed=0)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    env.unwrapped.data.qpos[0] = np.nan\n"
            "    env.step(np.zeros(3))\n"
            "print(sum('MuJoCo:' in str(x.message) for x in w))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) >= 1 and not (tmp_path / "MUJOCO_LOG.TXT").exists()
