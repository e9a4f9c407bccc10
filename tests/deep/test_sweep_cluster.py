"""modeladv sweep on a real two-node Ray cluster over loopback (slow): trials on both nodes, Ray's token
authentication named in one line, a worker node killed mid-sweep named in one line, and the rerun resuming the lost
trial to exactly the numbers of an uninterrupted run.

Each node is its own ``ray start --block`` in its own session with a private ``--temp-dir`` and free ports; every
process a node starts is stopped by its PID (found through the session id) in a ``finally``, never ``ray stop``,
which would stop other users' clusters on the same machine.
"""

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from lab.rundir import RunDir, find_runs, read_metrics  # noqa: E402
from tests.deep.test_sweep import FLAGS, _ray_processes  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE = str(100 * 1024 * 1024)  # Ray's minimum is 75 MiB; a 2-core, few-GiB machine runs two nodes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One ``ray start --block`` in its own session; :meth:`stop` ends every process of that session by PID."""

    def __init__(self, args: list[str], temp_dir: Path, log: Path, env: dict):
        ports = {f: str(_free_port()) for f in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                                "--runtime-env-agent-port", "--metrics-export-port")}
        self.log, self.temp_dir = log, temp_dir
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [RAY, "start", *args, "--num-cpus", "1", "--object-store-memory", OBJECT_STORE,
                 "--temp-dir", str(temp_dir), "--node-ip-address", "127.0.0.1", "--include-log-monitor", "false",
                 "--disable-usage-stats", *[x for kv in ports.items() for x in kv], "--block"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_started(self, timeout: float = 180.0) -> None:
        t0 = time.monotonic()
        while "Ray runtime started" not in self.log.read_text(errors="replace"):
            assert self.proc.poll() is None, f"ray start exited: {self.log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() - t0 < timeout, f"ray start hangs: {self.log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.3)

    def node_id(self) -> str:
        """The node id its raylet logged at start-up."""
        import re

        log = self.temp_dir / "session_latest" / "logs" / "raylet.out"
        return re.search(r"Setting node ID node_id=([0-9a-f]+)", log.read_text(errors="replace")).group(1)

    def runs(self) -> list[Path]:
        """Run directories whose lock a process of this node holds open (the runs its trials are training)."""
        out = set()
        for pid in self.pids():
            try:
                links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:  # the process ended, or its fds are not ours to read
                continue
            out.update(Path(link).parent for link in links if link.endswith("/lock"))
        return sorted(out)

    def pids(self) -> list[int]:
        return _ray_processes(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Signal every process of the node's session (SIGKILL after ``grace`` s) and wait until none is left."""
        for s, wait in ((sig, grace), (signal.SIGKILL, 30.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, s)
                except ProcessLookupError:
                    pass
            t0 = time.monotonic()
            while self.pids() and time.monotonic() - t0 < wait:
                if self.proc.poll() is None:
                    try:
                        self.proc.wait(0.2)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.2)
            if not self.pids():
                break
        self.proc.wait(10)
        assert not self.pids(), f"processes of the node left running: {self.pids()}"


@contextmanager
def two_nodes(tmp_path: Path, env: dict):
    """A head node and one worker node, one CPU each, on 127.0.0.1; yields (address, head, worker)."""
    port = _free_port()
    with ExitStack() as stack:
        # Ray's socket paths live under --temp-dir and must stay below AF_UNIX's 107 bytes: a short folder in /tmp
        short = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ray", dir="/tmp")))
        # the Ray Client server (10001 by default) runs only where ray[client] (grpcio) is installed
        client = ["--ray-client-server-port", str(_free_port())] if importlib.util.find_spec("grpc") else []
        head = Node(["--head", "--port", str(port), "--dashboard-port", str(_free_port()), *client,
                     "--include-dashboard", "false"], short / "h", tmp_path / "head.log", env)
        stack.callback(head.stop)
        head.wait_started()
        worker = Node(["--address", f"127.0.0.1:{port}"], short / "w", tmp_path / "worker.log", env)
        stack.callback(worker.stop)
        worker.wait_started()
        yield f"127.0.0.1:{port}", head, worker


def _env(home: Path, **extra) -> dict:
    """The environment of the nodes and the driver: a private HOME (Ray writes ~/.ray there) and token
    authentication on, as Ray 2.60 turns it on by itself once ~/.ray/auth_token exists."""
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0",
            **extra}


def _sweep(env: dict, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modeladv.cli", "sweep", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _results(root: Path) -> list[dict]:
    """The last result Tune recorded per trial (its node id, host and PID are what :func:`deep.sweep._trial`
    reports)."""
    import json

    out = []
    for f in sorted((root / "ray").glob("sweep_*/*/result.json")):
        lines = f.read_text().strip().splitlines()
        if lines:
            out.append(json.loads(lines[-1]))
    return out


def _reference(root: Path, method: str, steps: int, env: dict) -> Path:
    """The uninterrupted run, by ``modeladv train`` in a fresh process like every trial: a run's last digits are
    reproducible between fresh processes, not inside this one after it ran a cluster (there a reference differed
    in the 7th digit from its first row on)."""
    out = subprocess.run([sys.executable, "-m", "modeladv.cli", "train", "--env", "pendulum-mbbl", "--method", method,
                          "--steps", str(steps), *FLAGS, "--threads", "1", "--no-progress", "--root", str(root)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    (path,) = [p for c, p in find_runs(root / "deep") if c["method"] == method]
    return path


def _same_metrics(a: Path, b: Path) -> None:
    x, y = read_metrics(a), read_metrics(b)
    assert sorted(x) == sorted(y)
    for key in x:
        if key != "wall_s":
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def _has_token_auth() -> bool:
    try:
        from ray._raylet import AuthenticationTokenLoader  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_sweep_runs_on_both_nodes_and_a_driver_without_the_token_gets_one_line(tmp_path):
    token = secrets.token_hex(32)
    env = _env(tmp_path / "home", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    root = tmp_path / "runs"
    args = ["--envs", "pendulum-mbbl", "--methods", "mle", "ma_l1", "--seeds", "1", "--steps", "300", *FLAGS,
            "--root", str(root)]
    with two_nodes(tmp_path, env) as (address, head, worker):
        out = _sweep(env, *args, "--address", address)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "stage 300: 2 trials done" in out.stdout and "on 2 nodes" in out.stdout, out.stdout
        results = _results(root)
        # one CPU per node and two trials at once: one trial on each node
        assert sorted(r["node"] for r in results) == sorted([head.node_id(), worker.node_id()])
        for cfg_method in ("mle", "ma_l1"):
            ref = _reference(tmp_path / "ref", cfg_method, 300, env)
            (path,) = [p for c, p in find_runs(root / "deep") if c["method"] == cfg_method]
            assert RunDir(path).done_position() == 300
            _same_metrics(ref, path)
        if _has_token_auth():
            # a driver that sends no token (RAY_AUTH_MODE unset, as in a fresh shell): one line naming the fix,
            # instead of 20 s of InvalidAuthToken warnings (one per retry) ending in "could not start or reach Ray"
            bare = _env(tmp_path / "home2")
            out = _sweep(bare, *args, "--address", address)
            err = out.stderr.strip().splitlines()
            assert out.returncode == 2 and len(err) == 1, out.stderr[-3000:]
            assert "requires token authentication" in err[0] and "set RAY_AUTH_MODE=token" in err[0]
            # the right mode with another token: named as the wrong token
            out = _sweep(_env(tmp_path / "home2", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token[::-1]), *args,
                         "--address", address)
            err = out.stderr.strip().splitlines()
            assert out.returncode == 2 and len(err) == 1 and "is not the cluster's" in err[0], out.stderr[-3000:]


def test_a_worker_node_killed_mid_sweep_is_one_line_and_the_rerun_resumes_exactly(tmp_path):
    steps = 2000
    env = _env(tmp_path / "home", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    root = tmp_path / "runs"
    args = ["--envs", "pendulum-mbbl", "--methods", "mle", "ma_l1", "--seeds", "1", "--steps", str(steps), *FLAGS,
            "--checkpoint-every", "1", "--root", str(root)]
    with two_nodes(tmp_path, env) as (address, head, worker):
        proc = subprocess.Popen([sys.executable, "-m", "modeladv.cli", "sweep", *args, "--address", address],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        try:
            t0 = time.monotonic()
            # the run the worker node trains (its trial holds the run's lock open), past its second checkpoint
            while not ((mine := worker.runs()) and (mine[0] / "metrics.csv").exists()
                       and len(read_metrics(mine[0]).get("step", [])) >= 2):
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                assert time.monotonic() - t0 < 300, "no trial reached two iterations on the worker node"
                time.sleep(0.1)
            (lost,) = mine
            worker.stop(signal.SIGKILL)  # the node dies with its trial, as a machine lost from the cluster
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
        assert lines[0].startswith("modeladv sweep: error: 1 of 2 trials failed: pendulum-mbbl ")
        assert "rerun the same command to resume them" in lines[0]
        runs = {c["method"]: p for c, p in find_runs(root / "deep")}
        (method,) = [m for m, p in runs.items() if p.resolve() == lost.resolve()]
        assert f"pendulum-mbbl {method} seed 0 alpha " in lines[0] and f"({runs[method]})" in lines[0]
        assert not RunDir(lost).is_done() and 2 <= len(read_metrics(lost)["step"]) < steps // 100
        # the rerun, on the head node alone, resumes the lost trial from its checkpoint and skips the finished one
        out = _sweep(env, *args, "--address", address)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"stage {steps}: 2 trials done" in out.stdout and "on 1 node" in out.stdout
    for method, path in runs.items():
        assert RunDir(path).done_position() == steps
        _same_metrics(_reference(tmp_path / "ref", method, steps, env), path)
