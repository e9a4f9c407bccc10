"""``modeladv train``: one run of Algorithm 2 (value-aware MBRL with TRPO) on a classic-control env.

Example: ``modeladv train --env pendulum --method ma-l1 --steps 200000 --seed 0``. Alpha/lambda default to
the paper's Table 1 for (env, method). Writes ``<root>/deep/<config-hash>/seed<k>/`` (config.json,
metrics.csv, ckpt.pt, DONE); rerunning resumes from the checkpoint, or skips a finished run. Torch is
imported only inside ``run``.
"""

from __future__ import annotations

import argparse

from deep.config import ENV_NAMES, METHOD_NAMES

__all__ = ["configure", "run", "config_from_args"]

#: config fields exposed as ``--field-name`` overrides (type from the dataclass default)
_OVERRIDES = ("n_real", "k_model", "value_refresh_every", "refresh_samples", "k_policy", "policy_samples",
              "rollout_envs", "model_lr", "model_batch", "horizon", "value_lr", "value_epochs", "max_kl",
              "cg_iters", "cg_damping", "gamma", "gae_lambda", "checkpoint_every", "mle_weight", "value_norm_min_std")

_HELP = {"mle_weight": "ablation: beta, weight of an MLE term added to value-aware losses; not in the paper",
         "value_norm_min_std": "with --value-norm: floor on the return scale sigma (default 1e-6; 1 is safe)"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help=f"one of {', '.join(ENV_NAMES)}")
    parser.add_argument("--method", required=True, help=f"one of {', '.join(METHOD_NAMES)}")
    parser.add_argument("--steps", type=int, default=200_000, help="total real environment steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=None, help="weight of the main objective (Table 1)")
    parser.add_argument("--lam", type=float, default=None, help="weight of VPS (Table 1)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--root", default="runs", help="run directory root")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--value-norm", action="store_true",
                        help="ablation: value net on normalized returns (PopArt); not in the paper")
    from deep.config import RunConfig
    defaults = RunConfig()
    for name in _OVERRIDES:
        parser.add_argument("--" + name.replace("_", "-"), type=type(getattr(defaults, name)), default=None,
                            help=_HELP.get(name, argparse.SUPPRESS))


def config_from_args(args: argparse.Namespace):
    from deep.config import make_config
    over = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k, None) is not None}
    if getattr(args, "value_norm", False):
        over["value_norm"] = True
    return make_config(args.env, args.method, alpha=args.alpha, lam=args.lam, steps=args.steps,
                       seed=args.seed, device=args.device, **over)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # validates before torch is imported
    import torch
    from deep.algorithm import train_run

    torch.set_num_threads(max(1, args.threads))
    path = train_run(cfg, root=args.root, progress=not args.no_progress)
    print(path)
    return 0
