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

from deep.models import Normalizer, mlp, mlp_forward, mlp_layers

__all__ = ["GaussianPolicy", "ValueNet", "gae", "conjugate_gradient", "TRPOInfo", "trpo_step", "fit_value",
           "adam_state", "adam_step", "clip_grad_norm", "tanh_mlp_vjp", "tanh_mlp_jvp", "fisher_vector_product"]


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
        mu = mlp_forward(self.mu, self.obs_norm(s))
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
        return mlp_forward(self.net, self.obs_norm(s)).squeeze(-1)

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
    acc = torch.zeros_like(delta[0])
    out = []
    for d, c in zip(delta.unbind(0)[::-1], cont.unbind(0)[::-1]):  # one kernel a step (T is up to 1000)
        acc = torch.addcmul(d, c, acc)
        out.append(acc)
    return torch.stack(out[::-1]) if out else torch.zeros_like(delta)


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


def _tanh_forward(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor):
    """Hidden activations ``[x, h_1, .., h_{L-1}]`` and output of a tanh MLP (linear last layer)."""
    hs = [x]
    for W, b in zip(weights[:-1], biases[:-1]):
        hs.append(torch.tanh(torch.addmm(b, hs[-1], W.t())))
    return hs, torch.addmm(biases[-1], hs[-1], weights[-1].t())


def tanh_mlp_vjp(weights: list[torch.Tensor], hs: list[torch.Tensor], dy: torch.Tensor) -> list[torch.Tensor]:
    """``J^T dy`` for a tanh MLP: the gradients ``[dW_1, db_1, .., dW_L, db_L]`` of ``sum(y * dy)``.

    ``hs``: the inputs of the L layers (``x, h_1, .., h_{L-1}``, from the forward pass); ``dy``: (B, out).
    Backpropagation written out (``dz_{k-1} = (dz_k W_k) * (1 - h_{k-1}^2)``, ``tanh_backward``'s one kernel),
    without building a graph.
    """
    grads: list[torch.Tensor] = []
    dz = dy
    for k in range(len(weights) - 1, -1, -1):
        grads.append(dz.sum(0))
        grads.append(dz.t() @ hs[k])
        if k:
            dz = torch.ops.aten.tanh_backward(dz @ weights[k], hs[k])
    return grads[::-1]


def tanh_mlp_jvp(weights: list[torch.Tensor], hs: list[torch.Tensor], v: list[torch.Tensor]) -> torch.Tensor:
    """``J v`` (B, out) for a tanh MLP at the activations ``hs``; ``v = [vW_1, vb_1, ..]`` a parameter direction
    (forward-mode: ``dz_k = h_{k-1} vW_k^T + vb_k + dh_{k-1} W_k^T``, ``dh_k = dz_k (1 - h_k^2)``)."""
    dh = None
    for k, W in enumerate(weights):
        dz = torch.addmm(v[2 * k + 1], hs[k], v[2 * k].t())
        if dh is not None:
            dz = dz.addmm_(dh, W.t())
        if k + 1 < len(weights):
            dh = torch.ops.aten.tanh_backward(dz, hs[k + 1])
    return dz


def fisher_vector_product(weights: list[torch.Tensor], hs: list[torch.Tensor], log_std: torch.Tensor,
                          v: torch.Tensor, damping: float) -> torch.Tensor:
    """``(F + damping I) v`` for the Gaussian policy at its current parameters, flat (P,) in the order of
    ``policy.parameters()`` (log-std first, then the mean's layers).

    ``F`` is the Hessian of ``mean_B KL(pi_old || pi)`` at ``pi = pi_old``: for a state-independent log-std it is
    ``J^T diag(exp(-2 log_std)) J / B`` on the mean's parameters (J: Jacobian of mu over the batch) and ``2 I``
    on the log-std, with no cross terms (they carry a factor ``mu - mu_old = 0``). One forward-mode and one
    reverse pass, instead of differentiating the KL's gradient again.
    """
    A = log_std.numel()
    shapes = [p.shape for W in weights for p in (W, W[:, 0])]
    parts = torch.split(v[A:], [math.prod(sh) for sh in shapes])
    jv = tanh_mlp_jvp(weights, hs, [x.view(sh) for x, sh in zip(parts, shapes)])
    u = jv * ((-2 * log_std).exp() / jv.shape[0])
    jtu = tanh_mlp_vjp(weights, hs, u)
    return torch.cat([2 * v[:A]] + [g.reshape(-1) for g in jtu]) + damping * v


def _mean_params(policy: GaussianPolicy) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    layers = mlp_layers(policy.mu)
    if next(policy.parameters()) is not policy.log_std:
        raise ValueError("the flat parameter vector must start with the log-std")
    if any(act not in (torch.tanh, None) for _, act in layers) or layers[-1][1] is not None:
        raise ValueError("trpo_step needs the policy mean to be a tanh MLP with a linear output layer")
    return [lin.weight for lin, _ in layers], [lin.bias for lin, _ in layers]


