"""Speed of the deep core on Pendulum MA-L1 (one torch thread): real env steps/s, model-training steps/s,
TRPO updates/s, and wall time per 10K real steps of a full Algorithm-2 iteration; ``--profile`` adds a
cProfile of one iteration (top functions by cumulative and internal time).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/deep_bench.py [--env pendulum] [--method ma_l1] [--profile]``
(``--value-epochs``, ``--value-batch``, ``--k-model``, ``--k-policy``, ``--policy-samples``, ``--rollout-envs`` override the defaults).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pendulum")
    p.add_argument("--method", default="ma_l1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", action="store_true")
    for name in ("value_epochs", "value_batch", "k_model", "k_policy", "policy_samples", "rollout_envs"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None, help="override the default")
    args = p.parse_args(argv)

    import torch

    from deep.algorithm import Trainer
    from deep.config import make_config

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train_run does
    cfg = make_config(args.env, args.method, steps=200_000, seed=0, device=args.device,
                      **{k: v for k, v in (("value_epochs", args.value_epochs), ("value_batch", args.value_batch),
                                           ("k_model", args.k_model), ("k_policy", args.k_policy),
                                           ("policy_samples", args.policy_samples),
                                           ("rollout_envs", args.rollout_envs)) if v is not None})
    tr = Trainer(cfg)
    tr.iterate()  # warm-up: data, normalizers, first updates

    out: dict = {"env": args.env, "method": args.method, "threads": args.threads, "device": str(tr.device)}
    t = time.perf_counter()
    tr.collect(cfg.n_real)
    out["real_env_steps_per_s"] = cfg.n_real / (time.perf_counter() - t)
    tr._fit_normalizers()

    t = time.perf_counter()
    tr.update_model()
    dt = time.perf_counter() - t
    out["model_steps_per_s_incl_value_refresh"] = cfg.k_model / dt
    refreshes = -(-cfg.k_model // cfg.value_refresh_every) if tr.value_aware else 0
    t = time.perf_counter()
    for _ in range(refreshes):
        tr.refresh_value(cfg.refresh_samples)
    out["value_refresh_s_per_iteration"] = time.perf_counter() - t
    out["model_steps_per_s_gradient_only"] = cfg.k_model / max(dt - out["value_refresh_s_per_iteration"], 1e-9)

    t = time.perf_counter()
    tr.update_policy()
    out["trpo_updates_per_s_incl_rollouts"] = cfg.k_policy / (time.perf_counter() - t)

    import deep.algorithm as algorithm

    spent = {"value_fit": 0.0}
    fit = algorithm.fit_value

    def timed_fit(*a, **kw):  # the share of the value regression (after every TRPO update and refresh)
        t0 = time.perf_counter()
        try:
            return fit(*a, **kw)
        finally:
            spent["value_fit"] += time.perf_counter() - t0

    algorithm.fit_value = timed_fit
    t = time.perf_counter()
    n0 = tr.step
    try:
        while tr.step - n0 < 10_000:
            tr.iterate()
    finally:
        algorithm.fit_value = fit
    wall = time.perf_counter() - t
    out["wall_s_per_10k_real_steps"] = wall * 10_000 / (tr.step - n0)
    out["value_fit_share"] = spent["value_fit"] / wall
    out["projected_min_per_200k"] = out["wall_s_per_10k_real_steps"] * 20 / 60

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        tr.iterate()
        prof.disable()
        for key in ("cumulative", "tottime"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats(key).print_stats(18)
            print(f"--- profile of one iteration ({cfg.n_real} real steps), sorted by {key}")
            print("\n".join(s.getvalue().splitlines()[4:32]))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}, indent=1))
    return out


if __name__ == "__main__":
    main()
