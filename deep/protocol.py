"""The authors' training protocol as a table of values, each with its citation, beside today's loop.

Read from the authors' code, nirbhayjm/va_slbo @ da9b45b (a clone of facebookresearch/slbo @ c963d6e with the
value-aware loss added), run as its README says: ``python slbo/main.py --config configs/algos/${ALGO}.yml
configs/env_tingwu/gym_cheetah.yml --set algorithm=${ALGO} model.va_norm=l1 model.value_update_interval=20``
(``ALGO`` = ``va``, ``mle`` or ``slbo``). Citations name the file and line at that commit, or the flag
(``slbo/utils/flags.py``); a config file's value overrides the flag default.

Each :class:`Setting` maps to ``RunConfig`` fields where they exist (``config``: field -> the authors' value in
that field's units) and otherwise says what the loop must do (``wiring``); ``ours`` is today's value: read
from ``RunConfig``'s defaults for mapped rows, else the loop's behaviour at ``ours_source``. Nothing here
changes a run: ``config_overrides("authors")`` gives the mapped fields' values, and the rows with ``wiring``
are the loop changes still to make. This module does not import torch.

Findings beyond the settings (rows ``mle_loss``, ``vps``, ``dev_data``): the authors' MLE baseline trains
``s + f(s, a)`` against ``s'`` while ``f`` already returns a next state, so its model is trained to output
``s' - s`` and rolled out as if that were the next state; their code has no VPS term; each stage also
collects 10K real steps with OU noise into a dev set that is neither counted nor used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from deep.config import VALUE_AWARE_METHODS, RunConfig

__all__ = ["Setting", "AUTHORS", "REPO", "PROTOCOLS", "SWITCHES", "CELLS", "ours_defaults", "config_overrides",
           "cell_overrides", "inert_fields", "changes_run", "diverges", "divergences", "loop_changes", "markdown"]

#: the authors' code; every ``source`` below is a path in it unless it names another repository
REPO = "nirbhayjm/va_slbo@da9b45b"
_F = "slbo/utils/flags.py"


@dataclass(frozen=True)
class Setting:
    """One value of the authors' protocol.

    ``authors``: their value; ``source``: where it is set (file:line or flag); ``config``: RunConfig field ->
    the authors' value there (empty when no field exists); ``ours``/``ours_source``: today's behaviour for
    rows without a field; ``wiring``: what the training loop must do to follow the authors (empty where the
    config fields suffice or nothing is to be done).
    """

    key: str
    what: str
    authors: Any
    source: str
    config: Mapping[str, Any] = field(default_factory=dict)
    ours: Any = None
    ours_source: str = ""
    wiring: str = ""


AUTHORS: tuple[Setting, ...] = (
    # ------------------------------------------------------------------ real data
    Setting("real_chunk", "real steps collected per stage (one env, episodes continue across stages)", 10_000,
            f"{_F}:60 rollout.n_train_samples; slbo/main.py:239-242", {"n_real": 10_000}),
    Setting("episode_length", "time limit of real and model episodes (runner.max_steps, plan.max_steps)", 1000,
            "configs/env_tingwu/gym_{cheetah,hopper,ant,swimmer}.yml:5,7",
            ours=1000, ours_source="deep.envs EnvSpec.max_steps of the MuJoCo tasks"),
    Setting("buffer", "real transitions kept (use_prev, max_buf_size; a ring buffer beyond it)", 200_000,
            f"{_F}:14,59; lunzi/dataset.py:46-67", ours="all (ReplayBuffer of RunConfig.steps)",
            ours_source="deep.algorithm.Trainer.__init__",
            wiring="ReplayBuffer: capacity 200000, overwrite the oldest (matters only beyond 200K real steps)"),
    Setting("ou_noise", "Ornstein-Uhlenbeck noise (theta, sigma, mu) added to the sampled Gaussian action on all "
            "real data; one process of shape (1, A), never reset", (0.15, 0.3, 0.0),
            f"{_F}:84-85 OUNoise; slbo/utils/OU_noise.py:9,22-31; slbo/main.py:105-110,240,245",
            {"ou_theta": 0.15, "ou_sigma": 0.3}),
    Setting("action_clip", "real and model actions reach the env and the reward unclipped (ctrl = a * half-range, "
            "MuJoCo clamps ctrl; Hopper/Ant/Swimmer charge |a|^2 beyond 1); stored unclipped; the model clips its "
            "action input to [-1, 1]", "none",
            "slbo/utils/runner.py:46-51,59; slbo/envs/virtual_env.py:39-40; slbo/dynamics_model.py:35",
            ours="clip to [-1, 1]", ours_source="deep.algorithm.Trainer.collect (np.clip) and model_rollout (clamp)",
            wiring="Trainer.collect: step and store the raw (noisy) action; Trainer.model_rollout: pass the raw "
                   "action to spec.reward_fn; keep the clamp on the model's input only"),
    Setting("dev_data", "extra real steps per stage into a dev set: collected with OU noise, not counted in "
            "cum_steps, never read", 10_000,
            f"{_F}:61,64-66 rollout.n_dev_samples; slbo/main.py:242,244-247",
            ours=0, ours_source="deep.algorithm.Trainer.iterate",
            wiring="none for learning; a comparison of real-step budgets should know the authors' runs took 2x"),
    # ------------------------------------------------------------------ schedule per stage
    Setting("n_iters", "alternations of (model updates, TRPO updates) per stage", 20,
            "configs/algos/va.yml:9 (mle.yml:10, slbo.yml:8) slbo.n_iters; slbo/main.py:277",
            {"rounds": 20}),
    Setting("model_updates", "model gradient steps per stage (20 x n_model_iters 100)", 2000,
            "configs/algos/va.yml:9-10 slbo.n_iters, slbo.n_model_iters; slbo/main.py:303-323", {"k_model": 2000}),
    Setting("trpo_updates", "TRPO updates per stage (20 x n_policy_iters 40)", 800,
            "configs/algos/va.yml:9,11 slbo.n_iters, slbo.n_policy_iters; slbo/main.py:397-409",
            {"k_policy": 800}),
    Setting("refresh_interval", "model steps between value refits on model rollouts", 20,
            f"README.md:44,68 model.value_update_interval=20 (flag default 0: {_F}:101); slbo/main.py:327-330",
            {"value_refresh_every": 20}),
    Setting("refresh_timing", "a refit follows model step k when (k + 1) % 20 == 0: the fifth of each inner loop "
            "comes right before its TRPO updates", "after", "slbo/main.py:304,327-342",
            {"refresh_after": True}),
    Setting("refresh_rollouts", "value refit data: model episodes x steps from reset, V fit to GAE lambda-returns",
            (4, 1000), f"{_F}:46-52 plan.n_trpo_samples, plan.n_envs; configs/env_tingwu/gym_hopper.yml:7 "
            "plan.max_steps; slbo/main.py:331-338", {"refresh_samples": 4000, "rollout_envs": 4}),
    Setting("trpo_rollouts", "TRPO batch: model episodes x steps from reset", (4, 1000),
            f"{_F}:41,46 slbo.start, plan.n_trpo_samples; slbo/main.py:398-405",
            {"policy_samples": 4000, "rollout_envs": 4}),
    # ------------------------------------------------------------------ policy optimization
    Setting("entropy_bonus", "TRPO surrogate + ent_coef * entropy (SLBO's LimitedEntNormal: an entropy of the "
            "Gaussian restricted to [-2, 2], as coded); ent_coef 0 from stage 50 (500K real steps)", (0.005, 50),
            "configs/algos/va.yml:13 TRPO.ent_coef (flag default 0.0: slbo/utils/flags.py:121); "
            "slbo/algos/TRPO.py:132-142; slbo/utils/truncated_normal.py:6-11; slbo/main.py:220,274-275",
            {"entropy_coef": 0.005, "entropy_steps": 500_000},
            wiring="none: the bonus is the Gaussian's entropy here (gradient 1 in each log-std), SLBO's "
                   "LimitedEntNormal entropy as coded there (not the Gaussian's -p log p over [-2, 2]; gradient "
                   "1 for small std, 0.7-1.33 at std 1, negative by std e): about the same pull on the noise "
                   "while it is below 1"),
    Setting("trpo", "max KL, CG iterations, CG damping", (0.01, 10, 0.1), f"{_F}:116-118",
            {"max_kl": 0.01, "cg_iters": 10, "cg_damping": 0.1}),
    Setting("line_search", "TRPO step: full natural step, up to 10 halvings, accepted when KL <= 1.5 max_kl "
            "and the surrogate did not decrease (else the old policy)", (0.5, 10, 1.5),
            "slbo/algos/TRPO.py:239-271", ours=(0.8, 15, 1.0),
            ours_source="deep.policy.trpo_step (backtrack_ratio 0.8, max_backtracks 15, KL <= max_kl, "
                        "improvement > 0)",
            wiring="trpo_step: backtrack_ratio 0.5, max_backtracks 10, accept KL <= 1.5 * max_kl and "
                   "improvement >= 0"),
    Setting("gae", "discount and GAE lambda", (0.99, 0.95), f"{_F}:124-125 runner.gamma, runner.lambda_",
            {"gamma": 0.99, "gae_lambda": 0.95}),
    Setting("policy", "policy MLP widths (tanh), initial std", ((32, 32), 1.0), f"{_F}:105-106",
            {"policy_hidden": (32, 32), "init_log_std": 0.0}),
    Setting("policy_init", "policy weights: normc(1) hidden layers, normc(0.01) output layer, zero biases",
            "normc", "slbo/policies/gaussian_mlp_policy.py:32-34; lunzi/nn/layers.py:22",
            ours="torch default", ours_source="deep.policy.GaussianPolicy",
            wiring="GaussianPolicy.__init__: normc init (each unit's incoming weights a Gaussian draw scaled to "
                   "norm 1; 0.01 for the output layer), zero biases"),
    # ------------------------------------------------------------------ value function
    Setting("value_fit", "value regression after each TRPO update and refit: epochs, minibatch, Adam lr",
            (5, 64, 1e-3), f"{_F}:119-120 TRPO.vf_lr, n_vf_iters; slbo/algos/TRPO.py:284-290",
            {"value_epochs": 5, "value_batch": 64, "value_lr": 1e-3}),
    Setting("value_grad_clip", "global-norm clip of the value gradient", 2.0, "slbo/algos/TRPO.py:163,169-171",
            {"value_max_grad_norm": 2.0}),
    Setting("value_net", "value MLP widths (tanh), normc(1) init", ((64, 64), "normc"),
            "slbo/main.py:111; slbo/v_function/mlp_v_function.py:12-13", {"value_hidden": (64, 64)},
            wiring="ValueNet.__init__: normc(1) weights, zero biases"),
    # ------------------------------------------------------------------ model
    Setting("model", "model MLP widths (ReLU), Adam lr, minibatch (segments)", ((500, 500), 1e-3, 128),
            f"{_F}:88,92 model.hidden_sizes, model.lr; configs/algos/va.yml:4 model.train_batch_size",
            {"model_hidden": (500, 500), "model_lr": 1e-3, "model_batch": 128}),
    Setting("model_regularization", "weight decay wd * sum(w^2) / 2 unscaled by alpha, global-norm clip",
            (1e-5, 2.0), f"{_F}:93 model.weight_decay; slbo/loss/va_loss.py:116-131",
            {"model_weight_decay": 1e-5, "model_max_grad_norm": 2.0}),
    Setting("model_init", "model weights: truncated normal, std 1e-5 (TF truncates at 2 std); zero biases",
            1e-5, "slbo/dynamics_model.py:16,23-25; lunzi/nn/layers.py:22",
            {"model_init_std": 1e-5}),
    Setting("model_input", "the model reads every normalized state coordinate, absolute positions included",
            "all", "slbo/dynamics_model.py:35", ours="without EnvSpec.position_dims",
            ours_source="deep.models.DynamicsModel(position_dims)",
            wiring="Trainer.__init__: DynamicsModel(..., position_dims=()) under the authors' protocol"),
    Setting("model_state_clip", "predicted next states clipped to 100 standard deviations of the state "
            "normalizer", 100.0, "slbo/dynamics_model.py:39",
            ours="clamp to the real data's box widened by its width",
            ours_source="deep.algorithm.Trainer.model_rollout",
            wiring="Trainer.model_rollout: clamp (s2 - mu_s) / sigma_s to [-100, 100] instead of the box"),
    # ------------------------------------------------------------------ model objectives
    Setting("va_horizon", "value-aware loss: segment length h (model.multi_step, not set by va.yml)", 1,
            f"{_F}:91 model.multi_step; configs/algos/va.yml (no multi_step); slbo/main.py:137-148",
            ours=1, ours_source="deep.algorithm.Trainer.__init__ (one step for ma_l1 / ma_vaml)"),
    Setting("va_loss", "Eq. 10 as coded: va_loss_coeff * mean_B (1/h) sum_h |V(s') - V(f(s, a))| (l2: squared), "
            "one-step predictions from real states, no reward term, no gamma", "no reward term",
            "slbo/loss/va_loss.py:86-108", {"reward_term": False}),
    Setting("va_loss_coeff", "alpha: the code's default; the paper's Table 1 gives it per task (set on the command "
            "line)", 0.01, f"{_F}:99 model.va_loss_coeff; configs/algos/va.yml:5",
            ours="Table 1 (deep.config.TABLE1)", ours_source="deep.config.RunConfig.alpha"),
    Setting("slbo_loss", "SLBO (Eq. 11): h = 2, L2 norm of the normalized delta error per step, averaged over h",
            (2, "mean"), "configs/algos/slbo.yml:3 model.multi_step; slbo/loss/multi_step_loss.py:60-75; "
            "lunzi/nn/loss.py:30-35", {"horizon": 2, "slbo_mean_over_h": True}),
    Setting("mle_loss", "MLE as coded: squared error summed over raw (unnormalized) state dims of s + f(s, a) "
            "against s', where f already returns a next state: the model learns f = s' - s and is rolled out as "
            "if f were s'", "defective", "configs/algos/mle.yml:4-5; slbo/main.py:129-135,149-158; "
            "slbo/loss/mle_loss.py:61-64; slbo/dynamics_model.py:33-40; slbo/envs/virtual_env.py:39",
            ours="0.5 |normalized delta error|^2 (deep.objectives.mle)", ours_source="deep.objectives.mle",
            wiring="none: not to be reproduced; the paper's MLE curves come from this model"),
    Setting("vps", "value predictive smoothness (Eq. 12)", "absent", "slbo/loss/va_loss.py:101-108 (no VPS term)",
            ours="deep.objectives.vps", ours_source="deep.objectives.vps",
            wiring="none: Table 1's lambda cannot be checked against this code"),
    # ------------------------------------------------------------------ evaluation
    Setting("evaluation", "returns reported: at each stage's start, 4 fresh real envs x 2500 steps, the "
            "stochastic policy without OU noise, mean over finished episodes", (4, 10_000),
            f"{_F}:62 rollout.n_test_samples; slbo/main.py:29-41,184,227-232", {"evaluate_every": 1}),
)


def ours_defaults() -> dict[str, Any]:
    """Today's defaults of every ``RunConfig`` field (``alpha``/``lam`` None: Table 1)."""
    return {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _ours(s: Setting, defaults: Mapping[str, Any]) -> Any:
    if s.config:
        return {k: defaults[k] for k in s.config}
    return s.ours


def config_overrides(protocol: str) -> dict[str, Any]:
    """The ``RunConfig`` field values of a named protocol (``ours``: the defaults; ``authors``: every mapped row).
    ``ValueError`` for another name."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {sorted(PROTOCOLS)}")
    if protocol == "ours":
        return ours_defaults()
    out: dict[str, Any] = {}
    for s in AUTHORS:
        out.update(s.config)
    return out


#: the divergences of issue 20 as switches, each a group of rows above: switching one sets those rows' fields to
#: the authors' values and leaves every other field at ours (the ablation's cells, ``deep.ablation``)
SWITCHES: dict[str, tuple[str, ...]] = {
    # V fit and TRPO batches on 4 model episodes x 1000 steps from reset, the refit right before TRPO
    "rollouts": ("refresh_rollouts", "trpo_rollouts", "refresh_timing"),
    # Eq. 10 as printed: no known-reward gap (changes only value-aware runs on Gymnasium's MuJoCo tasks)
    "reward_term": ("va_loss",),
    # OU noise on real actions and TRPO's entropy bonus
    "exploration": ("ou_noise", "entropy_bonus"),
    # per 10K real steps 2000 model and 800 TRPO updates in 20 rounds, a value refit every 20 model steps
    "update_ratio": ("real_chunk", "n_iters", "model_updates", "trpo_updates", "refresh_interval"),
    # model init std 1e-5, value gradient clip 2, SLBO's loss averaged over h
    "small": ("model_init", "value_grad_clip", "slbo_loss"),
}


def _row_cells() -> list[str]:
    """Rows of a several-row switch that make a valid config alone (``ou_noise`` without ``entropy_bonus``;
    ``n_iters`` alone is none: 20 rounds do not divide today's 10 TRPO updates)."""
    rows = {s.key: s for s in AUTHORS}
    out = []
    for name, keys in SWITCHES.items():
        for key in keys if len(keys) > 1 else ():
            try:
                RunConfig(**rows[key].config)
            except ValueError:
                continue
            out.append(key)
    return out


#: the ablation's cells: today's loop, one switch each (followed by those of its rows that stand alone, to split
#: a switch that matters), and every switch at once (the authors' protocol)
CELLS = ("ours", *[c for name in SWITCHES for c in (name, *[k for k in _row_cells() if k in SWITCHES[name]])],
         "authors")


def cell_overrides(cell: str) -> dict[str, Any]:
    """The ``RunConfig`` fields an ablation cell sets (:data:`CELLS`): none for ``ours``, the rows of one
    switch, one row, or every mapped row for ``authors``. ``ValueError`` for another name."""
    if cell == "ours":
        return {}
    if cell == "authors":
        return config_overrides("authors")
    if cell not in CELLS:
        raise ValueError(f"unknown ablation cell {cell!r}; valid: {', '.join(CELLS)}")
    rows = {s.key: s for s in AUTHORS}
    out: dict[str, Any] = {}
    for key in SWITCHES.get(cell, (cell,)):
        out.update(rows[key].config)
    return out


def inert_fields(method: str) -> frozenset[str]:
    """``RunConfig`` fields that ``method``'s loop never reads (``deep.algorithm``): the value refits on model
    rollouts (Algorithm 2, lines 7-8) run for the value-aware methods only, and the mean over h changes SLBO's
    loss only.

    >>> sorted(inert_fields("mle"))
    ['refresh_after', 'refresh_samples', 'slbo_mean_over_h', 'value_refresh_every']
    >>> sorted(inert_fields("ma_l1"))
    ['slbo_mean_over_h']
    """
    out = set() if method in VALUE_AWARE_METHODS else {"refresh_after", "refresh_samples", "value_refresh_every"}
    if method != "slbo":
        out.add("slbo_mean_over_h")
    return frozenset(out)


def changes_run(env: str, method: str, fields: Mapping[str, Any]) -> bool:
    """Whether ``fields`` on top of today's defaults give ``method`` on ``env`` another computation: another run
    identity once the fields the method never reads (:func:`inert_fields`) are left out. ``reward_term`` on an
    SLBO task or with MLE changes nothing either (``RunConfig`` drops it there)."""
    kept = {k: v for k, v in fields.items() if k not in inert_fields(method)}
    return RunConfig(env=env, method=method, **kept).identity() != RunConfig(env=env, method=method).identity()


def diverges(s: Setting, defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether today's defaults or loop differ from the authors' on row ``s``: a mapped field's default differs,
    or the row asks for a loop change, or (unmapped rows) ``ours != authors``."""
    d = ours_defaults() if defaults is None else defaults
    if s.config:
        return _ours(s, d) != dict(s.config) or bool(s.wiring)
    return s.ours != s.authors


def divergences() -> list[Setting]:
    """The rows where today's loop or defaults differ from the authors'."""
    d = ours_defaults()
    return [s for s in AUTHORS if diverges(s, d)]


def loop_changes() -> list[Setting]:
    """The rows no ``RunConfig`` field covers: what the loop must do (``wiring``) to follow the authors."""
    return [s for s in AUTHORS if s.wiring and not s.wiring.startswith("none")]


def markdown() -> str:
    """The table as markdown: key, the authors' value, ours, source, the field or the loop change."""
    d = ours_defaults()
    rows = ["| setting | authors | ours | source | RunConfig field / loop change |", "|---|---|---|---|---|"]
    for s in AUTHORS:
        how = ", ".join(f"{k}={v}" for k, v in s.config.items()) or s.wiring
        rows.append(f"| {s.key} | {s.authors} | {_ours(s, d)} | {s.source} | {how} |")
    return "\n".join(rows)


#: protocol name -> setting key -> value: ``ours`` from RunConfig's defaults (the loop's behaviour where no field
#: exists), ``authors`` the table above
PROTOCOLS: dict[str, dict[str, Any]] = {
    "ours": {s.key: _ours(s, ours_defaults()) for s in AUTHORS},
    "authors": {s.key: s.authors for s in AUTHORS},
}
