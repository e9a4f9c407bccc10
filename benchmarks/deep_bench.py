"""Where the time of the deep loop (Algorithm 2 with TRPO, one torch thread) goes, phase by phase, against
the floor of its arithmetic, and against the release before the fast loop (commit 1e74150) in the same run.

Phases (each call is timed; a phase's time excludes the phases nested in it, except that a value refresh
includes its own rollout and fit):

* real steps: ``Trainer.collect`` (simulator + policy on one row);
* model updates: ``Trainer.update_model`` without its value refreshes;
* value refreshes: ``Trainer.refresh_value`` (model rollout, lambda-returns, value fit);
* model rollouts: ``Trainer.model_rollout`` for the TRPO batches;
* TRPO: ``trpo_step`` plus the rest of ``update_policy`` (GAE, advantage normalization);
* value fit: ``fit_value`` after each TRPO update;
* other: normalizers, one-step error.

FLOPs count the networks' matrix products only (2 per multiply-add; a backward pass as two forward passes:
grad-input and grad-weight). The floor is the time those products take in this process, on this thread,
at the same shapes: every (rows, in, out) product is timed as ``F.linear`` (min over repeats) and the floor
is the sum over the phase's products of their times (FLOPs / measured throughput per shape); for real steps
the simulator's own time (``env.step`` with the same number of steps) is added to the floor.

Two size presets: ``default`` (``RunConfig``'s defaults) and ``authors`` (the authors' protocol built from
existing ``RunConfig`` fields: 10K real steps per iteration, 2000 model updates, a value refresh every 100 of
them on 4 x 1000-step model episodes, 800 TRPO updates on 4 x 1000-step model episodes with a 5-epoch value fit
of batch 64 after each). The authors' iteration is shortened by ``--authors-scale`` (fewer model and TRPO
updates at the same shapes) and projected to 200K real steps from the measured time per unit of each phase.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/deep_bench.py [--env halfcheetah] [--method ma_l1]
[--presets default authors] [--repeats 2] [--baseline /tmp/baseline_1e74150] [--markdown out.md]``.
The baseline tree is made with ``git archive 1e74150 deep modeladv tabular | tar -x -C DIR``; without it
(``--baseline ''``) only the current code is measured. ``--profile`` prints a cProfile of one iteration.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

PHASES = ("real steps", "model updates", "value refreshes", "model rollouts", "TRPO", "value fit", "other")

#: the sizes of the authors' protocol (deep.protocol, read from va_slbo) that set its arithmetic; the release
#: before the fast loop (the baseline) has these fields too
SIZE_FIELDS = ("n_real", "k_model", "value_refresh_every", "refresh_samples", "k_policy", "policy_samples",
               "rollout_envs", "value_epochs", "value_batch")


def _authors_sizes() -> dict:
    """Read from deep.protocol by the driver; a worker timing the baseline (which has no deep.protocol) gets
    them from the driver in DEEP_BENCH_AUTHORS."""
    if "DEEP_BENCH_AUTHORS" in os.environ:
        return json.loads(os.environ["DEEP_BENCH_AUTHORS"])
    from deep.protocol import config_overrides

    over = config_overrides("authors")
    return {k: over[k] for k in SIZE_FIELDS}


AUTHORS = _authors_sizes()
#: parts of the authors' protocol left out of the timed sizes, because the baseline has no field for them
AUTHORS_MISSING = ("model and TRPO updates interleaved in 20 rounds (`rounds`; the same counts)",
                   "OU exploration noise on real actions, the entropy bonus, the value-gradient clip and the model's "
                   "initialization (negligible arithmetic)")
REAL_STEPS_200K = 200_000


# ---------------------------------------------------------------------------------------------- worker
def _sizes(preset: str, scale: int) -> dict:
    if preset == "default":
        return {}
    d = dict(AUTHORS)
    d["k_model"] = max(1, AUTHORS["k_model"] // scale)
    d["k_policy"] = max(1, AUTHORS["k_policy"] // scale)
    return d


class _PhaseTimer:
    """Exclusive wall time per phase: a nested timed call's time goes to its own phase, not its caller's,
    except inside a value refresh, which keeps everything it calls."""

    def __init__(self):
        self.time = dict.fromkeys(PHASES, 0.0)
        self.calls: dict[str, list] = {p: [] for p in PHASES}
        self.stack: list[list] = []  # [phase, start, child time]

    def wrap(self, phase: str, fn, record=None):
        def timed(*a, **kw):
            if self.stack and self.stack[-1][0] == "value refreshes":
                return fn(*a, **kw)
            self.stack.append([phase, time.perf_counter(), 0.0])
            try:
                out = fn(*a, **kw)
            finally:
                ph, t0, child = self.stack.pop()
                dt = time.perf_counter() - t0
                self.time[ph] += dt - child
                if self.stack:
                    self.stack[-1][2] += dt
            if record is not None:
                self.calls[phase].append(record(a, kw, out))
            return out
        return timed


def _linear_time(rows: int, n_in: int, n_out: int, cache: dict) -> float:
    """Seconds of one product (rows, n_in) -> (rows, n_out) with bias, this thread: the faster of
    ``F.linear`` (weight (out, in)) and ``addmm`` with the weight stored transposed, min over repeats."""
    import torch
    key = (rows, n_in, n_out)
    if key not in cache:
        x, w, b = torch.randn(rows, n_in), torch.randn(n_out, n_in), torch.randn(n_out)
        wt = w.t().contiguous()
        reps = max(3, min(2000, int(2e7 / (2 * rows * n_in * n_out + 1))))
        best = float("inf")
        for _ in range(5):
            for f in (lambda: torch.nn.functional.linear(x, w, b), lambda: torch.addmm(b, x, wt)):
                t = time.perf_counter()
                for _ in range(reps):
                    f()
                best = min(best, (time.perf_counter() - t) / reps)
        cache[key] = best
    return cache[key]


def _net(widths) -> list[tuple[int, int]]:
    return list(zip(widths[:-1], widths[1:]))


def _cost(layers, rows: int, passes: float, count: int, cache: dict) -> tuple[float, float]:
    """(FLOPs, floor seconds) of ``count`` x ``passes`` forward-equivalent passes of a net on ``rows`` rows."""
    flops = sum(2.0 * rows * i * o for i, o in layers) * passes * count
    floor = sum(_linear_time(rows, i, o, cache) for i, o in layers) * passes * count
    return flops, floor


def _floors(cfg, spec, tr, calls: dict, sim_s_per_step: float) -> dict:
    """FLOPs and floor seconds per phase, from the calls the timer recorded."""
    try:
        from deep.objectives import METHOD_PARTS
    except ImportError:  # the baseline release spelled it METHODS
        from deep.objectives import METHODS as METHOD_PARTS
    cache: dict = {}
    S, A = spec.obs_dim, spec.act_dim
    keep = S - len(spec.position_dims)
    model = _net([keep + A, *cfg.model_hidden, S])
    policy = _net([S, *cfg.policy_hidden, A])
    value = _net([S, *cfg.value_hidden, 1])
    main, vps = METHOD_PARTS[cfg.method]
    h = tr.horizon
    out = {p: [0.0, 0.0] for p in PHASES}

    def add(phase, c):
        out[phase][0] += c[0]
        out[phase][1] += c[1]

    def rollout(phase, n):
        B = cfg.rollout_envs
        add(phase, _cost(model, B, 1, n // B, cache))
        add(phase, _cost(policy, B, 1, n // B, cache))

    def fit(phase, n):
        b = min(cfg.value_batch, n)
        full, rest = divmod(n, b)
        add(phase, _cost(value, b, 3, full * cfg.value_epochs, cache))
        if rest:
            add(phase, _cost(value, rest, 3, cfg.value_epochs, cache))

    for n in calls["real steps"]:
        add("real steps", _cost(policy, 1, 1, n, cache))
        out["real steps"][1] += n * sim_s_per_step
    for _ in calls["model updates"]:
        for _ in range(cfg.k_model):
            add("model updates", _cost(model, cfg.model_batch, 3 * (h if (main == "slbo" or vps) else 1), 1, cache))
            if main in ("ma_l1", "ma_vaml"):  # V at s' and at the prediction, gradient to the prediction
                add("model updates", _cost(value, cfg.model_batch, 1 + 2, 1, cache))
            if vps:
                add("model updates", _cost(value, cfg.model_batch * h, 2 + 2, 1, cache))
    for n in calls["value refreshes"]:
        rollout("value refreshes", n)
        add("value refreshes", _cost(value, n, 2, 1, cache))
        fit("value refreshes", n)
    for n in calls["model rollouts"]:
        rollout("model rollouts", n)
    for backtracks in calls["TRPO"]:
        N = cfg.policy_samples
        add("TRPO", _cost(value, N, 2, 1, cache))  # V(s), V(s') for GAE
        # gradient (forward + backward), cg_iters + 1 Fisher-vector products (forward-mode + reverse: 4),
        # one forward per line-search step
        add("TRPO", _cost(policy, N, 3 + 4 * (cfg.cg_iters + 1) + (backtracks + 1), 1, cache))
    for n in calls["value fit"]:
        fit("value fit", n)
    return out


def _sim_time(spec, n: int) -> float:
    """Seconds per real environment step with random actions (the simulator's share of a real step)."""
    import numpy as np
    env = spec.make()
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (n, spec.act_dim)).astype(np.float32)
    best = float("inf")
    for _ in range(3):  # min over repeats, as for the products
        env.reset(seed=0)
        t = time.perf_counter()
        for i, a in enumerate(acts):
            if env.step(a)[2]:
                env.reset(seed=i)
        best = min(best, (time.perf_counter() - t) / n)
    return best


