"""``modeladv sweep``: many Algorithm-2 runs as Ray Tune trials, finished ones skipped, stage by stage.

Each trial calls our own trainer (:func:`deep.algorithm.train_run`) in its own run directory, with one torch
thread, so a killed sweep rerun skips finished trials and resumes partial ones exactly from their checkpoints;
Ray Tune only schedules them (on a local Ray started for the sweep, or on a cluster with ``address``). Actors are
reused between trials. Ray is the ``sweep`` extra (``pip install -e '.[sweep]'``; ``dev`` includes it).

The grid (seeds x envs x methods) is ordered seed-major (every env and method for the first seed, then the
next), so a partial sweep already compares every method on every env. With several step budgets (``stages``) the
whole grid runs at the first before any run is extended to the next. The Appendix C protocol (``alpha_sweep``)
runs 9 log-spaced alphas per value-aware method.

On a cluster every node needs this package and the driver's absolute run root (a shared filesystem): trials write
their run directories there. A cluster's token authentication (Ray 2.60 turns it on once ``~/.ray/auth_token``
exists) is checked before ``ray.init``, which would retry for 20 s and name no cause; trials lost with their node
end the stage in one line naming them, and rerunning resumes them from their checkpoints (docs/site/cluster.md).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from deep.config import RunConfig, run_dir
from lab.pool import Interrupted
from lab.rundir import config_hash

__all__ = ["ALPHA_GRIDS", "plan", "check_address", "check_auth", "auth_hint", "token_source", "run_plan",
           "failed_trials_message", "wait_for_root", "TrialsFailed", "CLUSTER_DOC", "RAY_MISSING"]

#: Appendix C: 9 log-scaled values per method (lower scale for VAML, whose squared values are larger)
ALPHA_GRIDS = {
    "ma_l1": [10.0 ** -k for k in range(1, 10)],
    "ma_l1_vps": [10.0 ** -k for k in range(1, 10)],
    "ma_vaml": [10.0 ** -k for k in range(5, 14)],
    "ma_vaml_vps": [10.0 ** -k for k in range(5, 14)],
}

#: the page with the cluster recipe, named by the errors below
CLUSTER_DOC = "docs/site/cluster.md"
RAY_MISSING = "modeladv sweep runs its trials through Ray Tune; install the sweep extra: pip install -e '.[sweep]'"


def plan(envs: Sequence[str], methods: Sequence[str], seeds: int, stages: Sequence[int], alpha_sweep: bool = False,
         first_seed: int = 0, alphas: dict[tuple[str, str], float] | None = None, cells: Sequence[str] = (),
         **overrides: Any) -> list[RunConfig]:
    """The validated run configs of the sweep, in run order (stage by stage).

    Args:
        seeds: how many seeds, ``first_seed .. first_seed + seeds - 1``.
        alpha_sweep: Appendix C: every alpha of :data:`ALPHA_GRIDS` for each method.
        alphas: ``(env, method) -> alpha`` to use instead of Table 1's (e.g. a sweep's selection).
        cells: the ablation's cells (:data:`deep.protocol.CELLS`), each run with its fields on top of
            ``overrides``; a cell that gives some (env, method) the config of an earlier cell (``reward_term``
            on the SLBO tasks or with MLE) is that run, planned once, and a cell that sets only fields the
            method never reads (``refresh_timing`` with MLE: ``deep.protocol.inert_fields``) is its ``ours``
            run. Empty: ``overrides`` alone.
    """
    from deep.protocol import cell_overrides, changes_run, ours_defaults

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer; got {seeds!r}")
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or first_seed < 0:
        raise ValueError(f"first_seed must be a non-negative integer; got {first_seed!r}")
    if not stages:
        raise ValueError("give at least one step budget")
    if alpha_sweep:
        bad = [m for m in methods if m not in ALPHA_GRIDS]
        if bad:
            raise ValueError(f"the alpha sweep needs value-aware methods ({', '.join(ALPHA_GRIDS)}); got {bad[0]!r}")
    cell_sets = [cell_overrides(c) for c in cells] or [{}]
    defaults = ours_defaults()
    given = {k for k, v in overrides.items() if k in defaults and v != defaults[k]}
    for c, fields in zip(cells, cell_sets):
        clash = sorted(set(fields) & given)
        if clash:
            raise ValueError(f"cell {c!r} sets {', '.join(clash)}, also given for the whole sweep; give one")
    cfgs, seen = [], set()
    for steps in stages:
        for seed in range(first_seed, first_seed + seeds):
            for env in envs:
                for method in methods:
                    grid = ALPHA_GRIDS[method] if alpha_sweep else [(alphas or {}).get((env, method))]
                    for fields in cell_sets:
                        if cells and not changes_run(env, method, fields):
                            fields = {}
                        for a in grid:
                            cfg = RunConfig(env=env, method=method, seed=seed, steps=steps, alpha=a,
                                            **{**overrides, **fields})
                            key = (config_hash(cfg.identity()), seed, steps)  # its run directory
                            if key not in seen:
                                seen.add(key)
                                cfgs.append(cfg)
    return cfgs


def check_address(address: str, timeout: float = 10.0) -> None:
    """A Ray cluster at ``address`` (``host:port`` or ``ray://host:port``) accepts a connection within
    ``timeout`` seconds; ``ValueError`` otherwise (``auto`` is left to Ray)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if not parts.hostname or not parts.port:
        raise ValueError(f"--address must be host:port or ray://host:port; got {address!r}")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"no Ray cluster answers at {address} within {timeout:g} s ({e.strerror or e})") from None


