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
from deep.models import DynamicsModel
from deep.objectives import METHODS, VALUE_AWARE, frozen, model_loss
from deep.policy import GaussianPolicy, ValueNet, fit_value, gae, trpo_step
from lab.rundir import RunDir, atomic_write_bytes, execute

__all__ = ["resolve_device", "ReplayBuffer", "Trainer", "run_path", "train_run"]


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
        self.ep_step, self.ep_return = 0, 0.0
        self.step, self.iteration, self.last_return, self.wall = 0, 0, math.nan, 0.0
        self.main_name, self.use_vps = METHODS[cfg.method]
        self.value_aware = self.main_name in VALUE_AWARE
        self.horizon = cfg.horizon if (self.use_vps or self.main_name == "slbo") else 1
        self.box = None

    # ------------------------------------------------------------------ line 4: real data
    def collect(self, n: int) -> list[float]:
        """Run the policy for ``n`` real steps; returns the returns of the episodes that finished."""
        finished = []
        for _ in range(n):
            if self.obs is None:
                self.obs, _ = self.env.reset(seed=int(self.rng.integers(2 ** 31)))
                self.ep_step, self.ep_return = 0, 0.0
            s = torch.as_tensor(self.obs, dtype=torch.float32, device=self.device)[None]
            a = np.clip(self.policy.sample(s, self.g)[0].cpu().numpy(), -1.0, 1.0)
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
    @torch.no_grad()
    def model_rollout(self, n_samples: int) -> dict[str, torch.Tensor]:
        """``n_samples`` model steps in ``rollout_envs`` columns, time-major (T, B, ...)."""
        B = self.cfg.rollout_envs
        T = n_samples // B
        spec, dev = self.spec, self.device
        s = spec.start_fn(B, self.g).to(dev)
        ep_t = torch.zeros(B, device=dev)
        out: dict[str, list] = {k: [] for k in ("s", "a", "r", "s2", "done", "trunc")}
        for _ in range(T):
            a = self.policy.sample(s, self.g)
            ac = a.clamp(-1.0, 1.0)
            s2 = torch.nan_to_num(self.model(s, ac)).clamp(self.box[0], self.box[1])
            r = spec.reward_fn(s, ac, s2)
            done = spec.done_fn(s2)
            ep_t += 1
            trunc = (ep_t >= spec.max_steps) & ~done
            for k, v in zip(out, (s, a, r, s2, done, trunc)):
                out[k].append(v)
            end = done | trunc
            starts = spec.start_fn(B, self.g).to(dev)
            s = torch.where(end[:, None], starts, s2)
            ep_t = torch.where(end, torch.zeros_like(ep_t), ep_t)
        return {k: torch.stack(v) for k, v in out.items()}

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
                         self.cfg.value_epochs, self.cfg.value_batch, g=self.g)

    # ------------------------------------------------------------------ lines 5-9: model updates
    def update_model(self) -> dict[str, float]:
        cfg = self.cfg
        starts = self.buffer.segment_starts(self.horizon)
        value = frozen(self.value)
        reward = self.spec.reward_fn if cfg.reward_term else None
        sums: dict[str, float] = {}
        vloss = []
        for k in range(cfg.k_model):
            if self.value_aware and k % cfg.value_refresh_every == 0:
                vloss.append(self.refresh_value(cfg.refresh_samples))
            idx = starts[self.rng.integers(len(starts), size=cfg.model_batch)]
            s_np, a_np = self.buffer.segments(idx, self.horizon)
            s = torch.as_tensor(s_np, device=self.device)
            a = torch.as_tensor(a_np, device=self.device)
            loss, parts = model_loss(cfg.method, self.model, value, s, a, cfg.alpha, cfg.lam, cfg.mle_weight,
                                     reward, cfg.gamma)
            if cfg.model_weight_decay:
                loss = loss + 0.5 * cfg.model_weight_decay * sum(p.pow(2).sum() for p in self.model.parameters())
            self.model_opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.model_max_grad_norm:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.model_max_grad_norm)
            self.model_opt.step()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v / cfg.k_model
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
    def update_policy(self) -> dict[str, float]:
        cfg = self.cfg
        kls, acc, vls, model_ret = [], [], [], []
        for _ in range(cfg.k_policy):
            ro = self.model_rollout(cfg.policy_samples)
            adv, target = self._advantages(ro)
            S, A = ro["s"].shape[-1], ro["a"].shape[-1]
            adv = adv.reshape(-1)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            info = trpo_step(self.policy, ro["s"].reshape(-1, S), ro["a"].reshape(-1, A), adv,
                             cfg.max_kl, cfg.cg_iters, cfg.cg_damping)
            kls.append(info.kl)
            acc.append(info.accepted)
            vls.append(fit_value(self.value, self.value_opt, ro["s"].reshape(-1, S), target.reshape(-1),
                                 cfg.value_epochs, cfg.value_batch, g=self.g))
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
        m = self.update_model()
        m["one_step_error"] = self.one_step_error()
        m.update(self.update_policy())
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

    # tiny alphas (Table 1: to 1e-11) drive model weights and Adam state subnormal: 10x slower without
    # flush-to-zero, which is process-wide, so it is restored afterwards (hypothesis, for one, breaks under it)
    torch.set_flush_denormal(True)
    try:
        execute(rd, cfg, lambda: Trainer(cfg), cfg.steps, identity=_identity, checkpoint_every=cfg.checkpoint_every,
                max_iterations=max_iterations, keep_checkpoint=True, wait=wait, on_row=on_row)
    finally:
        torch.set_flush_denormal(False)
        if bar is not None:
            bar.close()
    return rd.path
