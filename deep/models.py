"""Deterministic dynamics model predicting the normalized state delta, and the data normalizers.

``s_hat' = s + mu_d + sigma_d * f_phi((s - mu_s) / sigma_s, a)`` with ``f_phi`` an MLP (default two hidden
layers of 500, ReLU, as the SLBO code the authors built on). The normalizer statistics come from the real
data (``fit``), are stored as buffers (so they travel with ``state_dict``), and are not trained.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["Normalizer", "mlp", "DynamicsModel"]


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
        self.net = mlp([len(self.keep) + act_dim, *hidden, obs_dim])
        self.obs_norm = Normalizer(obs_dim)
        self.delta_norm = Normalizer(obs_dim)

    def fit_normalizers(self, s: torch.Tensor, s2: torch.Tensor) -> None:
        """Set input and delta statistics from real transitions ``s, s2`` (B, S)."""
        self.obs_norm.fit(s)
        self.delta_norm.fit(s2 - s)

    def normalized_delta(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``f_phi``: predicted normalized delta, (B, S)."""
        x = self.obs_norm(s)
        if len(self.keep) < self.obs_dim:
            x = x[..., self.keep]
        return self.net(torch.cat([x, a.clamp(-1.0, 1.0)], -1))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted next state (B, S) for states ``s`` (B, S) and actions ``a`` (B, A)."""
        return s + self.delta_norm.inverse(self.normalized_delta(s, a))

    def nll(self, s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood (B,) of ``s2`` under a unit-variance Gaussian in normalized-delta
        units, constants dropped: ``0.5 ||f_phi(s, a) - (s2 - s - mu_d) / sigma_d||^2``."""
        return 0.5 * (self.normalized_delta(s, a) - self.delta_norm(s2 - s)).pow(2).sum(-1)
