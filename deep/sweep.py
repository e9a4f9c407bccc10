"""``modeladv sweep``: many ``train`` runs, sequentially or in N local processes, skipping finished ones.

Grids: ``--envs``, ``--methods``, ``--seeds`` (count), ``--steps``; order is seed-major inside each env
(all methods for seed 0, then seed 1, ...) so a partial sweep already compares every method. ``--stages``
(e.g. ``50000,200000``) runs the whole grid at the first budget before extending every run to the next
(runs resume from their checkpoints). ``--alpha-sweep`` is Appendix C's protocol: 9 log-spaced alpha values
(times 3 seeds) for one (env, method).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from deep.config import ENV_NAMES, METHOD_NAMES

__all__ = ["configure", "run", "plan", "ALPHA_GRIDS"]

#: Appendix C: 9 log-scaled values per method (lower scale for VAML, whose squared values are larger)
ALPHA_GRIDS = {
    "ma-l1": [10.0 ** -k for k in range(1, 10)],
    "ma-l1-vps": [10.0 ** -k for k in range(1, 10)],
    "ma-vaml": [10.0 ** -k for k in range(5, 14)],
    "ma-vaml-vps": [10.0 ** -k for k in range(5, 14)],
}


def _csv(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--envs", default="pendulum,cartpole,acrobot")
    parser.add_argument("--methods", default=",".join(METHOD_NAMES))
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--stages", default="", help="comma-separated step budgets run in turn")
    parser.add_argument("--alpha-sweep", action="store_true", help="Appendix C: 9 log-scaled alphas x seeds")
    parser.add_argument("--procs", type=int, default=1, help="local processes running at once")
    parser.add_argument("--root", default="runs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--value-norm", action="store_true", help="ablation passed to every run (see train)")
    parser.add_argument("--mle-weight", type=float, default=None, help="ablation passed to every run (see train)")
    parser.add_argument("--value-norm-min-std", type=float, default=None, help="passed to every run (see train)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")


def plan(args: argparse.Namespace) -> list[list[str]]:
    """The ``modeladv train`` argument lists of the sweep, in run order."""
    envs, methods = _csv(args.envs), _csv(args.methods)
    for e in envs:
        if e not in ENV_NAMES:
            raise ValueError(f"unknown env {e!r}; valid: {list(ENV_NAMES)}")
    for m in methods:
        if m not in METHOD_NAMES:
            raise ValueError(f"unknown method {m!r}; valid: {list(METHOD_NAMES)}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    stages = [int(x) for x in _csv(args.stages)] or [args.steps]
    if any(s < 0 for s in stages):
        raise ValueError(f"step budgets must be non-negative; got {stages}")
    cmds = []
    for steps in stages:
        for env in envs:
            for seed in range(args.seeds):
                for method in methods:
                    base = ["--env", env, "--method", method, "--seed", str(seed), "--steps", str(steps),
                            "--root", args.root, "--device", args.device, "--no-progress"]
                    if getattr(args, "value_norm", False):
                        base.append("--value-norm")
                    for opt in ("mle_weight", "value_norm_min_std"):
                        if getattr(args, opt, None) is not None:
                            base += ["--" + opt.replace("_", "-"), repr(getattr(args, opt))]
                    if args.alpha_sweep:
                        if method not in ALPHA_GRIDS:
                            raise ValueError(f"--alpha-sweep needs a value-aware method; got {method!r}")
                        cmds += [base + ["--alpha", repr(a)] for a in ALPHA_GRIDS[method]]
                    else:
                        cmds.append(base)
    return cmds


def run(args: argparse.Namespace) -> int:
    if args.procs < 1:
        raise ValueError(f"--procs must be >= 1; got {args.procs}")
    cmds = plan(args)
    exe = [sys.executable, "-m", "tabular.cli", "train"]
    if args.dry_run:
        for c in cmds:
            print("modeladv train " + " ".join(c))
        return 0
    running: list[tuple[subprocess.Popen, list[str]]] = []
    failed = 0
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    import os
    env = {**os.environ, **env}
    for i, c in enumerate(cmds):
        reached = _reached(c)
        if reached is not None:
            print(f"[{i + 1}/{len(cmds)}] skip (already at step {reached}): modeladv train {' '.join(c)}", flush=True)
            continue
        while len(running) >= args.procs:
            running, failed = _reap(running, failed)
        print(f"[{i + 1}/{len(cmds)}] modeladv train {' '.join(c)}", flush=True)
        running.append((subprocess.Popen(exe + c, env=env), c))
    while running:
        running, failed = _reap(running, failed)
    print(f"sweep finished: {len(cmds)} runs, {failed} failed", flush=True)
    return 1 if failed else 0


def _reached(train_args: list[str]) -> int | None:
    """The last logged step of the run ``train_args`` names if it is already beyond their ``--steps`` (an
    earlier stage of a staged sweep whose runs were extended since), else None."""
    from deep import cli
    from deep.config import run_path
    from tabular.runs import read_metrics

    p = argparse.ArgumentParser()
    cli.configure(p)
    cfg = cli.config_from_args(p.parse_args(train_args))
    path = run_path(train_args[train_args.index("--root") + 1], cfg)
    if not (path / "metrics.csv").exists():
        return None
    steps = read_metrics(path).get("step", [])
    return int(steps[-1]) if len(steps) and steps[-1] > cfg.steps else None


def _reap(running, failed):
    import time
    while True:
        still = []
        for p, c in running:
            rc = p.poll()
            if rc is None:
                still.append((p, c))
            elif rc != 0:
                print(f"run failed (exit {rc}): {' '.join(c)}", flush=True)
                failed += 1
        if len(still) < len(running):
            return still, failed
        time.sleep(1.0)