def trpo_step(policy: GaussianPolicy, s: torch.Tensor, a: torch.Tensor, adv: torch.Tensor,
              max_kl: float = 0.01, cg_iters: int = 10, damping: float = 0.1,
              backtrack_ratio: float = 0.8, max_backtracks: int = 15, entropy_coef: float = 0.0) -> TRPOInfo:
    """One TRPO update (Schulman et al., 2015): maximize ``mean(pi/pi_old * adv)`` s.t. ``KL <= max_kl``.

    Natural gradient by conjugate gradient on the Fisher (Hessian of the KL, plus ``damping * I``;
    :func:`fisher_vector_product`), scaled to the KL boundary, then backtracked until the surrogate improves
    and the measured KL is within ``max_kl``. The surrogate's gradient at ``pi_old``, where the ratio is 1, is
    ``mean_B adv * grad log pi(a|s)``: ``(a - mu) / sigma^2`` through the mean's Jacobian, and
    ``(a - mu)^2 / sigma^2 - 1`` for the log-std. ``entropy_coef`` adds ``entropy_coef * H(pi)`` to the
    surrogate; a diagonal Gaussian's entropy is ``sum(log_std) + A/2 log(2 pi e)`` whatever the state, so its
    gradient is ``entropy_coef`` on each log-std and nothing on the mean.

    Args:
        s: (B, S) states; a: (B, A) actions taken; adv: (B,) advantages (normalize beforehand).
    """
    if s.shape[0] != a.shape[0] or adv.shape != (s.shape[0],):
        raise ValueError(f"batch mismatch: s {tuple(s.shape)}, a {tuple(a.shape)}, adv {tuple(adv.shape)}")
    weights, biases = _mean_params(policy)
    with torch.no_grad():
        log_std_old = policy.log_std.detach().clone()
        hs, mu_old = _tanh_forward(weights, biases, policy.obs_norm(s))
        hs = [h.detach() for h in hs]
        mu_old = mu_old.detach()
        inv_var, var_old = (-2 * log_std_old).exp(), (2 * log_std_old).exp()
        z = (a - mu_old) * inv_var  # (a - mu) / sigma^2
        logp_old = (-0.5 * (a - mu_old).pow(2) * inv_var - log_std_old - 0.5 * math.log(2 * math.pi)).sum(-1)
        B = s.shape[0]
        g_mean = tanh_mlp_vjp(weights, hs, z * (adv[:, None] / B))
        g_std = (adv[:, None] * (z * (a - mu_old) - 1)).mean(0) + entropy_coef
        g = torch.cat([g_std] + [x.reshape(-1) for x in g_mean])  # policy.parameters() order
        if not torch.isfinite(g).all() or g.abs().max() == 0:
            return TRPOInfo(0.0, 0.0, False, 0)

        def fvp(v: torch.Tensor) -> torch.Tensor:
            return fisher_vector_product(weights, hs, log_std_old, v, damping)

        step_dir = conjugate_gradient(fvp, g, cg_iters)
        shs = 0.5 * (step_dir @ fvp(step_dir))
        if not torch.isfinite(shs) or shs <= 0:
            return TRPOInfo(0.0, 0.0, False, 0)
        full_step = step_dir * torch.sqrt(max_kl / shs)
        old = _flat_params(policy).detach().clone()
        base = float(adv.mean())  # the surrogate at pi_old (ratio 1)
        for k in range(max_backtracks):
            _set_flat_params(policy, old + (backtrack_ratio ** k) * full_step)
            mu, log_std = policy.dist(s)
            var = (2 * log_std).exp()
            logp = (-0.5 * (a - mu).pow(2) / var - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            # the entropy is the same in every state: its change is summed over the A log-stds, not the batch
            improvement = (float(((logp - logp_old).exp() * adv).mean()) - base
                           + entropy_coef * float((policy.log_std - log_std_old).sum()))
            kl = float((log_std - log_std_old + (var_old + (mu_old - mu).pow(2)) / (2 * var) - 0.5)
                       .sum(-1).mean())
            if math.isfinite(kl) and kl <= max_kl and improvement > 0:
                return TRPOInfo(kl, improvement, True, k)
        _set_flat_params(policy, old)
    return TRPOInfo(0.0, 0.0, False, max_backtracks)


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale ``grads`` in place to global norm at most ``max_norm`` (``torch.nn.utils.clip_grad_norm_``'s rule:
    factor ``min(1, max_norm / (norm + 1e-6))``)."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp(max=1.0))


def adam_state(opt: torch.optim.Adam, params: list[torch.Tensor]):
    """Step counters, first and second moments of ``params`` in ``opt.state``, created as ``torch.optim.Adam``
    creates them, so that checkpoints of ``opt`` load either way."""
    steps, m, v = [], [], []
    for p in params:
        st = opt.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if st["step"].device != p.device:  # the fused kernel keeps its counters beside the parameters
            st["step"] = st["step"].to(p.device)
        steps.append(st["step"])
        m.append(st["exp_avg"])
        v.append(st["exp_avg_sq"])
    return steps, m, v


def adam_step(opt: torch.optim.Adam, params: list[torch.Tensor], grads: list[torch.Tensor], state=None) -> None:
    """One Adam update (Kingma & Ba, 2015) of ``params`` with ``grads`` and ``opt``'s hyperparameters and state,
    in one fused kernel (``torch.optim.Adam(fused=True)``'s) without the optimizer's per-call bookkeeping.
    ``state``: ``adam_state(opt, params)``, to skip its look-up in a loop."""
    group = opt.param_groups[0]
    if group["amsgrad"] or group["maximize"] or len(opt.param_groups) != 1:
        raise ValueError("adam_step supports one parameter group without amsgrad or maximize")
    steps, m, v = state if state is not None else adam_state(opt, params)
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, grads, m, v, [], steps, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                           weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False, maximize=False)