def worker(args) -> dict:
    """Time ``--iterations`` iterations after one warm-up iteration; JSON of phase times (and floors)."""
    import torch

    import deep.algorithm as algorithm
    from deep.algorithm import Trainer
    from deep.config import make_config

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train_run does
    sizes = _sizes(args.preset, args.authors_scale)
    cfg = make_config(args.env, args.method, steps=10_000_000, seed=0, device=args.device, **sizes)
    tr = Trainer(cfg)
    timer = _PhaseTimer()
    T = type(tr)
    T.collect = timer.wrap("real steps", T.collect, lambda a, kw, o: a[1])
    T.update_model = timer.wrap("model updates", T.update_model, lambda a, kw, o: 1)
    T.refresh_value = timer.wrap("value refreshes", T.refresh_value, lambda a, kw, o: a[1])
    T.model_rollout = timer.wrap("model rollouts", T.model_rollout, lambda a, kw, o: a[1])
    T.update_policy = timer.wrap("TRPO", T.update_policy)
    algorithm.trpo_step = timer.wrap("TRPO", algorithm.trpo_step, lambda a, kw, o: o.backtracks)
    algorithm.fit_value = timer.wrap("value fit", algorithm.fit_value, lambda a, kw, o: a[2].shape[0])
    T.iterate = timer.wrap("other", T.iterate, lambda a, kw, o: 1)

    t_warm = time.perf_counter()
    tr.iterate()
    warm = time.perf_counter() - t_warm
    timer.time = dict.fromkeys(PHASES, 0.0)
    timer.calls = {p: [] for p in PHASES}
    n0 = tr.step
    t = time.perf_counter()
    for _ in range(args.iterations):
        tr.iterate()
    wall = time.perf_counter() - t
    res = {"code": os.environ.get("DEEP_BENCH_CODE", "current"), "preset": args.preset, "env": args.env,
           "method": args.method, "threads": torch.get_num_threads(), "real_steps": tr.step - n0, "wall_s": wall,
           "warmup_s": warm, "phase_s": timer.time, "calls": {p: len(c) for p, c in timer.calls.items()},
           "sizes": {k: getattr(cfg, k) for k in AUTHORS}}
    if args.floors:
        sim = _sim_time(tr.spec, 2000)
        res["floors"] = _floors(cfg, tr.spec, tr, timer.calls, sim)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        tr.iterate()
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        print(s.getvalue(), file=sys.stderr)
    return res


