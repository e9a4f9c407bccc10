"""``modeladv sweep``: many Algorithm-2 runs as Ray Tune trials, finished ones skipped, stage by stage.

Each trial calls our own trainer (:func:`deep.algorithm.train_run`) in its own run directory, with one torch
thread, so a killed sweep rerun skips finished trials and resumes partial ones exactly from their checkpoints;
Ray Tune only schedules them (on a local Ray started for the sweep, or on a cluster with ``address``). Actors are
reused between trials. Ray is the ``sweep`` extra (``pip install -e '.[sweep]'``; ``dev`` includes it).

The grid (seeds x envs x methods) is ordered seed-major (every env and method for the first seed, then the
next), so a partial sweep already compares every method on every env. With several step budgets (``stages``) the whole grid runs at the first before any run is
extended to the next. The Appendix C protocol (``alpha_sweep``) runs 9 log-spaced alphas per value-aware method.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from deep.config import RunConfig
from lab.pool import Interrupted

__all__ = ["ALPHA_GRIDS", "plan", "check_address", "run_plan", "RAY_MISSING"]

#: Appendix C: 9 log-scaled values per method (lower scale for VAML, whose squared values are larger)
ALPHA_GRIDS = {
    "ma_l1": [10.0 ** -k for k in range(1, 10)],
    "ma_l1_vps": [10.0 ** -k for k in range(1, 10)],
    "ma_vaml": [10.0 ** -k for k in range(5, 14)],
    "ma_vaml_vps": [10.0 ** -k for k in range(5, 14)],
}

RAY_MISSING = "modeladv sweep runs its trials through Ray Tune; install the sweep extra: pip install -e '.[sweep]'"


def plan(envs: Sequence[str], methods: Sequence[str], seeds: int, stages: Sequence[int], alpha_sweep: bool = False,
         first_seed: int = 0, alphas: dict[tuple[str, str], float] | None = None, **overrides: Any) -> list[RunConfig]:
    """The validated run configs of the sweep, in run order (stage by stage).

    Args:
        seeds: how many seeds, ``first_seed .. first_seed + seeds - 1``.
        alpha_sweep: Appendix C: every alpha of :data:`ALPHA_GRIDS` for each method.
        alphas: ``(env, method) -> alpha`` to use instead of Table 1's (e.g. a sweep's selection).
    """
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
    cfgs = []
    for steps in stages:
        for seed in range(first_seed, first_seed + seeds):
            for env in envs:
                for method in methods:
                    grid = ALPHA_GRIDS[method] if alpha_sweep else [(alphas or {}).get((env, method))]
                    cfgs += [RunConfig(env=env, method=method, seed=seed, steps=steps, alpha=a, **overrides)
                             for a in grid]
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


def _trial(config: dict) -> None:
    """One Tune trial: our trainer in its own run directory, one torch thread; reports the final return."""
    import torch
    from ray import tune

    from deep.algorithm import train_run
    from lab.rundir import read_metrics

    torch.set_num_threads(1)
    cfg = RunConfig.from_dict(config["cfg"])
    path = train_run(cfg, root=config["root"], progress=False, wait=config["wait"])
    m = read_metrics(path)
    tune.report({"step": float(m["step"][-1]), "return": float(m["return"][-1]), "run": str(path)})


def run_plan(cfgs: Sequence[RunConfig], root: str | os.PathLike, cpus: int | None = None, address: str | None = None,
             wait: bool = False) -> int:
    """Run ``cfgs`` as Ray Tune trials, one stage (step budget) at a time; returns 0.

    Raises:
        ValueError: Ray is not installed, the cluster cannot be reached, or a trial failed on bad input.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    if address:
        check_address(address)
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C is ours: one line, exit 130
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    root = Path(root).absolute()
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError) as e:
        raise ValueError(f"could not start or reach Ray: {str(e).splitlines()[0]}") from None
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
            if results.errors:
                first = str(results.errors[0]).strip().splitlines()
                raise RuntimeError(f"{len(results.errors)} of {len(trials)} trials failed; first: "
                                   f"{first[-1] if first else '?'}")
            print(f"stage {steps}: {len(trials)} trials done under {root / 'deep'}/", flush=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        ray.shutdown()
    return 0