#: where Ray 2.60 reads a token, in its order: the variable, the file it names, the default file
TOKEN_PLACES = "RAY_AUTH_TOKEN, the file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token"
_AUTH_SIGNS = ("InvalidAuthToken", "Unauthenticated", "AuthenticationError", "authentication token")


def token_source(environ: dict | None = None, home: str | os.PathLike | None = None) -> str | None:
    """Where Ray would take this process's token from, in its own precedence; None when there is none.

    ``RAY_AUTH_TOKEN`` (non-empty), else the file ``RAY_AUTH_TOKEN_PATH`` names, else ``~/.ray/auth_token``.

    Raises:
        ValueError: ``RAY_AUTH_TOKEN_PATH`` names a file that does not exist (Ray aborts the process on it).
    """
    environ = os.environ if environ is None else environ
    if environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    if environ.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(environ["RAY_AUTH_TOKEN_PATH"])
        if not path.is_file():
            raise ValueError(f"RAY_AUTH_TOKEN_PATH names {path}, which does not exist")
        return str(path)
    default = Path(home if home is not None else Path.home()) / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def auth_hint(address: str, error: str, environ: dict | None = None,
              home: str | os.PathLike | None = None) -> str | None:
    """The one-line fix when ``error`` (a failed connection's text) is the cluster refusing this process's token;
    None when it is about something else.

    Ray sends a token to an explicit address only with ``RAY_AUTH_MODE=token`` set (it never sends one found in
    ``~/.ray/auth_token`` to an address it was given), and every node must hold the head node's token.
    """
    if not any(sign in error for sign in _AUTH_SIGNS):
        return None
    environ = os.environ if environ is None else environ
    try:
        source = token_source(environ, home)
    except ValueError as e:
        source, missing = None, str(e)
    else:
        missing = f"no token was found in {TOKEN_PLACES}"
    if environ.get("RAY_AUTH_MODE", "").lower() != "token":
        fix = "set RAY_AUTH_MODE=token here" + (
            f": Ray then sends the token in {source}, which must be the head node's" if source
            else f" and put the head node's token in one of {TOKEN_PLACES}")
    elif source is None:
        fix = f"RAY_AUTH_MODE=token is set but {missing}: put the head node's token there"
    else:
        fix = f"the token in {source} is not the cluster's: the driver and every node need the head node's token"
    return f"the Ray cluster at {address} requires token authentication: {fix} (see {CLUSTER_DOC})"


