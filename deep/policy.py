"""Policy learning: Gaussian MLP policy, MLP value, GAE and TRPO — each defined once here.

Defaults follow the SLBO-family code: policy 32-32 tanh with a state-independent log-std, value 64-64
tanh, TRPO with max KL 0.01, 10 conjugate-gradient iterations with damping 0.1, and a backtracking line
search; GAE with gamma 0.99, lambda 0.95 (Schulman et al., 2015; 2016).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn

from deep.models import Normalizer, mlp

__all__ = ["GaussianPolicy", "ValueNet", "gae", "conjugate_gradient", "TRPOInfo", "trpo_step", "fit_value"]


class GaussianPolicy(nn.Module):
    """``pi(a|s) = N(mu_theta(s), diag(exp(2 log_std)))`` on normalized observations; actions in policy units
    (the environment clips them to [-1, 1])."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (32, 32), init_log_std: float = 0.0):
        super().__init__()
        self.obs_norm = Normalizer(obs_dim)
        self.mu = mlp([obs_dim, *hidden, act_dim], nn.Tanh)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def dist(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, A) and log-std (B, A)."""
        mu = self.mu(self.obs_norm(s))
        return mu, self.log_std.expand_as(mu)

    def log_prob(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        mu, log_std = self.dist(s)
        return (-0.5 * ((a - mu) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    @torch.no_grad()
    def sample(self, s: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        mu, log_std = self.dist(s)
        return mu + log_std.exp() * torch.randn(mu.shape, generator=g, dtype=mu.dtype).to(mu.device)


class ValueNet(nn.Module):
    """``V_theta(s)`` (B,): a tanh MLP on normalized observations.

    With ``normalize_output`` the net predicts normalized returns and ``V = mu + sigma * net(s)``; ``mu, sigma``
    are buffers that :func:`fit_value` sets from the regression targets (PopArt, van Hasselt et al., 2016:
    the last layer is rescaled so that V is unchanged when they move). ``sigma >= min_std``: when every target is
    the same (Acrobot rollouts that never terminate all return -100) a tiny sigma would multiply the last layer by
    ``sigma_old / sigma`` (1e5 measured) and wreck the net. Without it (the default) ``V = net(s)``
    and returns of magnitude 100-1000 must be reached by saturating the tanh units.
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), normalize_output: bool = False,
                 min_std: float = 1e-6):
        super().__init__()
        self.obs_norm = Normalizer(obs_dim)
        self.net = mlp([obs_dim, *hidden, 1], nn.Tanh)
        self.normalize_output = normalize_output
        self.min_std = min_std
        if normalize_output:
            self.register_buffer("out_mean", torch.zeros(()))
            self.register_buffer("out_std", torch.ones(()))
            self.register_buffer("out_set", torch.zeros((), dtype=torch.bool))  # stats set from targets yet?

    def normalized(self, s: torch.Tensor) -> torch.Tensor:
        """The net's own output (B,): normalized returns with ``normalize_output``, else V itself."""
        return self.net(self.obs_norm(s)).squeeze(-1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        y = self.normalized(s)
        return y * self.out_std + self.out_mean if self.normalize_output else y

    @torch.no_grad()
    def set_output_stats(self, mean: torch.Tensor, std: torch.Tensor, preserve: bool = True) -> None:
        """Move ``mu, sigma`` to ``mean, std``; with ``preserve`` every output V(s) stays the same (PopArt).

        The first time (an untrained net) the statistics are simply set: preserving the initial outputs near
        0 would leave the net a bias of ``-mean / std`` (several units) to unlearn.
        """
        if not self.normalize_output:
            raise ValueError("set_output_stats needs a ValueNet built with normalize_output=True")
        std = std.clamp_min(self.min_std)
        if preserve:
            last = self.net[-1]
            last.weight.mul_(self.out_std / std)
            last.bias.copy_((self.out_std * last.bias + self.out_mean - mean) / std)
        self.out_mean.copy_(mean)
        self.out_std.copy_(std)
        self.out_set.fill_(True)


def gae(r_t: torch.Tensor, v_t: torch.Tensor, v_tp1: torch.Tensor, discount_t: torch.Tensor, lam: float,
        cut_t: torch.Tensor | None = None) -> torch.Tensor:
    """Generalized advantage estimates (Schulman et al., 2016), time-major (T, ...) tensors:

        delta_t = r_t + discount_t v_tp1 - v_t,    A_t = delta_t + discount_t * lam * (1 - cut_t) * A_{t+1},

    with ``A_T = 0``. ``discount_t = gamma`` or 0 at a termination; ``cut_t = 1`` where the episode is
    truncated after step t (the value of ``s_{t+1}`` still bootstraps, but the sum stops). With ``lam = 1``
    and no cuts, ``A_t + v_t`` is the discounted return bootstrapped at ``v_T``.
    """
    if not (r_t.shape == v_t.shape == v_tp1.shape == discount_t.shape):
        raise ValueError(f"shape mismatch: r {tuple(r_t.shape)}, v {tuple(v_t.shape)}, "
                         f"v_tp1 {tuple(v_tp1.shape)}, discount {tuple(discount_t.shape)}")
    cont = discount_t * lam if cut_t is None else discount_t * lam * (1 - cut_t.to(r_t.dtype))
    delta = r_t + discount_t * v_tp1 - v_t
    adv = torch.zeros_like(delta)
    acc = torch.zeros_like(delta[0])
    for t in range(delta.shape[0] - 1, -1, -1):
        acc = delta[t] + cont[t] * acc
        adv[t] = acc
    return adv


def conjugate_gradient(Avp, b: torch.Tensor, iters: int = 10, tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given ``Avp(v) = A v``."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


class TRPOInfo(NamedTuple):
    kl: float            # mean KL(pi_old || pi_new) after the step (0 if rejected)
    improvement: float   # surrogate improvement
    accepted: bool
    backtracks: int


def _flat_params(m: nn.Module) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in m.parameters()])


