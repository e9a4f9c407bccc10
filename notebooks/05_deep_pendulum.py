# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Value-aware model learning with neural networks on Pendulum (Algorithm 2)
#
# *Modhe et al. (2021), Model-Advantage Optimization for Model-Based RL, Sections 3.3-3.4 and 4.2.*
#
# In continuous state spaces the model is a deterministic network $\hat s' = p_\phi(s, a)$ and the value a network
# $V_\theta$. The model-advantage upper bound (Eq. 10) becomes $\frac1B\sum_i|V_\theta(s'_i) - V_\theta(p_\phi(s_i, a_i))|$:
# the gradient flows through the *predicted state* into $\phi$, while $V_\theta$ is held fixed (Sec. 3.1, footnote 3).
# Algorithm 2's key change to Dyna-style MBRL is to **refresh $V_\theta$ on rollouts in the current model between
# model updates** (lines 7-8), so the value inside the model loss is never stale. This notebook uses the library in
# `deep/` (torch): the objectives (`deep.objectives`), one run's state (`deep.algorithm.Trainer`) and a short
# training run (`deep.algorithm.train_run`) with TRPO as the policy learner.

# %%
# %matplotlib inline
import copy
import dataclasses
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import torch

from deep.algorithm import Trainer, train_run
from deep.config import TABLE1, make_config
from deep.envs import make_spec
from deep.objectives import METHOD_PARTS, frozen, model_loss
from deep.plot import collect_curves
from lab.plot import plot_learning_curves
from lab.rundir import find_runs, read_metrics

torch.set_num_threads(1)

# %% tags=["parameters"]
QUICK = True  # False: the paper-scale budget of deep/config.py (200K real steps, ~10 min per run on one core)
RUN_METHODS = ["mle", "ma_l1"]  # methods for the short training run
SEEDS = 1 if QUICK else 3
# small networks and iterations so that the whole notebook runs in well under a minute on two CPU cores
SMALL = dict(steps=6000, n_real=500, k_model=40, value_refresh_every=10, refresh_samples=500, k_policy=4,
             policy_samples=1000, model_hidden=(64, 64), device="cpu")
BUDGET = SMALL if QUICK else dict(device="cpu")

# %% [markdown]
# ## The environment
# Pendulum with actions normalized to $[-1, 1]$ and a time limit; the reward and the start-state distribution are
# known functions (`deep.envs`), so model rollouts only need the learned dynamics.

# %%
spec = make_spec("pendulum")
print(f"obs_dim={spec.obs_dim} act_dim={spec.act_dim} max_steps={spec.max_steps}")

# %% [markdown]
# ## The objectives on a batch of real transitions
# After one iteration of Algorithm 2 (real data, model and policy updates), evaluate every model objective of
# `deep.objectives` on the same batch of real segments, with the paper's Table 1 weights. Appendix C trains every
# model on $\alpha\,\mathcal{L}_{\text{main}} + \lambda\,\mathcal{L}_{\text{VPS}}$: $\alpha$ scales the method's own
# objective (Eq. 10 for MA-L1, the VAML loss for MA-VAML) against the model's L2 weight penalty, and $\lambda$ weighs
# the value-prediction-smoothness term of Eq. 12 (0 without VPS). Table 1 lists the selected $(\alpha, \lambda)$
# per task (`deep.config.TABLE1`); MLE and SLBO use $\alpha = 1$, $\lambda = 0$.

# %%
cfg = make_config("pendulum", "ma_l1", seed=0, **SMALL)
trainer = Trainer(cfg)
trainer.iterate()
starts = trainer.buffer.segment_starts(2)
idx = starts[np.random.default_rng(0).integers(len(starts), size=256)]
s, a = (torch.as_tensor(x) for x in trainer.buffer.segments(idx, 2))  # s (B, 3, S), a (B, 2, A)
value = frozen(trainer.value)
print(f"{'method':12s} {'alpha':>7s} {'lambda':>7s} {'loss':>12s}   parts")
for method in METHOD_PARTS:
    alpha, lam = TABLE1.get(("pendulum", method), (1.0, 0.0))
    loss, parts = model_loss(method, trainer.model, value, s, a, alpha, lam)
    print(f"{method:12s} {alpha:7.0e} {lam:7.0e} {float(loss.detach()):12.4g}   {parts}")

# %% [markdown]
# The value is **held fixed**: the gradient of the MA-L1 loss reaches the model's parameters (through the predicted
# state) and none of the value network's.

# %%
trainer.model.zero_grad(set_to_none=True)
trainer.value.zero_grad(set_to_none=True)
loss, _ = model_loss("ma_l1", trainer.model, value, s, a, *TABLE1[("pendulum", "ma_l1")])
loss.backward()
model_grad = sum(float(p.grad.norm()) for p in trainer.model.parameters() if p.grad is not None)
value_grads = [p.grad for p in trainer.value.parameters()]
print(f"model gradient norm (summed over tensors): {model_grad:.3g};  value gradients: "
      f"{'none' if all(g is None for g in value_grads) else 'present'}")
trainer.model.zero_grad(set_to_none=True)

# %% [markdown]
# ## Why Algorithm 2 refreshes the value (lines 7-8)
# Start two copies of the same run from the same state and perform one model-update phase ($K_{\text{model}}$ steps
# of MA-L1): one refreshes $V_\theta$ on rollouts in the current model every few model steps (Algorithm 2), the
# other only once at the start (the value then describes an older model: Algorithm 1's stale value). Afterwards,
# measure how far each value is from the returns in the *current* model: the value-regression loss of one epoch
# on fresh model rollouts (`Trainer.refresh_value` with one epoch).