@contextmanager
def _log_level(name: str, level: int):
    """Logger ``name`` at ``level`` inside the block."""
    log = logging.getLogger(name)
    old = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(old)


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (Ray's C++ client logs every refused connection there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_auth(address: str) -> None:
    """Connect to the cluster's GCS at ``address`` as ``ray.init`` would, once: ``ValueError`` with the fix
    (:func:`auth_hint`) when it refuses this process's token, or with the first line of any other failure.

    ``ray.init`` retries a refused connection for 20 s and reports only "Failed to connect"; this takes
    milliseconds. ``auto`` and ``ray://`` (Ray Client) addresses are left to Ray.
    """
    if address == "auto" or "://" in address:
        return
    try:
        from ray._raylet import GcsClient
    except ImportError:  # a Ray without this client has no token authentication either
        return
    # Ray's client aborts the process (not an exception) in token mode without a token: say so first
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" and token_source() is None:
        raise ValueError(auth_hint(address, "AuthenticationError"))
    try:
        with _quiet_stderr():
            GcsClient(address=address)
    except Exception as e:  # noqa: BLE001 -- Ray raises RpcError, AuthenticationError, RuntimeError...
        text = f"{type(e).__name__}: {e}"
        raise ValueError(auth_hint(address, text) or f"could not reach Ray at {address}: {text.splitlines()[0]}") \
            from None


class TrialsFailed(ValueError):
    """Trials of a stage raised or were lost with their node. Their run directories keep every checkpoint, so
    rerunning the sweep resumes them; a ValueError, so the command line prints one line and exits 2."""


def _one_line(error: BaseException | str, limit: int = 300) -> str:
    """The last line of an error (a trial's traceback ends with its exception), with its type when it lacks one;
    a trial's own exception (Ray's ``RayTaskError.cause``) rather than Ray's wrapper."""
    if isinstance(error, BaseException) and isinstance(getattr(error, "cause", None), BaseException):
        error = error.cause
    lines = str(error).strip().splitlines()
    last = lines[-1].strip() if lines else ""
    if not isinstance(error, str) and not re.match(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b", last):
        last = f"{type(error).__name__}: {last}" if last else type(error).__name__
    return last if len(last) <= limit else last[:limit - 3] + "..."


def failed_trials_message(failed: Sequence[tuple[RunConfig, str | os.PathLike, BaseException | str]], total: int,
                          shown: int = 3) -> str:
    """One line: how many trials failed, which (env, method, seed, alpha and run directory, the first ``shown``),
    the first error, and that rerunning resumes them."""
    names = [f"{c.env} {c.method} seed {c.seed} alpha {c.alpha:g} ({path})" for c, path, _ in failed[:shown]]
    if len(failed) > shown:
        names.append(f"and {len(failed) - shown} more")
    return (f"{len(failed)} of {total} trials failed: {'; '.join(names)}; first error: {_one_line(failed[0][2])}; "
            f"rerun the same command to resume them from their checkpoints")


def wait_for_root(root: str | os.PathLike, timeout: float = 60.0, poll: float = 1.0) -> None:
    """The driver's run root exists on this node; ``ValueError`` naming the node after ``timeout`` s otherwise.

    Without a shared filesystem a trial would make its own ``root`` on its node's disk, and the sweep's runs would
    be split over machines; NFS shows a directory new to another client within its attribute-cache time (<= 60 s).
    """
    t0 = time.monotonic()
    while not Path(root).is_dir():
        if time.monotonic() - t0 >= timeout:
            raise ValueError(f"run root {root} does not exist on node {socket.gethostname()}: every node needs the "
                             f"driver's run root, on a shared filesystem ({CLUSTER_DOC})")
        time.sleep(poll)


def _trial(config: dict) -> None:
    """One Tune trial: our trainer in its own run directory, one torch thread; reports the final return."""
    import ray
    import torch
    from ray import tune

    from deep.algorithm import train_run
    from lab.rundir import read_metrics

    torch.set_num_threads(1)
    wait_for_root(config["root"])
    cfg = RunConfig.from_dict(config["cfg"])
    path = train_run(cfg, root=config["root"], progress=False, wait=config["wait"])
    m = read_metrics(path)
    tune.report({"step": float(m["step"][-1]), "return": float(m["return"][-1]), "run": str(path),
                 "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()})


def run_plan(cfgs: Sequence[RunConfig], root: str | os.PathLike, cpus: int | None = None, address: str | None = None,
             wait: bool = False) -> int:
    """Run ``cfgs`` as Ray Tune trials, one stage (step budget) at a time; returns 0.

    Raises:
        ValueError: Ray is not installed, the cluster cannot be reached or refuses this process's token.
        TrialsFailed: trials raised or were lost with their node (a ValueError; rerunning resumes them).
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    if address:
        check_address(address)
        check_auth(address)
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C is ours: one line, exit 130
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)  # before any trial looks for it (wait_for_root)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:  # a Ray of its own: its token (Ray's default, in ~/.ray/auth_token) needs no word to the user
            with _log_level("ray._private.authentication.authentication_token_setup", logging.ERROR):
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as e:  # noqa: BLE001 -- only connection failures and Ray's AuthenticationError become a line
        hint = auth_hint(address, f"{type(e).__name__}: {e}") if address else None
        if not (hint or isinstance(e, (ConnectionError, RuntimeError))):
            raise
        raise ValueError(hint or f"could not start or reach Ray: {str(e).splitlines()[0]}") from None
    # a signal must not raise inside Ray's own code: it is recorded, Tune is told to stop (Stopper.stop_all),
    # and Interrupted is raised once fit() has returned; a second signal raises at once
    received: list[int] = []

    def on_signal(signum, frame):
        if received:
            raise Interrupted(signum)
        received.append(signum)

    class _StopOnSignal(tune.Stopper):
        def __call__(self, trial_id, result):
            return bool(received)

        def stop_all(self):
            return bool(received)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Tune logs every failed trial's traceback; TrialsFailed names them in one line instead
        with _log_level("ray.tune", logging.CRITICAL):
            for steps in dict.fromkeys(c.steps for c in cfgs):
                trials = [c.to_dict() for c in cfgs if c.steps == steps]
                tuner = tune.Tuner(
                    tune.with_resources(_trial, {"cpu": 1}),
                    param_space={"cfg": tune.grid_search(trials), "root": str(root), "wait": wait},
                    tune_config=tune.TuneConfig(reuse_actors=True),
                    run_config=tune.RunConfig(storage_path=str(root / "ray"), name=f"sweep_{steps}_{time.time_ns()}",
                                              stop=_StopOnSignal(), verbose=0))
                results = tuner.fit()
                if received:
                    raise Interrupted(received[0])
                lost = [(RunConfig.from_dict(r.config["cfg"]), r.error) for r in results if r.error is not None]
                failed = [(c, run_dir(root, c).path, error) for c, error in lost]
                if failed:
                    raise TrialsFailed(failed_trials_message(failed, len(trials)))
                nodes = {r.metrics.get("node") for r in results if r.metrics}
                print(f"stage {steps}: {len(trials)} trials done under {root / 'deep'}/ "
                      f"on {len(nodes)} node{'s' if len(nodes) != 1 else ''}", flush=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        ray.shutdown()
    return 0