# ---------------------------------------------------------------------------------------------- driver
def _run_worker(code_dir: str | None, preset: str, args, floors: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = code_dir if code_dir else root
    env["DEEP_BENCH_CODE"] = "1e74150" if code_dir else "current"
    env["DEEP_BENCH_AUTHORS"] = json.dumps(AUTHORS)
    cmd = [sys.executable, __file__, "--worker", "--preset", preset, "--env", args.env, "--method", args.method,
           "--threads", str(args.threads), "--device", args.device, "--authors-scale", str(args.authors_scale),
           "--iterations", str(args.iterations if preset == "default" else args.authors_iterations)]
    if floors:
        cmd.append("--floors")
    if args.profile and not code_dir:
        cmd.append("--profile")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/tmp")
    if out.returncode:
        raise RuntimeError(f"worker failed ({code_dir or 'current'} {preset}):\n{out.stderr[-3000:]}")
    if args.profile and not code_dir:
        print(out.stderr[-6000:], file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    """Per phase and in total, the minimum over repeats (the run least slowed by other processes)."""
    best = dict(runs[0])
    best["wall_s"] = min(r["wall_s"] for r in runs)
    best["phase_s"] = {p: min(r["phase_s"][p] for r in runs) for p in PHASES}
    best["repeats"] = len(runs)
    return best


def _table(cur: dict, old: dict | None, scale_to: float, unit: str) -> list[str]:
    """Markdown rows: phase, time (per ``unit``), FLOPs, floor, time/floor, and the old time and new/old."""
    f = scale_to / cur["real_steps"]
    fo = scale_to / old["real_steps"] if old else 0.0
    head = f"| phase | time ({unit}) | GFLOP | floor (s) | time / floor |"
    sep = "|---|---:|---:|---:|---:|"
    if old:
        head += " 1e74150 time (s) | new / old |"
        sep += "---:|---:|"
    rows = [head, sep]
    tot = [0.0, 0.0, 0.0, 0.0]
    for p in PHASES:
        t = cur["phase_s"][p] * f
        flops, floor = (x * f for x in cur["floors"][p]) if "floors" in cur else (0.0, 0.0)
        row = f"| {p} | {t:.2f} | {flops / 1e9:.1f} | {floor:.2f} | " + (f"{t / floor:.1f} |" if floor else "– |")
        tot[0] += t
        tot[1] += flops
        tot[2] += floor
        if old:
            to = old["phase_s"][p] * fo
            tot[3] += to
            row += f" {to:.2f} | " + (f"{t / to:.2f} |" if to > 0.005 else "– |")
        rows.append(row)
    wall, wo = cur["wall_s"] * f, (old["wall_s"] * fo if old else 0.0)
    row = f"| **total (wall)** | **{wall:.2f}** | {tot[1] / 1e9:.1f} | {tot[2]:.2f} | {wall / tot[2]:.1f} |"
    if old:
        row += f" **{wo:.2f}** | **{wall / wo:.2f}** |"
    rows.append(row)
    return rows


def _projection(cur: dict) -> list[str]:
    """200K real steps under the authors' protocol from the shortened iteration's time per unit of each phase."""
    s = cur["sizes"]
    units_measured = {"real steps": cur["real_steps"], "model updates": cur["calls"]["model updates"] * s["k_model"],
                      "value refreshes": cur["calls"]["value refreshes"],
                      "model rollouts": cur["calls"]["model rollouts"], "TRPO": cur["calls"]["TRPO"],
                      "value fit": cur["calls"]["value fit"], "other": cur["calls"]["other"]}
    per10k = REAL_STEPS_200K / AUTHORS["n_real"]  # iterations in 200K real steps
    units_200k = {"real steps": REAL_STEPS_200K, "model updates": per10k * AUTHORS["k_model"],
                  "value refreshes": per10k * AUTHORS["k_model"] / AUTHORS["value_refresh_every"],
                  "model rollouts": per10k * AUTHORS["k_policy"], "TRPO": per10k * AUTHORS["k_policy"],
                  "value fit": per10k * AUTHORS["k_policy"], "other": per10k}
    rows = ["| phase | measured units | s per unit | units in 200K real steps | projected min | floor min |",
            "|---|---:|---:|---:|---:|---:|"]
    tot = tot_floor = 0.0
    for p in PHASES:
        u = units_measured[p]
        per = cur["phase_s"][p] / u if u else 0.0
        proj = per * units_200k[p] / 60
        fl = cur["floors"][p][1] / u * units_200k[p] / 60 if u and "floors" in cur else 0.0
        tot += proj
        tot_floor += fl
        rows.append(f"| {p} | {u:g} | {per:.4f} | {units_200k[p]:g} | {proj:.1f} | {fl:.1f} |")
    rows.append(f"| **total** | | | | **{tot:.1f}** | {tot_floor:.1f} |")
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="halfcheetah")
    p.add_argument("--method", default="ma_l1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--presets", nargs="+", default=["default", "authors"], choices=["default", "authors"])
    p.add_argument("--repeats", type=int, default=2, help="interleaved runs of old and new code; min taken")
    p.add_argument("--iterations", type=int, default=5, help="timed iterations at default sizes (5 = 10K steps)")
    p.add_argument("--authors-scale", type=int, default=40,
                   help="the authors' iteration shortened to 1/scale of its model and TRPO updates")
    p.add_argument("--authors-iterations", type=int, default=1)
    p.add_argument("--baseline", default="/tmp/baseline_1e74150",
                   help="tree of commit 1e74150 (git archive); '' to skip")
    p.add_argument("--baseline-authors", action="store_true", help="also time 1e74150 at the authors' sizes")
    p.add_argument("--markdown", default=None, help="write the tables to this file")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="default", help=argparse.SUPPRESS)
    p.add_argument("--floors", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        res = worker(args)
        print(json.dumps(res))
        return res

    baseline = args.baseline if args.baseline and Path(args.baseline, "deep").is_dir() else None
    if args.baseline and not baseline:
        print(f"baseline tree {args.baseline} not found: measuring the current code only", file=sys.stderr)
    lines = [f"Machine: {os.cpu_count()} CPU cores shared with other processes; torch threads {args.threads}; "
             f"{args.env} {args.method}; times: min over {args.repeats} interleaved repeats.", ""]
    results: dict = {}
    for preset in args.presets:
        cur_runs, old_runs = [], []
        with_old = baseline and (preset == "default" or args.baseline_authors)
        for r in range(args.repeats if (preset == "default" or with_old) else 1):
            if with_old:
                old_runs.append(_run_worker(baseline, preset, args, floors=False))
            cur_runs.append(_run_worker(None, preset, args, floors=(r == 0)))
        cur = _best(cur_runs)
        cur["floors"] = cur_runs[0]["floors"]
        old = _best(old_runs) if old_runs else None
        results[preset] = {"current": cur, "1e74150": old}
        if preset == "default":
            lines.append(f"### Default sizes ({cur['sizes']}), seconds per 10K real steps")
            lines += _table(cur, old, 10_000, "s per 10K real steps")
        else:
            lines.append(f"### The authors' protocol ({AUTHORS}), one iteration shortened to 1/{args.authors_scale} "
                         f"of its model and TRPO updates ({cur['sizes']['k_model']} and {cur['sizes']['k_policy']}), "
                         "seconds as measured")
            lines += _table(cur, old, cur["real_steps"], "s, as measured")
            lines += ["", "Projection to 200K real steps (time per unit of each phase x units in 200K steps):", ""]
            lines += _projection(cur)
            lines += ["", "Not in RunConfig, so not in these sizes: " + "; ".join(AUTHORS_MISSING) + "."]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return results


if __name__ == "__main__":
    main()