# %%
def staleness_after_model_phase(refresh_every, n_iter=3):
    base = Trainer(cfg)
    for _ in range(n_iter):
        base.iterate()
    tr = Trainer(cfg)
    tr.load_state_dict(copy.deepcopy(base.state_dict()))  # an identical copy of the run
    tr.cfg = dataclasses.replace(cfg, value_refresh_every=refresh_every)
    tr.update_model()
    tr.cfg = dataclasses.replace(cfg, value_epochs=1)
    return tr.refresh_value(2000)


stale = staleness_after_model_phase(refresh_every=10 ** 9)  # refreshed once, at the first model step
fresh = staleness_after_model_phase(refresh_every=cfg.value_refresh_every)
print(f"value error in the current model after the model phase: stale {stale:.4g}   refreshed {fresh:.4g}")

# %% [markdown]
# The refreshed value fits the current model's returns better (lower is better; one run of one seed, so expect
# run-to-run variation). A stale value makes the MA objectives match the values of an *older* model, which is what
# Sec. 3.3 identifies as the reason value-aware objectives failed in standard MBRL loops.

# %% [markdown]
# ## A short run and its learning curve
# `train_run` runs Algorithm 2 end to end (checkpointed, resumable) and logs one row per iteration; the curves are
# read back with `deep.plot.collect_curves`. With the `QUICK` budget (a few thousand real steps, small networks)
# the policy barely starts to improve: this shows the pipeline and its diagnostics, not the paper's result; set
# `QUICK = False` for the paper-scale budget.

# %%
root = tempfile.mkdtemp(prefix="deep_")
for method in RUN_METHODS:
    for seed in range(SEEDS):
        train_run(make_config("pendulum", method, seed=seed, **BUDGET), root=root, progress=False)
curves = collect_curves(root)["pendulum"]
metrics = {c["method"]: read_metrics(p) for c, p in find_runs(f"{root}/deep")}

fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
plot_learning_curves(axes[0], curves, ylabel="episode return (real env)", title="Pendulum")
axes[0].legend(fontsize=8)
for ax, key, label in ((axes[1], "one_step_error", "one-step prediction error (normalized MSE)"),
                       (axes[2], "refresh_value_loss", "value loss at refresh (MA methods)")):
    for method, m in metrics.items():
        if np.isfinite(m[key]).any():
            ax.plot(m["step"], m[key], "o-", ms=3, label=method)
    ax.set(xlabel="real environment steps", ylabel=label, yscale="log")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Reading the curves.** MLE drives the one-step state-prediction error down fastest, since that is what it
# optimizes; MA-L1 only asks the predicted state to have the right *value*, so its state error stays higher. Whether
# such a model is still good for planning is what the return curves of Figure 2 measure (README, deep section); these
# few iterations do not show it (notebook 03 shows the objectives' contrast exactly, in the tabular case). The value
# loss at refresh (right) is the staleness Algorithm 2 removes at every refresh.

# %% [markdown]
# ## Why the value network's scale matters for value-aware models
# Pendulum's discounted returns are of order $-100$ to $-1000$. A tanh value network whose output layer must
# produce such numbers directly ($V = w^\top h + b$ with $|h_i| \le 1$) gets there by saturating its hidden units,
# and a saturated network is *flat*: $\nabla_s V_\theta \approx 0$. MLE and SLBO do not care (the value only
# scores TRPO's advantages), but MA-L1 and MA-VAML learn the model *only* through $\nabla_s V_\theta$ at the
# predicted state, so a flat value gives the model no signal at all. The library's `value_norm` option
# (`modeladv train --value-norm`, not in the paper) lets the network predict normalized returns,
# $V = \mu + \sigma\, f_\theta(s)$, with $\mu, \sigma$ tracking the regression targets (PopArt). Below: the same
# regression, Pendulum-sized targets, with and without it.

# %%
gen = torch.Generator().manual_seed(0)
xs = torch.randn(512, 2, generator=gen)
returns = -800.0 + 150.0 * torch.tanh(xs[:, 0]) - 60.0 * xs[:, 1]  # true gradient: (150 sech^2(x0), -60)
true_grad = torch.stack([150.0 / torch.cosh(xs[:, 0]) ** 2, torch.full_like(xs[:, 0], -60.0)], 1)
from deep.policy import ValueNet, fit_value  # noqa: E402

for norm in (False, True):
    torch.manual_seed(0)
    vnet = ValueNet(2, normalize_output=norm)
    vnet.obs_norm.fit(xs)
    fit_value(vnet, torch.optim.Adam(vnet.parameters(), lr=1e-3), xs, returns, epochs=30,
              g=torch.Generator().manual_seed(0))
    x = xs.clone().requires_grad_(True)
    grad = torch.autograd.grad(vnet(x).sum(), x)[0]
    rmse = float((vnet(xs) - returns).detach().pow(2).mean().sqrt())
    cos = float(torch.nn.functional.cosine_similarity(grad, true_grad, dim=1).mean())
    print(f"value_norm={norm!s:5}  RMSE {rmse:7.1f} (targets' s.d. {float(returns.std()):.0f})   "
          f"mean |grad_s V| {float(grad.norm(dim=1).mean()):6.2f} (true {float(true_grad.norm(dim=1).mean()):.0f})   "
          f"cosine to the true gradient {cos:+.2f}")

# %% [markdown]
# After the same 60 Adam steps the plain network is still hundreds off and its input gradient is about 0.5% of
# the true one; the normalized network matches the values and the gradient direction. How much fitting the plain
# network gets decides whether it ever acquires a useful slope: the deep defaults follow the authors' code and
# refit the critic for 5 epochs of batch 64 after every TRPO update, and with that budget MA-L1 learns Pendulum
# with the plain value network (README, "Deep value-aware MBRL"; not shown in this notebook's quick runs).
# `value_norm` stays an ablation outside the paper.
