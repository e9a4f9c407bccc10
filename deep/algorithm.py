"""Algorithm 2 (value-aware MBRL, Modhe et al., 2021) with TRPO on model rollouts.

One iteration (``Trainer.iterate``), top to bottom:

1. collect ``n_real`` real steps with the current policy (line 4) and refit the normalizers on all data;
2. ``k_model`` model updates on real segments with ``alpha * L_main + lambda * L_VPS`` plus SLBO's weight
   decay, gradient clipped to global norm 2 (lines 5-6); for the
   value-aware methods the value function is refreshed on rollouts in the *current* model every
   ``value_refresh_every`` updates (lines 7-8), so the value inside the model loss is never stale;
3. ``k_policy`` TRPO updates, each on fresh model rollouts of ``policy_samples`` steps, followed by a value
   regression on the same rollouts (lines 10-12).

Model rollouts start from the known start-state distribution and use the known reward and termination
functions (``deep.envs``); each rollout column auto-resets on termination or at the time limit, and the last
step bootstraps from the value function. Predicted states are clamped to the box of real observations
widened by its width on each side, so a value-aware model that drifts off the data cannot produce NaNs.

Checkpoints (the run directory's ``checkpoint``, a ``torch.save`` archive) hold every network, optimizer, the replay buffer, the numpy and torch generator
states and the real environment's mid-episode state, so a resumed run continues exactly as an uninterrupted
one; they are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deep.config import RunConfig, run_dir, run_path
from deep.envs import make_spec
from deep.models import DynamicsModel, fold_normalizers, folded_forward
from deep.objectives import METHOD_PARTS, VALUE_AWARE_OBJECTIVES, frozen, model_loss
from deep.policy import (GaussianPolicy, ValueNet, adam_state, adam_step, clip_grad_norm, fit_value, gae,
                         trpo_step)
from lab.rundir import RunDir, atomic_write_bytes, execute

__all__ = ["ou_step", "truncated_normal_init", "resolve_device", "ReplayBuffer", "Trainer", "run_path", "train_run"]

_NUMPY_ACT = {None: None, torch.tanh: np.tanh, torch.relu: lambda x: np.maximum(x, 0)}


def ou_step(x: np.ndarray, theta: float, sigma: float, eps: np.ndarray) -> np.ndarray:
    """One step of an Ornstein-Uhlenbeck process around 0 (unit time step): ``x + theta (0 - x) + sigma eps``,
    ``eps ~ N(0, I)``; shapes (A,)."""
    return x - theta * x + sigma * eps


def truncated_normal_init(net: torch.nn.Module, std: float) -> None:
    """Every linear layer of ``net``: weights from ``N(0, std^2)`` truncated to ``[-2 std, 2 std]`` (TensorFlow's
    truncated normal), zero biases; draws from torch's global generator (the caller seeds it)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
                torch.nn.init.zeros_(m.bias)


def _numpy_forward(layers: list, obs) -> np.ndarray:
    """The policy mean of one observation through :meth:`Trainer._numpy_policy`'s layers, in float32."""
    x = np.asarray(obs, np.float32)
    for Wt, b, act in layers:
        x = x @ Wt + b
        if act is not None:
            x = act(x)
    return x


