"""Deterministic dynamics model predicting the normalized state delta, and the data normalizers.

``s_hat' = s + mu_d + sigma_d * f_phi((s - mu_s) / sigma_s, a)`` with ``f_phi`` an MLP (default two hidden
layers of 500, ReLU, as the SLBO code the authors built on). The normalizer statistics come from the real
data (``fit``), are stored as buffers (so they travel with ``state_dict``), and are not trained.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["Normalizer", "mlp", "mlp_layers", "mlp_forward", "fold_normalizers", "folded_forward", "DynamicsModel"]


class Normalizer(nn.Module):
    """Per-dimension mean/std normalizer with statistics set from data (not learned)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from data ``x`` of shape (B, dim)."""
        if x.ndim != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(f"expected (B, {self.mean.numel()}) data, got {tuple(x.shape)}")
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, unbiased=False).clamp_min(self.eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Fully connected net ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between layers (none at the end)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}
_IN_PLACE = {torch.relu: torch.relu_, torch.tanh: torch.tanh_}


def mlp_layers(net: nn.Sequential) -> list[tuple[nn.Linear, object]]:
    """The (linear layer, activation function or None) pairs of a net built by :func:`mlp`."""
    mods = list(net)
    out: list[tuple[nn.Linear, object]] = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            out.append((m, None))
        elif type(m) in _ACTIVATIONS and out and out[-1][1] is None and i > 0:
            out[-1] = (out[-1][0], _ACTIVATIONS[type(m)])
        else:
            raise ValueError(f"not an mlp() net: layer {i} is {type(m).__name__}")
    return out


def mlp_forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for a net built by :func:`mlp`, calling the same kernels without the per-module call cost
    (a rollout step runs a dozen layers on a few rows, where that cost exceeds the arithmetic)."""
    for lin, act in mlp_layers(net):
        x = torch.nn.functional.linear(x, lin.weight, lin.bias)
        if act is not None:
            x = act(x)
    return x


@torch.no_grad()
def fold_normalizers(net: nn.Sequential, in_mean: torch.Tensor, in_std: torch.Tensor,
                     out_mean: torch.Tensor | None = None, out_std: torch.Tensor | None = None,
                     columns: torch.Tensor | None = None, n_in: int | None = None) -> list[tuple]:
    """``x -> out_mean + out_std * net((x[columns] - in_mean) / in_std)`` as plain layers ``(W^T, b, act)``.

    The input normalization is folded into the first layer (``W' = W / in_std``, ``b' = b - W' in_mean``), the
    output's inverse into the last (``W' = out_std W``, ``b' = out_std b + out_mean``): a rollout step then
    runs the bare products. ``columns``: the input dimensions the net reads (the others get zero weights in an
    input of width ``n_in``); the inputs after the normalized ones (actions) are passed through unscaled.
    """
    layers = [[lin.weight.detach().clone(), lin.bias.detach().clone(), act] for lin, act in mlp_layers(net)]
    W, b, _ = layers[0]
    k = in_mean.numel() if columns is None else columns.numel()
    Wx = W[:, :k] / (in_std if columns is None else in_std[columns])
    b = b - Wx @ (in_mean if columns is None else in_mean[columns])
    if columns is not None:
        full = torch.zeros(W.shape[0], n_in, dtype=W.dtype, device=W.device)
        full[:, columns] = Wx
        Wx = full
    layers[0][:2] = torch.cat([Wx, W[:, k:]], 1), b
    if out_std is not None:
        W, b, _ = layers[-1]
        layers[-1][:2] = out_std[:, None] * W, out_std * b + out_mean
    return [(W.t().contiguous(), b, act) for W, b, act in layers]


def folded_forward(layers: list[tuple], x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The net of :func:`fold_normalizers` on ``x`` (B, in); the last layer written to ``out`` if given."""
    for i, (Wt, b, act) in enumerate(layers):
        x = torch.addmm(b, x, Wt, out=out if i == len(layers) - 1 else None)
        if act is not None:
            _IN_PLACE[act](x)
    return x


class DynamicsModel(nn.Module):
    """Deterministic ``s' = p_phi(s, a)``: an MLP on normalized ``(s, a)`` predicting the normalized delta.

    Args:
        obs_dim: S, the observation dimension.
        act_dim: A, the (normalized, in [-1, 1]) action dimension.
        hidden: hidden layer widths (default (500, 500), ReLU).
        ignore_dims: observation dimensions left out of the input (absolute positions the dynamics are invariant
            to, ``EnvSpec.position_dims``); their change is still predicted.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (500, 500),
                 ignore_dims: Sequence[int] = ()):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        if any(not 0 <= d < obs_dim for d in ignore_dims):
            raise ValueError(f"ignore_dims must lie in [0, {obs_dim}); got {tuple(ignore_dims)}")
        self.keep = [d for d in range(obs_dim) if d not in set(ignore_dims)]
        self._keep_index: dict[torch.device, torch.Tensor] = {}  # self.keep as an index tensor, per device
        self.net = mlp([len(self.keep) + act_dim, *hidden, obs_dim])
        self.obs_norm = Normalizer(obs_dim)
        self.delta_norm = Normalizer(obs_dim)

    def folded(self) -> list[tuple]:
        """Layers of ``(s, a) -> s_hat' - s`` with the normalizers folded in, for :func:`folded_forward` on
        ``cat([s, a])`` (actions already in [-1, 1])."""
        keep = torch.tensor(self.keep, device=self.obs_norm.mean.device)
        return fold_normalizers(self.net, self.obs_norm.mean, self.obs_norm.std, self.delta_norm.mean,
                                self.delta_norm.std, keep, self.obs_dim)

    def fit_normalizers(self, s: torch.Tensor, s2: torch.Tensor) -> None:
        """Set input and delta statistics from real transitions ``s, s2`` (B, S)."""
        self.obs_norm.fit(s)
        self.delta_norm.fit(s2 - s)

    def normalized_delta(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``f_phi``: predicted normalized delta, (B, S)."""
        x = self.obs_norm(s)
        if len(self.keep) < self.obs_dim:
            idx = self._keep_index.get(x.device)
            if idx is None:
                idx = self._keep_index[x.device] = torch.tensor(self.keep, device=x.device)
            x = x.index_select(-1, idx)
        return mlp_forward(self.net, torch.cat([x, a.clamp(-1.0, 1.0)], -1))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted next state (B, S) for states ``s`` (B, S) and actions ``a`` (B, A)."""
        return s + self.delta_norm.inverse(self.normalized_delta(s, a))

    def nll(self, s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood (B,) of ``s2`` under a unit-variance Gaussian in normalized-delta
        units, constants dropped: ``0.5 ||f_phi(s, a) - (s2 - s - mu_d) / sigma_d||^2``."""
        return 0.5 * (self.normalized_delta(s, a) - self.delta_norm(s2 - s)).pow(2).sum(-1)
