"""deep.protocol: the authors' protocol table against the values read from their files, and its mapping onto
RunConfig.

Every literal below was read from nirbhayjm/va_slbo @ da9b45b (the path and line on each line); a config file
overrides the flag default in slbo/utils/flags.py, and the README's command adds model.value_update_interval=20.
"""

import dataclasses

import pytest

from deep.config import RunConfig, make_config
from deep.protocol import (AUTHORS, PROTOCOLS, config_overrides, divergences, diverges, loop_changes, markdown,
                           ours_defaults)

#: setting key -> the authors' value, read from the cited file
READ = {
    "real_chunk": 10000,                # slbo/utils/flags.py:60  rollout.n_train_samples = 10000
    "episode_length": 1000,             # configs/env_tingwu/gym_hopper.yml:5,7  runner/plan max_steps: 1000
    "buffer": 200000,                   # slbo/utils/flags.py:59  rollout.max_buf_size = 200000 (use_prev True :14)
    "ou_noise": (0.15, 0.3, 0.0),       # slbo/utils/flags.py:84-85 theta, sigma; slbo/utils/OU_noise.py:9 mu=0.0
    "action_clip": "none",              # slbo/utils/runner.py:46-51 rescale only; dynamics_model.py:35 model clips
    "dev_data": 10000,                  # slbo/utils/flags.py:61,66  n_dev_samples = n_dev_samples or n_train_samples
    "n_iters": 20,                      # configs/algos/va.yml:9  slbo.n_iters: 20
    "model_updates": 20 * 100,          # configs/algos/va.yml:9-10  n_iters 20 x n_model_iters 100
    "trpo_updates": 20 * 40,            # configs/algos/va.yml:9,11  n_iters 20 x n_policy_iters 40
    "refresh_interval": 20,             # README.md:44  model.value_update_interval=20
    "refresh_timing": "after",          # slbo/main.py:329  (model_iter_idx + 1) % value_update_interval == 0
    "refresh_rollouts": (4, 1000),      # slbo/utils/flags.py:46,51  4000 // plan.max_steps 1000 (gym_hopper.yml:7)
    "trpo_rollouts": (4, 1000),         # slbo/main.py:405  runners["train"].run(policy, n_trpo_samples = 4000)
    "entropy_bonus": (0.005, 50),       # configs/algos/va.yml:13 ent_coef 0.005; slbo/main.py:274 `if T >= 50`
    "trpo": (0.01, 10, 0.1),            # slbo/utils/flags.py:118,117,116  max_kl, n_cg_iters, cg_damping
    "line_search": (0.5, 10, 1.5),      # slbo/algos/TRPO.py:268 step_size *= 0.5; :241 range(10); :254 * 1.5
    "gae": (0.99, 0.95),                # slbo/utils/flags.py:125,124  runner.gamma, runner.lambda_
    "policy": ((32, 32), 1.0),          # slbo/utils/flags.py:105-106  policy.hidden_sizes, policy.init_std
    "policy_init": "normc",             # slbo/policies/gaussian_mlp_policy.py:32,34  normc_initializer(1), (0.01)
    "value_fit": (5, 64, 1e-3),         # slbo/utils/flags.py:120,119 n_vf_iters, vf_lr; slbo/algos/TRPO.py:287 64
    "value_grad_clip": 2.0,             # slbo/algos/TRPO.py:163  compute_vf(..., max_grad_norm=2.0)
    "value_net": ((64, 64), "normc"),   # slbo/main.py:111 MLPVFunction(dim_state, [64, 64]); mlp_v_function.py:13
    "model": ((500, 500), 1e-3, 128),   # slbo/utils/flags.py:88,92; configs/algos/va.yml:4 train_batch_size 128
    "model_regularization": (1e-5, 2.0),  # slbo/utils/flags.py:93 weight_decay; slbo/loss/va_loss.py:116 clip 2.0
    "model_init": 1e-5,                 # slbo/dynamics_model.py:16  truncated_normal_initializer(stddev=1e-5)
    "model_input": "all",               # slbo/dynamics_model.py:35  concat(normalizers.state(states), actions)
    "model_state_clip": 100.0,          # slbo/dynamics_model.py:39  .clip_by_value(-100, 100)
    "va_horizon": 1,                    # slbo/utils/flags.py:91 multi_step = 1; configs/algos/va.yml sets none
    "va_loss": "no reward term",        # slbo/loss/va_loss.py:86-91  V(next_states_) - V(model(states, actions))
    "va_loss_coeff": 0.01,              # slbo/utils/flags.py:99; configs/algos/va.yml:5  va_loss_coeff: 1e-2
    "slbo_loss": (2, "mean"),           # configs/algos/slbo.yml:3 multi_step 2; multi_step_loss.py:73 / self._step
    "mle_loss": "defective",            # slbo/loss/mle_loss.py:62-63 pred_ns = cur_states + model(...), a state
    "vps": "absent",                    # slbo/loss/va_loss.py:101-108  loss = va_loss_coeff * va_loss only
    "evaluation": (4, 10000),           # slbo/main.py:184 make_real_runner(4); slbo/utils/flags.py:62 10000
}


