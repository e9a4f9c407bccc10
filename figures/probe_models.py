"""What the learned dynamics models of finished deep runs respond to: a markdown table per run.

For every run under ``--root`` that still has its checkpoint (checkpoints are not committed: rerun the runs to
reproduce), on a batch of its own latest real transitions:

- ``|∇ α·L|`` and ``|∇ wd|``: global gradient norms of the scaled main objective (plus λ·VPS) and of the L2
  penalty ``wd·Σθ²/2`` that Algorithm 2 adds unscaled (``RunConfig.model_weight_decay``), for the run's initial
  weights and its final ones. Where the second is the larger, the penalty, not the objective, trains the model;
- ``Σθ²``: the model's squared weights (a model decayed to zero predicts ``s + mean Δ`` for every action);
- ``action effect``: mean squared change of the normalized predicted delta when the action is redrawn
  uniformly (0: the model ignores the action, so no policy can improve in it);
- ``|a|``: mean absolute normalized action of the last real steps (≈ 0: the policy learned to do nothing).

Usage: ``python figures/probe_models.py --root results/mujoco [--envs halfcheetah hopper] [--n 1000]``
"""

from __future__ import annotations

import argparse

import torch

from deep.algorithm import Trainer
from deep.config import ENV_NAMES, RunConfig, find_deep_runs
from deep.objectives import model_loss
from deep.plot import curve_order, run_label


def grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> float:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return float(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None)))


def gradients(trainer: Trainer, model, s: torch.Tensor, a: torch.Tensor) -> tuple[float, float]:
    """Global gradient norms over ``model``'s weights of the run's scaled objective and of its L2 penalty."""
    cfg = trainer.cfg
    reward = trainer.spec.reward_fn if cfg.reward_term else None
    params = list(model.parameters())
    loss, _ = model_loss(cfg.method, model, trainer.value, s, a, cfg.alpha, cfg.lam, cfg.mle_weight, reward,
                         cfg.gamma)
    decay = 0.5 * cfg.model_weight_decay * sum(p.pow(2).sum() for p in params)
    return grad_norm(loss, params), grad_norm(decay, params) if cfg.model_weight_decay else 0.0


def probe(trainer: Trainer, n: int = 1000) -> dict[str, float]:
    """The columns of the table for one loaded run (module docstring), on its latest ``n`` real transitions;
    ``*_init`` are the gradients of the run's initial weights (its seed's, with the final normalizers and V)."""
    model, buf = trainer.model, trainer.buffer
    s_np, a_np = buf.segments(buf.segment_starts(trainer.horizon)[-n:], trainer.horizon)
    s, a = torch.as_tensor(s_np), torch.as_tensor(a_np)
    initial = Trainer(trainer.cfg).model
    initial.obs_norm.load_state_dict(model.obs_norm.state_dict())
    initial.delta_norm.load_state_dict(model.delta_norm.state_dict())
    out = dict(zip(("grad_objective", "grad_decay"), gradients(trainer, model, s, a)))
    out.update(zip(("grad_objective_init", "grad_decay_init"), gradients(trainer, initial, s, a)))
    with torch.no_grad():
        s0, a0 = s[:, 0], a[:, 0]
        redrawn = torch.rand(a0.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        effect = (model.normalized_delta(s0, a0) - model.normalized_delta(s0, redrawn)).pow(2).sum(-1).mean()
        out["sum_sq"] = float(sum(p.pow(2).sum() for p in model.parameters()))
    out.update(action_effect=float(effect), abs_action=float(a0.abs().mean()))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="results/mujoco", help="directory holding deep/ (or deep/ itself)")
    p.add_argument("--envs", nargs="+", choices=ENV_NAMES, help="only these environments")
    p.add_argument("--n", type=int, default=1000, help="latest real transitions to probe on")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error(f"--n must be >= 1; got {args.n}")
    torch.set_num_threads(1)
    runs = [(cfg, path) for cfg, path in find_deep_runs(args.root) if (path / "checkpoint").exists() and "env" in cfg
            and (args.envs is None or cfg["env"] in args.envs)]
    if not runs:
        p.exit(2, f"probe_models.py: error: no run with a checkpoint under {args.root}\n")
    runs.sort(key=lambda r: (ENV_NAMES.index(r[0]["env"]), curve_order(run_label(r[0])), r[0]["seed"]))
    print("| env | method | seed | α | steps | at init: |∇ α·L|, |∇ wd| | at the end: |∇ α·L|, |∇ wd| | Σθ² "
          "| action effect | |a| |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cfg, path in runs:
        trainer = Trainer(RunConfig.from_dict(cfg))
        trainer.load(path / "checkpoint")
        r = probe(trainer, args.n)
        print(f"| {cfg['env']} | {run_label(cfg)} | {cfg['seed']} | {cfg['alpha']:g} | {trainer.step // 1000}K "
              f"| {r['grad_objective_init']:.2g}, {r['grad_decay_init']:.2g} | {r['grad_objective']:.2g}, {r['grad_decay']:.2g} | {r['sum_sq']:.3g} | {r['action_effect']:.3g} "
              f"| {r['abs_action']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