def fit_value(value: ValueNet, opt: torch.optim.Adam, s: torch.Tensor, target: torch.Tensor,
              epochs: int = 2, batch_size: int = 256, g: torch.Generator | None = None,
              max_grad_norm: float = 0.0) -> float:
    """Regress ``value(s)`` onto ``target`` (B,) by minibatch MSE with Adam; returns the last epoch's mean loss.

    With ``value.normalize_output`` the output statistics are first set to the targets' and the regression
    runs in normalized units (the returned loss is still in units of V squared). The minibatch steps are
    written out (forward, backpropagation, Adam): at batch 64 their arithmetic takes tens of microseconds, less
    than autograd's and the optimizer's per-call costs. ``opt`` holds the Adam state (:func:`adam_step`).
    ``max_grad_norm`` > 0 clips each minibatch gradient to that global norm (``clip_grad_norm_``'s rule).
    """
    n = s.shape[0]
    scale2 = 1.0
    if value.normalize_output:
        value.set_output_stats(target.mean(), target.std(unbiased=False), preserve=bool(value.out_set))
        target = (target - value.out_mean) / value.out_std
        scale2 = float(value.out_std) ** 2
    layers = mlp_layers(value.net)
    if any(act not in (torch.tanh, None) for _, act in layers) or layers[-1][1] is not None:
        raise ValueError("fit_value needs a tanh MLP value net with a linear output layer")
    weights = [lin.weight for lin, _ in layers]
    biases = [lin.bias for lin, _ in layers]
    params = [p for W, b in zip(weights, biases) for p in (W, b)]
    with torch.no_grad():
        x = value.obs_norm(s)  # the normalizer is fixed during the fit: apply it once, not per minibatch
    perms = [torch.randperm(n, generator=g) for _ in range(epochs)]
    return _fit_steps(weights, biases, params, opt, x, target, perms, batch_size, max_grad_norm) / n * scale2


def _fit_steps(weights, biases, params, opt, x, target, perms, batch_size, max_grad_norm=0.0) -> float:
    """The minibatch steps of :func:`fit_value` (one epoch per permutation in ``perms``) as torch kernels on
    buffers allocated once; returns the last epoch's sum of squared errors."""
    n = x.shape[0]
    state = adam_state(opt, params)
    epochs = len(perms)
    b = min(batch_size, n)
    L = len(weights)
    tanh_backward = torch.ops.aten.tanh_backward.grad_input  # dz = dh * (1 - h^2), one kernel
    with torch.no_grad():
        new = lambda *shape: torch.empty(*shape, dtype=x.dtype, device=x.device)  # noqa: E731
        hs = [new(b, W.shape[0]) for W in weights]  # layer outputs (after tanh on hidden layers)
        dz = [new(b, W.shape[0]) for W in weights]  # gradients at the outputs, then at the pre-activations
        views = {m: ([t[:m] for t in hs], [t[:m] for t in dz]) for m in {b, n % b or b}}
        grads = [torch.empty_like(p) for p in params]
        sse = new(-(-n // b))
        for epoch in range(epochs):
            perm = perms[epoch].to(x.device)
            xp, tp = x[perm], target[perm, None]  # one gather per epoch; minibatches are then views
            for j, i in enumerate(range(0, n, b)):
                m = min(b, n - i)
                xi = xp[i:i + m]
                h, d = views[m]
                inp = xi
                for k in range(L):
                    torch.addmm(biases[k], inp, weights[k].t(), out=h[k])
                    if k + 1 < L:
                        torch.tanh(h[k], out=h[k])
                    inp = h[k]
                torch.sub(h[-1], tp[i:i + m], out=d[-1])
                if epoch == epochs - 1:
                    torch.sum(d[-1].square(), dim=(0, 1), out=sse[j])
                d[-1].mul_(2.0 / m)  # d mean((y - t)^2) / dy
                for k in range(L - 1, -1, -1):
                    prev = h[k - 1] if k else xi
                    torch.mm(d[k].t(), prev, out=grads[2 * k])
                    torch.sum(d[k], 0, out=grads[2 * k + 1])
                    if k:
                        torch.mm(d[k], weights[k], out=d[k - 1])
                        tanh_backward(d[k - 1], prev, grad_input=d[k - 1])
                if max_grad_norm:
                    clip_grad_norm(grads, max_grad_norm)
                adam_step(opt, params, grads, state)
    return float(sse.double().sum())