def test_the_table_holds_the_values_read_from_the_authors_files():
    assert [s.key for s in AUTHORS] == list(READ)  # every row checked, none unchecked
    for s in AUTHORS:
        assert s.authors == READ[s.key], s.key
        assert PROTOCOLS["authors"][s.key] == READ[s.key]


def test_every_row_cites_a_file_and_line():
    for s in AUTHORS:
        assert any(f"{ext}:" in s.source for ext in (".py", ".yml", ".md")), (s.key, s.source)


def test_authors_fields_are_runconfig_fields_and_make_a_valid_config():
    names = {f.name for f in dataclasses.fields(RunConfig)}
    over = config_overrides("authors")
    assert set(over) <= names
    cfg = make_config("hopper-slbo", "ma_l1", **over)
    # per 10K real steps (one stage): 2000 model steps, 800 TRPO updates, 100 value refits, of 4 x 1000 steps
    per_stage = 10_000 / cfg.n_real
    assert cfg.k_model * per_stage == 2000 and cfg.k_policy * per_stage == 800
    assert cfg.k_model // cfg.value_refresh_every * per_stage == 20 * (100 // 20)
    assert (cfg.rollout_envs, cfg.refresh_samples // cfg.rollout_envs, cfg.policy_samples // cfg.rollout_envs) \
        == (4, 1000, 1000)
    assert cfg.reward_term is False and make_config("hopper", "ma_l1", **over).reward_term is False


def test_ours_is_read_from_runconfig():
    defaults, default_run = ours_defaults(), RunConfig()
    assert PROTOCOLS["ours"]["real_chunk"] == {"n_real": default_run.n_real}
    assert PROTOCOLS["ours"]["refresh_rollouts"] == {"refresh_samples": default_run.refresh_samples,
                                                     "rollout_envs": default_run.rollout_envs}
    for s in AUTHORS:
        if s.config:
            assert PROTOCOLS["ours"][s.key] == {k: defaults[k] for k in s.config}
    assert config_overrides("ours") == defaults
    with pytest.raises(ValueError, match="valid"):
        config_overrides("paper")


def test_divergences_are_exactly_the_rows_that_differ():
    keys = {s.key for s in divergences()}
    # today's defaults (deep/config.py): 2000-step chunks, 500 model / 50 TRPO steps per 10K, refits every 25
    # model steps on 20 x 50 steps, TRPO on 20 x 200, reward term on for Gymnasium's MuJoCo
    assert {"real_chunk", "model_updates", "trpo_updates", "refresh_interval", "refresh_rollouts",
            "trpo_rollouts", "va_loss", "ou_noise", "entropy_bonus", "value_grad_clip", "model_init",
            "slbo_loss", "refresh_timing"} <= keys
    assert not keys & {"episode_length", "trpo", "gae", "policy", "value_fit", "model", "model_regularization",
                       "va_horizon"}
    for s in AUTHORS:
        assert diverges(s) == (s.key in keys)


def test_every_divergence_the_issue_names_is_a_field_and_the_rest_name_the_function_to_change():
    over = config_overrides("authors")
    # each wired divergence is a RunConfig field whose authors' value differs from ours
    wired = {"ou_noise": ("ou_sigma",), "entropy_bonus": ("entropy_coef",), "n_iters": ("rounds",),
             "refresh_timing": ("refresh_after",), "value_grad_clip": ("value_max_grad_norm",),
             "model_init": ("model_init_std",), "slbo_loss": ("slbo_mean_over_h",),
             "evaluation": ("evaluate_every",)}
    defaults = ours_defaults()
    for key, fields in wired.items():
        row = next(s for s in AUTHORS if s.key == key)
        assert all(f in row.config and over[f] != defaults[f] for f in fields), key
    changes = loop_changes()
    assert not {s.key for s in changes} & set(wired)
    assert {s.key for s in changes} >= {"action_clip", "line_search", "policy_init", "model_input",
                                        "model_state_clip", "buffer"}
    funcs = ("Trainer.", "trpo_step", "fit_value", "DynamicsModel", "GaussianPolicy", "ValueNet", "ReplayBuffer",
             "objectives.")
    for s in changes:
        assert any(f in s.wiring for f in funcs), (s.key, s.wiring)


def test_the_authors_protocol_by_name_sets_every_field_left_at_its_default():
    cfg = RunConfig(env="hopper-slbo", method="ma_l1", protocol="authors")
    over = config_overrides("authors")
    assert all(getattr(cfg, k) == v for k, v in over.items())
    mine = RunConfig(env="hopper-slbo", method="ma_l1", protocol="authors", k_model=400, ou_sigma=0.1)
    assert (mine.k_model, mine.ou_sigma, mine.k_policy) == (400, 0.1, 800)  # given fields keep their values
    # the name is not part of a run's identity: the fields it sets are
    explicit = RunConfig(env="hopper-slbo", method="ma_l1", **over)
    assert explicit.identity() == cfg.identity() != RunConfig(env="hopper-slbo", method="ma_l1").identity()
    # evaluating every iteration changes no number of the run: not part of its identity either
    assert cfg.evaluate_every == 1 and "evaluate_every" not in cfg.identity()
    with pytest.raises(ValueError, match="protocol"):
        RunConfig(protocol="paper")
    with pytest.raises(ValueError, match="multiples of rounds"):
        RunConfig(rounds=3)


def test_markdown_lists_every_row():
    text = markdown()
    assert all(f"| {s.key} |" in text for s in AUTHORS)
    assert text.count("\n") == len(AUTHORS) + 1


def test_the_authors_entropy_bonus_pulls_like_ours_below_unit_noise():
    """SLBO's LimitedEntNormal entropy as coded (slbo/utils/truncated_normal.py:8-11, transcribed below): its
    gradient in log-std is 1 for small std (ours: 1 always), 0.7-1.33 at std 1 (mean 1 or 0), and negative by
    std e. It is not the Gaussian's -p log p over [-2, 2] (quadrature: slope 0.32 at std 1), which is what its
    name suggests; the row's note in deep.protocol says which."""
    import numpy as np
    from scipy import integrate, special, stats

    def limited_ent(log_std, mu=0.0):  # their _entropy, line by line
        sd = np.exp(log_std)
        hi, lo = (2.0 - mu) / sd / np.sqrt(2), (-2.0 - mu) / sd / np.sqrt(2)
        return (0.5 * (log_std + np.log(2 * np.pi) / 2) * (special.erf(hi) - special.erf(lo))
                + 0.5 * (np.exp(-hi * hi) * hi - np.exp(-lo * lo) * lo))

    def partial_entropy(log_std, mu=0.0):
        sd = np.exp(log_std)
        f = lambda x: -stats.norm.pdf(x, mu, sd) * stats.norm.logpdf(x, mu, sd)
        return integrate.quad(f, -2.0, 2.0, epsabs=1e-12, epsrel=1e-12, limit=200)[0]

    def slope(h, log_std, mu=0.0, e=1e-4):
        return (h(log_std + e, mu) - h(log_std - e, mu)) / (2 * e)

    assert slope(limited_ent, -3.0) == pytest.approx(1.0, abs=1e-3)
    assert slope(limited_ent, 0.0) == pytest.approx(1.33, abs=0.01)
    assert slope(limited_ent, 0.0, mu=1.0) == pytest.approx(0.70, abs=0.01)
    assert slope(limited_ent, 1.0) < 0 and slope(limited_ent, 1.0, mu=1.0) < 0
    assert slope(partial_entropy, 0.0) == pytest.approx(0.32, abs=0.01)
    row = {s.key: s for s in AUTHORS}["entropy_bonus"]
    assert "0.7-1.33" in row.wiring and "as coded" in row.wiring