def _set_flat_params(m: nn.Module, flat: torch.Tensor) -> None:
    i = 0
    for p in m.parameters():
        n = p.numel()
        p.data.copy_(flat[i:i + n].view_as(p))
        i += n


def _kl(policy: GaussianPolicy, s, mu_old, log_std_old) -> torch.Tensor:
    """Mean KL(pi_old || pi) over the batch, summed over action dimensions."""
    mu, log_std = policy.dist(s)
    var_old, var = (2 * log_std_old).exp(), (2 * log_std).exp()
    return (log_std - log_std_old + (var_old + (mu_old - mu).pow(2)) / (2 * var) - 0.5).sum(-1).mean()


def trpo_step(policy: GaussianPolicy, s: torch.Tensor, a: torch.Tensor, adv: torch.Tensor,
              max_kl: float = 0.01, cg_iters: int = 10, damping: float = 0.1,
              backtrack_ratio: float = 0.8, max_backtracks: int = 15) -> TRPOInfo:
    """One TRPO update (Schulman et al., 2015): maximize ``mean(pi/pi_old * adv)`` s.t. ``KL <= max_kl``.

    Natural gradient by conjugate gradient on the Fisher (Hessian of the KL, plus ``damping * I``), scaled to
    the KL boundary, then backtracked until the surrogate improves and the measured KL is within ``max_kl``.

    Args:
        s: (B, S) states; a: (B, A) actions taken; adv: (B,) advantages (normalize beforehand).
    """
    if s.shape[0] != a.shape[0] or adv.shape != (s.shape[0],):
        raise ValueError(f"batch mismatch: s {tuple(s.shape)}, a {tuple(a.shape)}, adv {tuple(adv.shape)}")
    params = list(policy.parameters())
    with torch.no_grad():
        mu_old, log_std_old = (t.detach().clone() for t in policy.dist(s))  # log_std is a view
        logp_old = policy.log_prob(s, a)

    def surrogate() -> torch.Tensor:
        return ((policy.log_prob(s, a) - logp_old).exp() * adv).mean()

    loss = surrogate()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)])
    if not torch.isfinite(g).all() or g.abs().max() == 0:
        return TRPOInfo(0.0, 0.0, False, 0)
    grads_kl = torch.autograd.grad(_kl(policy, s, mu_old, log_std_old), params, create_graph=True)
    flat_kl_grad = torch.cat([x.reshape(-1) for x in grads_kl])

    def fvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(flat_kl_grad @ v, params, retain_graph=True)
        return torch.cat([x.reshape(-1) for x in hv]) + damping * v

    step_dir = conjugate_gradient(fvp, g, cg_iters)
    shs = 0.5 * (step_dir @ fvp(step_dir))
    if not torch.isfinite(shs) or shs <= 0:
        return TRPOInfo(0.0, 0.0, False, 0)
    full_step = step_dir * torch.sqrt(max_kl / shs)
    old = _flat_params(policy).detach().clone()
    base = float(loss.detach())
    with torch.no_grad():
        for k in range(max_backtracks):
            _set_flat_params(policy, old + (backtrack_ratio ** k) * full_step)
            improvement = float(surrogate()) - base
            kl = float(_kl(policy, s, mu_old, log_std_old))
            if math.isfinite(kl) and kl <= max_kl and improvement > 0:
                return TRPOInfo(kl, improvement, True, k)
        _set_flat_params(policy, old)
    return TRPOInfo(0.0, 0.0, False, max_backtracks)


def fit_value(value: ValueNet, opt: torch.optim.Optimizer, s: torch.Tensor, target: torch.Tensor,
              epochs: int = 2, batch_size: int = 256, g: torch.Generator | None = None) -> float:
    """Regress ``value(s)`` onto ``target`` (B,) by minibatch MSE; returns the last epoch's mean loss.

    With ``value.normalize_output`` the output statistics are first set to the targets' and the regression
    runs in normalized units (the returned loss is still in units of V squared).
    """
    n = s.shape[0]
    scale2 = 1.0
    if value.normalize_output:
        value.set_output_stats(target.mean(), target.std(unbiased=False), preserve=bool(value.out_set))
        target = (target - value.out_mean) / value.out_std
        scale2 = float(value.out_std) ** 2
    with torch.no_grad():
        x = value.obs_norm(s)  # the normalizer is fixed during the fit: apply it once, not per minibatch
    last = 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(s.device)
        xp, tp = x[perm], target[perm]  # one gather per epoch; minibatches are then views
        losses = []
        for i in range(0, n, batch_size):
            loss = (value.net(xp[i:i + batch_size]).squeeze(-1) - tp[i:i + batch_size]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
        tot = 0.0
        for l, b in zip(torch.stack(losses).tolist(), sizes):  # the same float64 sum as one float() per step
            tot += l * b
        last = tot / n * scale2
    return last