def _mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the mean over ``rows`` of the values that are not NaN (NaN where all are); one row is itself."""
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = sum(vals[1:], start=vals[0]) / len(vals) if vals else math.nan
    return out


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


class ReplayBuffer:
    """Real transitions in arrival order: ``obs, act, next_obs`` and ``end`` (terminated or truncated)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.act = np.zeros((capacity, act_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.end = np.zeros(capacity, bool)
        self.n = 0

    def add(self, o, a, o2, end: bool) -> None:
        if self.n >= len(self.end):
            raise ValueError(f"replay buffer full ({len(self.end)} transitions)")
        self.obs[self.n], self.act[self.n], self.next_obs[self.n], self.end[self.n] = o, a, o2, end
        self.n += 1

    def segment_starts(self, h: int) -> np.ndarray:
        """Indices ``i`` whose transitions ``i .. i+h-1`` lie in one episode (no end before the last)."""
        n = self.n - h + 1
        if n <= 0:
            return np.zeros(0, np.int64)
        bad = np.zeros(n, bool)
        for k in range(h - 1):
            bad |= self.end[k:k + n]
        return np.flatnonzero(~bad)

    def segments(self, idx: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
        """States (B, h+1, S) and actions (B, h, A) of the segments starting at ``idx``."""
        steps = idx[:, None] + np.arange(h)[None]
        s = np.concatenate([self.obs[steps], self.next_obs[steps[:, -1]][:, None]], 1)
        return s, self.act[steps]

    def state_dict(self) -> dict[str, Any]:
        n = self.n
        return {"obs": torch.from_numpy(self.obs[:n].copy()), "act": torch.from_numpy(self.act[:n].copy()),
                "next_obs": torch.from_numpy(self.next_obs[:n].copy()), "end": torch.from_numpy(self.end[:n].copy())}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        n = d["obs"].shape[0]
        if n > len(self.end):
            raise ValueError(f"checkpoint holds {n} transitions, more than this run's {len(self.end)} steps")
        self.obs[:n], self.act[:n] = d["obs"].numpy(), d["act"].numpy()
        self.next_obs[:n], self.end[:n] = d["next_obs"].numpy(), d["end"].numpy()
        self.n = n


class Trainer:
    """State and steps of one run of Algorithm 2; ``iterate`` performs one iteration and returns its metrics."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.spec = spec = make_spec(cfg.env)
        self.device = resolve_device(cfg.device)
        self.rng = np.random.default_rng(cfg.seed)
        self.g = torch.Generator().manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):  # initialization from the run's seed, global RNG untouched
            torch.manual_seed(cfg.seed)
            self.model = DynamicsModel(spec.obs_dim, spec.act_dim, cfg.model_hidden, spec.position_dims)
            if cfg.model_init_std:
                truncated_normal_init(self.model.net, cfg.model_init_std)
            self.policy = GaussianPolicy(spec.obs_dim, spec.act_dim, cfg.policy_hidden, cfg.init_log_std)
            self.value = ValueNet(spec.obs_dim, cfg.value_hidden, normalize_output=cfg.value_norm,
                                   min_std=cfg.value_norm_min_std)
        for m in (self.model, self.policy, self.value):
            m.to(self.device)
        self.model_opt = torch.optim.Adam(self.model.parameters(), lr=cfg.model_lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.value_lr)
        self.buffer = ReplayBuffer(max(cfg.steps, 1), spec.obs_dim, spec.act_dim)
        self.env = spec.make()
        self.obs: np.ndarray | None = None  # None: the next real step starts a new episode
        self.ou = np.zeros(spec.act_dim)  # the exploration noise's state: one process per run, never reset
        self.ep_step, self.ep_return = 0, 0.0
        self.step, self.iteration, self.last_return, self.wall = 0, 0, math.nan, 0.0
        self.main_name, self.use_vps = METHOD_PARTS[cfg.method]
        self.value_aware = self.main_name in VALUE_AWARE_OBJECTIVES
        self.horizon = cfg.horizon if (self.use_vps or self.main_name == "slbo") else 1
        self.box = None

    # ------------------------------------------------------------------ line 4: real data
    def collect(self, n: int) -> list[float]:
        """Run the policy for ``n`` real steps; returns the returns of the episodes that finished.

        The policy runs in numpy on one row per step (its normalizer folded into its first layer), with the
        noise of all ``n`` steps drawn first from the run's torch generator."""
        finished = []
        layers = self._numpy_policy()
        with torch.no_grad():
            noise = (torch.randn((n, self.spec.act_dim), generator=self.g) * self.policy.log_std.exp().cpu()).numpy()
            # drawn only when used, so runs without it keep their random stream
            eps = torch.randn((n, self.spec.act_dim), generator=self.g).numpy() if self.cfg.ou_sigma else None
        for i in range(n):
            if self.obs is None:
                self.obs, _ = self.env.reset(seed=int(self.rng.integers(2 ** 31)))
                self.ep_step, self.ep_return = 0, 0.0
            x = _numpy_forward(layers, self.obs)
            if eps is not None:
                self.ou = ou_step(self.ou, self.cfg.ou_theta, self.cfg.ou_sigma, eps[i])
                x = x + self.ou
            a = np.clip(x + noise[i], -1.0, 1.0)
            o2, r, term, _, _ = self.env.step(a)
            self.ep_step += 1
            self.ep_return += float(r)
            end = bool(term) or self.ep_step >= self.spec.max_steps
            self.buffer.add(self.obs, a, o2, end)
            if end:
                finished.append(self.ep_return)
                self.obs = None
            else:
                self.obs = o2
        self.step += n
        return finished

    def _numpy_policy(self) -> list:
        """The policy mean as numpy layers ``(W^T, b, activation)``, its normalizer folded into the first."""
        return [(Wt.cpu().numpy(), b.cpu().numpy(), _NUMPY_ACT[act])
                for Wt, b, act in fold_normalizers(self.policy.mu, self.policy.obs_norm.mean,
                                                   self.policy.obs_norm.std)]

    def evaluate(self, n_envs: int = 4, steps_per_env: int = 2500, seed: int = 0) -> tuple[float, int]:
        """The authors' evaluation (va_slbo ``slbo/main.py:29-41``, ``deep.protocol`` row ``evaluation``):
        ``n_envs`` fresh real environments each run the stochastic policy, without exploration noise, for
        ``steps_per_env`` steps (episodes end at termination or the task's time limit); returns the mean return
        of the episodes that finished and their number (NaN, 0 if none did).

        It has its own environments and generator (``seed``): the run's environment, state and random streams
        are untouched, so evaluating never changes what a run logs next."""
        layers = self._numpy_policy()
        std = self.policy.log_std.detach().exp().cpu().numpy()
        rng = np.random.default_rng(seed)
        returns = []
        for _ in range(n_envs):
            env = self.spec.make()
            obs, t, ret = None, 0, 0.0
            for _ in range(steps_per_env):
                if obs is None:
                    obs, _ = env.reset(seed=int(rng.integers(2 ** 31)))
                    t, ret = 0, 0.0
                x = _numpy_forward(layers, obs)
                a = np.clip(x + std * rng.standard_normal(self.spec.act_dim), -1.0, 1.0)
                obs, r, term, _, _ = env.step(a)
                t += 1
                ret += float(r)
                if term or t >= self.spec.max_steps:
                    returns.append(ret)
                    obs = None
            env.close()
        return (float(np.mean(returns)) if returns else float("nan")), len(returns)

    def _fit_normalizers(self) -> None:
        n = self.buffer.n
        s = torch.as_tensor(self.buffer.obs[:n], device=self.device)
        s2 = torch.as_tensor(self.buffer.next_obs[:n], device=self.device)
        self.model.fit_normalizers(s, s2)
        self.policy.obs_norm.fit(s)
        self.value.obs_norm.fit(s)
        lo, hi = torch.minimum(s.min(0).values, s2.min(0).values), torch.maximum(s.max(0).values, s2.max(0).values)
        width = (hi - lo).clamp_min(1e-3)
        self.box = (lo - width, hi + width)

    # ------------------------------------------------------------------ rollouts in the learned model
    @torch.inference_mode()
    def model_rollout(self, n_samples: int) -> dict[str, torch.Tensor]:
        """``n_samples`` model steps in ``rollout_envs`` columns, time-major (T, B, ...).

        Each step runs the policy and the model with their normalizers folded into their weights
        (``deep.models.fold_normalizers``). The policy noise of all T steps is drawn first, in one call; start
        states are drawn only at steps where some column ends; rewards are computed for all steps at the end."""
        B = self.cfg.rollout_envs
        T = n_samples // B
        spec, dev, pol = self.spec, self.device, self.policy
        S, A = spec.obs_dim, spec.act_dim
        model = self.model.folded()
        policy = fold_normalizers(pol.mu, pol.obs_norm.mean, pol.obs_norm.std)
        x = torch.empty(T + 1, B, S, device=dev)  # s_0 .. s_T; s_{t+1} is step t's prediction unless it ended
        acts = torch.empty(T, B, A, device=dev)
        done = torch.zeros(T, B, dtype=torch.bool, device=dev)
        trunc = torch.zeros(T, B, dtype=torch.bool, device=dev)
        inp = torch.empty(B, S + A, device=dev)  # (s, clamped a): the folded model's input
        inp_s, inp_a = inp[:, :S], inp[:, S:]
        x[0] = spec.start_fn(B, self.g).to(dev)
        noise = torch.randn((T, B, A), generator=self.g).to(dev) * pol.log_std.exp()
        start = torch.zeros(B, dtype=torch.long, device=dev)  # the step at which each column's episode began
        ended = []  # (t, columns that ended, their predicted s_{t+1})
        lo, hi = self.box
        xs, a_t, noise_t, done_t = x.unbind(0), acts.unbind(0), noise.unbind(0), done.unbind(0)
        for t in range(T):
            s, s2 = xs[t], xs[t + 1]
            folded_forward(policy, s, out=a_t[t]).add_(noise_t[t])
            inp_s.copy_(s)
            torch.clamp(a_t[t], -1.0, 1.0, out=inp_a)
            folded_forward(model, inp, out=s2).add_(s)
            torch.nan_to_num(s2, out=s2).clamp_(lo, hi)
            end = spec.done_fn(s2)
            done_t[t].copy_(end)
            if t + 1 >= spec.max_steps:  # no column can reach the time limit earlier
                torch.logical_and(t + 1 - start >= spec.max_steps, ~end, out=trunc[t])
                end = end | trunc[t]
            if bool(end.any()):
                ended.append((t, end, s2[end].clone()))
                s2.copy_(torch.where(end[:, None], spec.start_fn(B, self.g).to(dev), s2))
                start.masked_fill_(end, t + 1)
        nxt = x[1:].clone()
        for t, end, pred in ended:
            nxt[t, end] = pred
        r = spec.reward_fn(x[:-1].reshape(-1, S), acts.clamp(-1.0, 1.0).reshape(-1, A), nxt.reshape(-1, S))
        return {"s": x[:-1], "a": acts, "r": r.reshape(T, B), "s2": nxt, "done": done, "trunc": trunc}

    @torch.no_grad()
    def _advantages(self, ro: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, S = ro["s"].shape
        v_t = self.value(ro["s"].reshape(-1, S)).reshape(T, B)
        v_tp1 = self.value(ro["s2"].reshape(-1, S)).reshape(T, B)
        discount = self.cfg.gamma * (~ro["done"]).to(v_t.dtype)
        adv = gae(ro["r"], v_t, v_tp1, discount, self.cfg.gae_lambda, ro["trunc"])
        return adv, adv + v_t

    def refresh_value(self, n_samples: int) -> float:
        """Lines 7-8 / 12: fit V to lambda-returns of fresh rollouts in the current model."""
        ro = self.model_rollout(n_samples)
        _, target = self._advantages(ro)
        S = ro["s"].shape[-1]
        return fit_value(self.value, self.value_opt, ro["s"].reshape(-1, S), target.reshape(-1),
                         self.cfg.value_epochs, self.cfg.value_batch, g=self.g,
                         max_grad_norm=self.cfg.value_max_grad_norm)

    # ------------------------------------------------------------------ lines 5-9: model updates
    def update_model(self, n_updates: int | None = None) -> dict[str, float]:
        """``n_updates`` (default ``k_model``) model steps, with value refreshes between them (lines 5-9)."""
        cfg = self.cfg
        n_updates = cfg.k_model if n_updates is None else n_updates
        # SLBO's loss averaged over its h steps is its sum divided by h
        alpha = cfg.alpha / self.horizon if (cfg.slbo_mean_over_h and self.main_name == "slbo") else cfg.alpha
        starts = self.buffer.segment_starts(self.horizon)
        value = frozen(self.value)
        reward = self.spec.reward_fn if cfg.reward_term else None
        sums: dict[str, float] = {}
        vloss = []
        params = list(self.model.parameters())
        state = adam_state(self.model_opt, params)
        for k in range(n_updates):
            if self.value_aware and not cfg.refresh_after and k % cfg.value_refresh_every == 0:
                vloss.append(self.refresh_value(cfg.refresh_samples))
            idx = starts[self.rng.integers(len(starts), size=cfg.model_batch)]
            s_np, a_np = self.buffer.segments(idx, self.horizon)
            s = torch.as_tensor(s_np, device=self.device)
            a = torch.as_tensor(a_np, device=self.device)
            loss, parts = model_loss(cfg.method, self.model, value, s, a, alpha, cfg.lam, cfg.mle_weight,
                                     reward, cfg.gamma)
            grads = list(torch.autograd.grad(loss, params))
            with torch.no_grad():
                if cfg.model_weight_decay:  # the gradient of 0.5 * wd * sum(w^2)
                    torch._foreach_add_(grads, params, alpha=cfg.model_weight_decay)
                if cfg.model_max_grad_norm:
                    clip_grad_norm(grads, cfg.model_max_grad_norm)
            adam_step(self.model_opt, params, grads, state)
            if self.value_aware and cfg.refresh_after and (k + 1) % cfg.value_refresh_every == 0:
                vloss.append(self.refresh_value(cfg.refresh_samples))
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v / n_updates
        out = {"model_loss": sums["main"], "vps_loss": sums.get("vps", math.nan),
               "refresh_value_loss": float(np.mean(vloss)) if vloss else math.nan}
        return out

    @torch.no_grad()
    def one_step_error(self, n: int = 1000) -> float:
        """Mean squared normalized one-step prediction error on the latest ``n`` real transitions."""
        lo = max(0, self.buffer.n - n)
        s = torch.as_tensor(self.buffer.obs[lo:self.buffer.n], device=self.device)
        a = torch.as_tensor(self.buffer.act[lo:self.buffer.n], device=self.device)
        s2 = torch.as_tensor(self.buffer.next_obs[lo:self.buffer.n], device=self.device)
        return float((2 * self.model.nll(s, a, s2)).mean() / self.spec.obs_dim)

    # ------------------------------------------------------------------ lines 10-13: policy updates
    def update_policy(self, n_updates: int | None = None) -> dict[str, float]:
        """``n_updates`` (default ``k_policy``) TRPO updates on fresh model rollouts, each followed by a value
        regression (lines 10-12)."""
        cfg = self.cfg
        n_updates = cfg.k_policy if n_updates is None else n_updates
        entropy_coef = cfg.entropy_coef if self.step < cfg.entropy_steps else 0.0
        kls, acc, vls, model_ret = [], [], [], []
        for _ in range(n_updates):
            ro = self.model_rollout(cfg.policy_samples)
            adv, target = self._advantages(ro)
            S, A = ro["s"].shape[-1], ro["a"].shape[-1]
            adv = adv.reshape(-1)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            info = trpo_step(self.policy, ro["s"].reshape(-1, S), ro["a"].reshape(-1, A), adv,
                             cfg.max_kl, cfg.cg_iters, cfg.cg_damping, entropy_coef=entropy_coef)
            kls.append(info.kl)
            acc.append(info.accepted)
            vls.append(fit_value(self.value, self.value_opt, ro["s"].reshape(-1, S), target.reshape(-1),
                                 cfg.value_epochs, cfg.value_batch, g=self.g,
                                 max_grad_norm=cfg.value_max_grad_norm))
            model_ret.append(float(ro["r"].sum(0).mean()))
        return {"kl": float(np.mean(kls)), "trpo_accept": float(np.mean(acc)), "value_loss": float(np.mean(vls)),
                "model_rollout_reward": float(np.mean(model_ret))}

    def iterate(self) -> dict[str, float]:
        """One iteration of Algorithm 2; returns the metrics row (first column ``step``)."""
        t0 = time.perf_counter()
        n = min(self.cfg.n_real, self.cfg.steps - self.step)
        finished = self.collect(n)
        if finished:
            self.last_return = float(np.mean(finished))
        self._fit_normalizers()
        rounds = self.cfg.rounds  # model and policy updates alternate (the authors' schedule); 1: ours
        model_parts, policy_parts = [], []
        for _ in range(rounds):
            model_parts.append(self.update_model(self.cfg.k_model // rounds))
            policy_parts.append(self.update_policy(self.cfg.k_policy // rounds))
        m = {**_mean_rows(model_parts), "one_step_error": self.one_step_error(), **_mean_rows(policy_parts)}
        self.iteration += 1
        self.wall += time.perf_counter() - t0
        return {"step": self.step, "return": self.last_return, "episodes": len(finished), **m,
                "wall_s": self.wall}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        env_state = np.asarray(self.spec.get_state(self.env) if self.obs is not None else np.zeros(0), np.float64)
        return {
            "config": json.dumps(self.cfg.identity(), sort_keys=True),
            "step": self.step, "iteration": self.iteration, "last_return": self.last_return, "wall": self.wall,
            "model": self.model.state_dict(), "policy": self.policy.state_dict(), "value": self.value.state_dict(),
            "model_opt": self.model_opt.state_dict(), "value_opt": self.value_opt.state_dict(),
            "buffer": self.buffer.state_dict(),
            "rng_numpy": json.dumps(self.rng.bit_generator.state), "rng_torch": self.g.get_state(),
            "ou": torch.from_numpy(self.ou.copy()),
            "env": {"state": torch.from_numpy(env_state),
                    "obs": torch.from_numpy(np.asarray(self.obs if self.obs is not None else [], np.float32)),
                    "ep_step": self.ep_step, "ep_return": self.ep_return, "mid_episode": self.obs is not None},
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        mine = self.cfg.identity()
        theirs = json.loads(d["config"])
        diff = sorted(k for k in set(mine) | set(theirs)
                      if json.dumps(mine.get(k), default=str) != json.dumps(theirs.get(k), default=str))
        if diff:
            raise ValueError("checkpoint config differs from this run's in "
                             + ", ".join(f"{k} (checkpoint {theirs.get(k)!r}, run {mine.get(k)!r})" for k in diff))
        if d["step"] > self.cfg.steps:
            raise ValueError(f"checkpoint is at step {d['step']}, beyond this run's {self.cfg.steps} steps")
        self.step, self.iteration, self.last_return, self.wall = d["step"], d["iteration"], d["last_return"], d["wall"]
        self.model.load_state_dict(d["model"])
        self.policy.load_state_dict(d["policy"])
        self.value.load_state_dict(d["value"])
        self.model_opt.load_state_dict(d["model_opt"])
        self.value_opt.load_state_dict(d["value_opt"])
        self.buffer.load_state_dict(d["buffer"])
        self.rng.bit_generator.state = json.loads(d["rng_numpy"])
        self.g.set_state(d["rng_torch"])
        if "ou" in d:  # checkpoints of runs without exploration noise before it existed hold none
            self.ou = d["ou"].numpy().astype(np.float64).copy()
        e = d["env"]
        self.ep_step, self.ep_return = e["ep_step"], e["ep_return"]
        if e["mid_episode"]:
            self.env.reset(seed=0)
            self.spec.set_state(self.env, e["state"].numpy().copy())
            self.obs = e["obs"].numpy().copy()
        else:
            self.obs = None
        if self.buffer.n:
            self._fit_normalizers()

    @property
    def position(self) -> int:
        """Real steps so far (the first metrics column)."""
        return self.step

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        return buf.getvalue()

    def loads(self, data: bytes) -> None:
        self.load_state_dict(torch.load(io.BytesIO(data), map_location=self.device, weights_only=True))

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(path, self.dumps())

    def load(self, path: str | Path) -> None:
        self.loads(Path(path).read_bytes())


def _identity(d: dict) -> dict:
    """The fields of a stored config that must agree for a resume (the step budget may grow)."""
    return RunConfig.from_dict(d).identity()


def train_run(cfg: RunConfig, root: str | Path = "runs", progress: bool = True,
              max_iterations: int | None = None, wait: bool = False) -> Path:
    """Train (or resume, or skip if finished) one run under ``root``; returns its run directory.

    A finished run is extended when ``cfg.steps`` exceeds the steps it reached. ``max_iterations`` stops early
    after that many iterations in this call (checkpointed; for tests). ``wait``: wait for another process
    working in the same run instead of failing.
    """
    rd = run_dir(root, cfg)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, desc=f"{cfg.env}/{cfg.method}/s{cfg.seed}")

    def on_row(row: dict) -> None:
        if bar is not None:
            bar.n = int(row["step"])
            bar.set_postfix(ret=f"{row['return']:.1f}", kl=f"{row['kl']:.4f}")
            bar.refresh()

    def evaluate(trainer: Trainer, run: RunDir) -> None:
        """The authors' evaluation at the first state, every ``evaluate_every``-th iteration and the last, in
        ``evaluation.csv``; rows past the trainer's step (of a trajectory a resume discarded) go first."""
        from deep.runner import drop_evaluations_after, record_evaluation

        drop_evaluations_after(run.path, trainer.step)
        if trainer.iteration % cfg.evaluate_every == 0 or trainer.step >= cfg.steps:
            record_evaluation(run.path, trainer)

    # tiny alphas (Table 1: to 1e-11) drive model weights and Adam state subnormal: 10x slower without
    # flush-to-zero, which is process-wide, so it is restored afterwards (hypothesis, for one, breaks under it)
    torch.set_flush_denormal(True)
    try:
        execute(rd, cfg, lambda: Trainer(cfg), cfg.steps, identity=_identity, checkpoint_every=cfg.checkpoint_every,
                max_iterations=max_iterations, keep_checkpoint=True, wait=wait, on_row=on_row,
                after_iteration=evaluate if cfg.evaluate_every else None)
    finally:
        torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
    return rd.path
