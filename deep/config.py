"""One frozen dataclass per deep run, with the paper's Table 1 alpha/lambda defaults per (env, method).

Iteration sizes follow the SLBO-family loop scaled down to fit 200K real Pendulum steps in about 10 minutes
on one CPU thread (see docs/deep_results.md for the measured speed). This module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lab.config import check_bool, check_choice, check_float, check_int, check_int_tuple
from lab.rundir import RunDir, find_runs
from lab.rundir import run_dir as lab_run_dir

__all__ = ["TABLE1", "ENV_NAMES", "SLBO_ENV_NAMES", "METHOD_NAMES", "VALUE_AWARE_METHODS", "REWARD_OF_NEXT_STATE",
           "reward_term_applies", "RunConfig",
           "make_config", "find_deep_runs", "HASH_EXCLUDE", "LEGACY_FIELDS", "OPTIONAL_FIELDS", "EXPERIMENT", "PROTOCOL_NAMES", "run_dir",
           "run_path"]

EXPERIMENT = "deep"

#: named protocols (``RunConfig.protocol``; their values in :mod:`deep.protocol`)
PROTOCOL_NAMES = ("ours", "authors")

#: the paper's MuJoCo tasks: SLBO's rllab-derived variants (deep.envs_slbo); its Reacher (MBBL's) is not among them
SLBO_ENV_NAMES = ("halfcheetah-slbo", "hopper-slbo", "ant-slbo", "swimmer-slbo")
ENV_NAMES = ("cartpole", "pendulum", "acrobot", "cartpole-mbbl", "pendulum-mbbl", "acrobot-mbbl",
             "ant", "halfcheetah", "swimmer", "reacher", "hopper", *SLBO_ENV_NAMES)
METHOD_NAMES = ("mle", "slbo", "ma_l1", "ma_l1_vps", "ma_vaml", "ma_vaml_vps")
#: methods whose model is learned through the value function (deep.objectives.VALUE_AWARE_OBJECTIVES, with or without VPS)
VALUE_AWARE_METHODS = ("ma_l1", "ma_l1_vps", "ma_vaml", "ma_vaml_vps")
#: environments whose known reward has a gradient in the next state (MuJoCo's forward progress (x' - x) / dt,
#: Reacher's distance after the step, the SLBO tasks' centre-of-mass velocity of s'); the others' rewards are
#: functions of (s, a), or of s' only through a termination indicator, which has no gradient
REWARD_OF_NEXT_STATE = ("ant", "halfcheetah", "swimmer", "reacher", "hopper", *SLBO_ENV_NAMES)


def reward_term_applies(env: str, method: str) -> bool:
    """Whether ``RunConfig.reward_term`` changes the objective of ``method`` on ``env``.

    Never on the SLBO tasks: their forward reward is a coordinate of ``s'`` (the centre-of-mass velocity) that
    the value function sees, so Eq. 10 as printed reaches it through ``V``, and it is what the authors ran
    (va_slbo @ da9b45b, ``slbo/loss/va_loss.py``: ``|V(s') - V(s_hat')|``, no reward term); issue 20, point 3.
    """
    return method in VALUE_AWARE_METHODS and env in REWARD_OF_NEXT_STATE and env not in SLBO_ENV_NAMES

#: (env, method) -> (alpha, lambda): the paper's Table 1 (a)-(d). MLE and SLBO use alpha = 1, lambda = 0.
TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("pendulum", "ma_l1"): (0.05, 0.0), ("acrobot", "ma_l1"): (0.05, 0.0), ("cartpole", "ma_l1"): (0.05, 0.0),
    ("pendulum", "ma_l1_vps"): (0.05, 1e-5), ("acrobot", "ma_l1_vps"): (0.05, 1e-5),
    ("cartpole", "ma_l1_vps"): (0.05, 1e-6),
    ("pendulum", "ma_vaml"): (5e-9, 0.0), ("acrobot", "ma_vaml"): (5e-9, 0.0), ("cartpole", "ma_vaml"): (5e-9, 0.0),
    ("pendulum", "ma_vaml_vps"): (1e-9, 1e-6), ("acrobot", "ma_vaml_vps"): (1e-9, 0.1),
    ("cartpole", "ma_vaml_vps"): (1e-11, 0.1),
    # MuJoCo (Table 1 (a)-(d))
    ("reacher", "ma_l1"): (0.05, 0.0), ("ant", "ma_l1"): (0.5, 0.0), ("swimmer", "ma_l1"): (0.5, 0.0),
    ("halfcheetah", "ma_l1"): (0.05, 0.0), ("hopper", "ma_l1"): (0.05, 0.0),
    ("reacher", "ma_l1_vps"): (0.05, 1e-5), ("ant", "ma_l1_vps"): (0.5, 1e-6), ("swimmer", "ma_l1_vps"): (0.5, 1e-6),
    ("halfcheetah", "ma_l1_vps"): (0.005, 1e-6), ("hopper", "ma_l1_vps"): (0.05, 1e-5),
    ("reacher", "ma_vaml"): (1e-10, 0.0), ("ant", "ma_vaml"): (1e-10, 0.0), ("swimmer", "ma_vaml"): (1e-10, 0.0),
    ("halfcheetah", "ma_vaml"): (1e-10, 0.0), ("hopper", "ma_vaml"): (1e-11, 0.0),
    ("reacher", "ma_vaml_vps"): (1e-10, 1e-5), ("ant", "ma_vaml_vps"): (1e-10, 1e-6),
    ("swimmer", "ma_vaml_vps"): (1e-12, 0.1), ("halfcheetah", "ma_vaml_vps"): (1e-10, 1e-6),
    ("hopper", "ma_vaml_vps"): (1e-10, 1e-5),
}
# the paper's MuJoCo rows are its SLBO tasks: the same (alpha, lambda) under their own names
TABLE1.update({(f"{env}-slbo", method): v for (env, method), v in list(TABLE1.items())
               if f"{env}-slbo" in SLBO_ENV_NAMES})

#: fields left out of the run-directory hash: the seed (its own directory level), the step budget (a run
#: can be extended by resuming with more steps), where it runs, and the protocol's name.
HASH_EXCLUDE = ("seed", "steps", "device", "protocol",  # a protocol is the fields it sets, which are hashed
                "evaluate_every")  # evaluating leaves the run's numbers as they are

#: fields added after the first runs -> the value those runs used. A stored config without the field gets this
#: value, and a run whose field holds it leaves the field out of its identity, so earlier run directories and
#: checkpoints stay valid.
LEGACY_FIELDS: dict[str, Any] = {"value_norm": False, "value_norm_min_std": 1e-6, "mle_weight": 0.0,
                                 "value_batch": 256, "reward_term": False, "ou_sigma": 0.0, "ou_theta": 0.15,
                                 "entropy_coef": 0.0, "entropy_steps": 500_000, "rounds": 1,
                                 "refresh_after": False, "model_init_std": 0.0, "value_max_grad_norm": 0.0,
                                 "slbo_mean_over_h": False, "protocol": "ours", "evaluate_every": 0}
OPTIONAL_FIELDS = tuple(LEGACY_FIELDS)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run of Algorithm 2 (Modhe et al., 2021) with TRPO."""

    env: str = "pendulum"
    """environment: cartpole, pendulum, acrobot (Gymnasium, continuous actions), the paper's MBBL variants
    cartpole-mbbl, pendulum-mbbl, acrobot-mbbl, MuJoCo v5 ant, halfcheetah, swimmer, reacher, hopper, or the
    paper's SLBO variants halfcheetah-slbo, hopper-slbo, ant-slbo, swimmer-slbo."""
    method: str = "ma_l1"
    """model objective: mle, slbo, ma_l1, ma_l1_vps, ma_vaml, ma_vaml_vps."""
    seed: int = 0
    """seed of the run's numpy and torch generators (and network initialization)."""
    steps: int = 200_000
    """total real environment steps."""
    alpha: float | None = None
    """weight of the main objective (Appendix C); None: Table 1's for (env, method)."""
    lam: float | None = None
    """weight of the VPS regularizer (Appendix C); None: Table 1's for (env, method)."""
    n_real: int = 2000
    """n: real steps collected per iteration (line 4)."""
    k_model: int = 100
    """K_model: model gradient steps per iteration (lines 5-6)."""
    value_refresh_every: int = 25
    """model steps between value refreshes on model rollouts (lines 7-8; value-aware methods only)."""
    refresh_samples: int = 1000
    """m: model-rollout samples per value refresh."""
    k_policy: int = 10
    """K_policy: TRPO updates per iteration (lines 10-12)."""
    policy_samples: int = 4000
    """m: model-rollout samples per TRPO update (the authors' code: 4000)."""
    rollout_envs: int = 20
    """parallel model rollouts (policy_samples / rollout_envs steps each, bootstrapped at the end; 20 x 200 steps:
    one Pendulum episode per column)."""
    model_hidden: tuple[int, ...] = (500, 500)
    """dynamics MLP hidden widths (ReLU)."""
    model_lr: float = 1e-3
    """Adam learning rate of the model."""
    model_batch: int = 128
    """model minibatch size (segments)."""
    model_weight_decay: float = 1e-5
    """L2 penalty ``wd * sum(w^2) / 2`` added to the model loss (SLBO code default); it is not scaled by alpha,
    so Table 1's alpha trades the main objective off against it (Adam is otherwise scale-invariant)."""
    model_max_grad_norm: float = 2.0
    """global-norm clipping of the model gradient (SLBO code default)."""
    horizon: int = 2
    """h: segment length for SLBO's multi-step loss and VPS (Eqs. 11-12 use 2)."""
    policy_hidden: tuple[int, ...] = (32, 32)
    """policy MLP hidden widths (tanh)."""
    value_hidden: tuple[int, ...] = (64, 64)
    """value MLP hidden widths (tanh)."""
    value_lr: float = 1e-3
    """Adam learning rate of the value function."""
    value_epochs: int = 5
    """epochs of value regression after every TRPO update and every value refresh (the authors' code: 5)."""
    value_batch: int = 64
    """minibatch size of the value regression (the authors' code: 64; runs before this field: 256)."""
    init_log_std: float = 0.0
    """initial log standard deviation of the Gaussian policy."""
    max_kl: float = 0.01
    """TRPO trust-region size."""
    cg_iters: int = 10
    """conjugate-gradient iterations."""
    cg_damping: float = 0.1
    """Fisher damping."""
    gamma: float = 0.99
    """discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    value_norm: bool = False
    """ablation (not in the paper): the value net predicts normalized returns, ``V = mu + sigma * net(s)`` with
    ``mu, sigma`` tracking the regression targets (PopArt-style, outputs preserved when they change)."""
    value_norm_min_std: float = 1e-6
    """with ``value_norm``: floor on sigma, in return units (1e-6 lets constant targets blow the net up; 1 is safe)."""
    mle_weight: float = 0.0
    """ablation (not in the paper): beta, weight of an MLE term added to the value-aware model losses."""
    reward_term: bool | None = None
    """value-aware methods on tasks whose reward depends on the next state (MuJoCo): add the known reward's gap
    ``(r(s, a, s') - r(s, a, s_hat')) / gamma`` to the value gap of Eq. 10 / MA-VAML (Lemma 1 with a reward of
    the transition). Without it the model's forward progress, which the reward needs, reaches the loss only
    through V, which the true value does not let depend on x. None: on where it applies; stored as False
    elsewhere (no effect there). It never applies to the SLBO tasks (``reward_term_applies``)."""
    ou_sigma: float = 0.0
    """exploration on real data: sigma of the Ornstein-Uhlenbeck noise added to the sampled action (the authors':
    0.3); 0: none."""
    ou_theta: float = 0.15
    """mean reversion of that noise per real step (the authors': 0.15)."""
    entropy_coef: float = 0.0
    """TRPO entropy bonus: ``entropy_coef * H(pi)`` added to the surrogate (the authors': 0.005, of the Gaussian
    restricted to [-2, 2] as SLBO codes it; here the Gaussian's own entropy)."""
    entropy_steps: int = 500_000
    """real steps during which the entropy bonus applies (the authors': 50 stages of 10K)."""
    rounds: int = 1
    """alternations of model and policy updates per iteration: ``k_model / rounds`` model steps, then
    ``k_policy / rounds`` TRPO updates, ``rounds`` times (the authors': 20)."""
    refresh_after: bool = False
    """value refresh after model step k when k + 1 is a multiple of value_refresh_every (the authors'), instead of
    before step k when k is."""
    model_init_std: float = 0.0
    """model weights drawn from a normal truncated at 2 std with this std, zero biases (the authors': 1e-5);
    0: torch's default."""
    value_max_grad_norm: float = 0.0
    """global-norm clip of the value regression's gradient (the authors': 2); 0: none."""
    slbo_mean_over_h: bool = False
    """SLBO's loss averaged over its h steps (the authors') instead of summed."""
    protocol: str = "ours"
    """named protocol: ours (the fields as given) or authors (every field still at its default takes the
    authors' value from deep.protocol: long model rollouts, OU exploration, entropy bonus, 20 rounds of
    2000 model and 800 TRPO updates per 10K real steps, ...)."""
    checkpoint_every: int = 5
    """iterations between checkpoints (always one at the end)."""
    evaluate_every: int = 0
    """iterations between evaluations as the authors report returns (4 fresh environments x 2500 steps, the
    stochastic policy without exploration noise; a row of evaluation.csv; always one at the end; the authors':
    every iteration, the untrained policy at step 0 included); 0: none (under --protocol authors, 0 is the
    default the protocol replaces: pass a large number instead). Not part of the run's identity: evaluating
    changes none of its numbers."""
    device: str = "auto"
    """torch device: auto (CUDA when present), cpu, cuda."""

    def __post_init__(self):
        check_choice("protocol", self.protocol, PROTOCOL_NAMES)
        if self.protocol != "ours":
            from deep.protocol import config_overrides, ours_defaults

            defaults = ours_defaults()
            for name, value in config_overrides(self.protocol).items():
                if getattr(self, name) == defaults[name]:  # a field given explicitly keeps its value
                    object.__setattr__(self, name, value)
        check_choice("env", self.env, ENV_NAMES)
        check_choice("method", self.method, METHOD_NAMES)
        a0, l0 = TABLE1.get((self.env.removesuffix("-mbbl"), self.method), (1.0, 0.0))  # Table 1 is per task
        if self.alpha is None:
            object.__setattr__(self, "alpha", a0)
        if self.lam is None:
            object.__setattr__(self, "lam", l0)
        check_int("seed", self.seed, 0)
        check_int("evaluate_every", self.evaluate_every, 0)
        for name in ("steps", "n_real", "k_model", "value_refresh_every", "refresh_samples", "k_policy",
                     "policy_samples", "rollout_envs", "model_batch", "horizon", "value_epochs", "value_batch",
                     "cg_iters", "checkpoint_every", "rounds", "entropy_steps"):
            check_int(name, getattr(self, name), 1)
        if self.k_model % self.rounds or self.k_policy % self.rounds:
            raise ValueError(f"k_model ({self.k_model}) and k_policy ({self.k_policy}) must be multiples of "
                             f"rounds ({self.rounds})")
        for name in ("refresh_after", "slbo_mean_over_h"):
            check_bool(name, getattr(self, name))
        for name in ("ou_sigma", "entropy_coef", "model_init_std", "value_max_grad_norm"):
            check_float(name, getattr(self, name), 0.0)
        check_float("ou_theta", self.ou_theta, 0.0, 1.0)
        for name in ("model_hidden", "policy_hidden", "value_hidden"):
            object.__setattr__(self, name, check_int_tuple(name, getattr(self, name)))
        if self.horizon < 2 and (self.method == "slbo" or self.method.endswith("_vps")):
            raise ValueError(f"method {self.method} needs horizon >= 2; got {self.horizon}")
        check_bool("value_norm", self.value_norm)
        applies = reward_term_applies(self.env, self.method)
        if self.reward_term is not None:
            check_bool("reward_term", self.reward_term)
        object.__setattr__(self, "reward_term", applies and self.reward_term is not False)
        check_float("value_norm_min_std", self.value_norm_min_std, 0.0, low_open=True)
        for name in ("alpha", "lam", "mle_weight", "model_lr", "value_lr", "max_kl", "cg_damping",
                     "model_weight_decay", "model_max_grad_norm"):
            check_float(name, getattr(self, name), 0.0)
        if self.mle_weight and self.method not in VALUE_AWARE_METHODS:  # a no-op there, yet a new run identity
            raise ValueError(f"mle_weight is for the value-aware methods {VALUE_AWARE_METHODS}; "
                             f"got {self.mle_weight} with method {self.method}")
        check_float("init_log_std", self.init_log_std)
        check_float("gamma", self.gamma, 0.0, 1.0, high_open=True)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if self.policy_samples % self.rollout_envs or self.refresh_samples % self.rollout_envs:
            raise ValueError(f"policy_samples ({self.policy_samples}) and refresh_samples ({self.refresh_samples}) "
                             f"must be multiples of rollout_envs ({self.rollout_envs})")
        check_choice("device", self.device, ("auto", "cpu", "cuda"))

    def validate(self) -> "RunConfig":
        """``self``: a config is validated when it is made."""
        return self

    def memory_bytes(self, obs_dim: int = 29, act_dim: int = 8) -> int:
        """The replay buffer's size (float32 obs, act, next obs for every real step) plus the networks
        (``obs_dim``, ``act_dim`` default to the largest of our environments, Ant's)."""
        buffer = self.steps * (4 * (2 * obs_dim + act_dim) + 1)
        widths = [obs_dim + act_dim, *self.model_hidden, obs_dim]
        params = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        return buffer + 16 * params

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that make two runs the same run (hashed into the run directory, checked on resume):
        all but ``HASH_EXCLUDE``, and the ``LEGACY_FIELDS`` only when they differ from their legacy values;
        ``checkpoint_every`` always at its default."""
        d = {k: v for k, v in self.to_dict().items()
             if k not in HASH_EXCLUDE and not (k in LEGACY_FIELDS and v == LEGACY_FIELDS[k])}
        # how often a run checkpoints does not change its numbers: any value resumes the same run (the default
        # stands in for it, so the run directories of default runs keep their hash)
        d["checkpoint_every"] = RunConfig.checkpoint_every
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(names)
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        kw = {**LEGACY_FIELDS, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}}
        return cls(**kw)


def make_config(env: str, method: str, alpha: float | None = None, lam: float | None = None,
                **overrides: Any) -> RunConfig:
    """A validated config; ``alpha``/``lam`` from Table 1 for (env, method) unless given."""
    return RunConfig(env=env, method=method, alpha=alpha, lam=lam, **overrides)


def run_dir(root: str | Path, cfg: RunConfig) -> RunDir:
    """:func:`lab.rundir.run_dir` of the deep experiment: ``<root>/deep/<config-hash>/seed<k>``, the hash over
    ``cfg.identity()`` (no seed, step budget, device)."""
    return lab_run_dir(root, EXPERIMENT, cfg)


def run_path(root: str | Path, cfg: RunConfig) -> Path:
    """The path of :func:`run_dir`."""
    return run_dir(root, cfg).path


def find_deep_runs(root: str | Path) -> list[tuple[dict, Path]]:
    """``(config, run directory)`` of every deep run under ``root``: a run root holding ``deep/``, or that
    ``deep/`` folder (or any folder of runs) itself."""
    root = Path(root)
    return find_runs(root / EXPERIMENT if (root / EXPERIMENT).is_dir() else root)
