"""Model-learning objectives for deterministic dynamics (torch): MLE, SLBO (Eq. 11), MA-L1 (Eq. 10),
MA-VAML, VPS (Eq. 12) and the Appendix-C combination ``alpha * L_main + lambda * L_VPS``.

Every objective has the uniform signature ``f(model, value, s, a) -> scalar tensor`` with

* ``model(s, a) -> s_hat'`` (B, S): a deterministic dynamics model (``deep.models.DynamicsModel``); MLE
  also calls ``model.nll(s, a, s2)``, the per-sample negative log-likelihood;
* ``value(x) -> (B,)``: the value function *held fixed* (wrap a network with :func:`frozen`): no gradient
  reaches its parameters, but the gradient flows through its input, the predicted state (Sec. 3.1, the
  footnote to Eq. 8);
* ``reward(s, a, s') -> (B,)`` (optional, MA-L1 and MA-VAML): the known reward of a transition, for tasks whose
  reward depends on the next state (MuJoCo's forward progress ``(x' - x) / dt``). The paper's objectives assume a
  reward of ``(s, a)``; with ``r(s, a, s')`` Lemma 1 puts the reward inside the expectation over ``s'``, and the
  model-advantage of the one-step target ``u = r(s, a, s') + gamma V(s')`` replaces the value gap (below);
* ``s`` (B, h+1, S): ``h+1`` consecutive real states ``s_t .. s_{t+h}`` of one episode; ``a`` (B, h, A)
  the actions ``a_t .. a_{t+h-1}``. One-step objectives use only ``s[:, 0], a[:, 0], s[:, 1]``.

Multi-step predictions follow Sec. 3.4: ``s_hat_t = s_t``, ``s_hat_{t+k+1} = p_phi(s_hat_{t+k}, a_{t+k})``.
All objectives average over the batch (the empirical expectation over ``D``). Values are unnormalized
discounted returns, as the value network estimates them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["frozen", "rollout_predictions", "value_gap", "mle", "slbo", "ma_l1", "ma_vaml", "vps", "OBJECTIVES",
           "VALUE_AWARE_OBJECTIVES", "METHOD_PARTS", "model_loss"]

Value = Callable[[torch.Tensor], torch.Tensor]
Reward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def frozen(net: nn.Module) -> Value:
    """``x -> net(x)`` with every parameter and buffer detached: gradients flow to ``x`` only."""
    def value(x: torch.Tensor) -> torch.Tensor:
        params = {k: v.detach() for k, v in net.named_parameters()}
        params.update({k: v.detach() for k, v in net.named_buffers()})
        return functional_call(net, params, (x,))
    return value


def _check(s: torch.Tensor, a: torch.Tensor, min_h: int = 1) -> int:
    if s.ndim != 3 or a.ndim != 3 or s.shape[0] != a.shape[0] or s.shape[1] != a.shape[1] + 1:
        raise ValueError(f"expected s (B, h+1, S) and a (B, h, A); got {tuple(s.shape)} and {tuple(a.shape)}")
    if a.shape[1] < min_h:
        raise ValueError(f"this objective needs h >= {min_h} steps; got h = {a.shape[1]}")
    return a.shape[1]


def rollout_predictions(model, s: torch.Tensor, a: torch.Tensor, h: int) -> torch.Tensor:
    """Open-loop model predictions ``s_hat_{t..t+h}`` (B, h+1, S) from ``s_hat_t = s_t`` and ``a_{t..t+h-1}``."""
    preds = [s[:, 0]]
    for k in range(h):
        preds.append(model(preds[-1], a[:, k]))
    return torch.stack(preds, 1)


def mle(model, value: Value | None, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Maximum likelihood: ``mean_B -log p_phi(s_{t+1} | s_t, a_t)``.

    For ``DynamicsModel`` (a unit-variance Gaussian in normalized-delta units) this is
    ``0.5 ||f_phi(s_t, a_t) - (s_{t+1} - s_t - mu_d) / sigma_d||_2^2``: the L2 loss on the next state.
    ``value`` is ignored.
    """
    _check(s, a)
    return model.nll(s[:, 0], a[:, 0], s[:, 1]).mean()


def slbo(model, value: Value | None, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """SLBO's multi-step loss (Eq. 11; Luo et al., 2018), generalized to ``h`` steps:

        L = mean_B sum_{k=1..h} || ((s_hat_{t+k} - s_hat_{t+k-1}) - (s_{t+k} - s_{t+k-1})) / sigma_d ||_2

    With ``s_hat_t = s_t`` the ``k = 1`` term is the (unsquared) L2 "MLE term" and, for ``h = 2``, the
    ``k = 2`` term is Eq. 11's smoothness term. Differences are divided by the model's delta standard
    deviation ``sigma_d`` per dimension (SLBO's normalized L2). ``value`` is ignored.
    """
    h = _check(s, a)
    pred = rollout_predictions(model, s, a, h)
    err = (pred.diff(dim=1) - s.diff(dim=1)) / model.delta_norm.std
    return err.norm(dim=-1).sum(1).mean()


def value_gap(model, value: Value, s: torch.Tensor, a: torch.Tensor, reward: Reward | None = None,
              gamma: float = 1.0) -> torch.Tensor:
    """The per-sample gap (B,) that Eq. 10 and MA-VAML penalize: ``V(s_{t+1}) - V(p_phi(s_t, a_t))``.

    With a known ``reward`` of the transition it is the gap of the one-step target divided by ``gamma``,
    ``(u(s, a, s') - u(s, a, s_hat')) / gamma`` with ``u = r + gamma V``, i.e. the value gap plus
    ``(r(s, a, s') - r(s, a, s_hat')) / gamma``: where the reward is a function of ``(s, a)`` only the reward
    term vanishes and this is Eq. 10's gap exactly.
    """
    s0, a0, s1 = s[:, 0], a[:, 0], s[:, 1]
    pred = model(s0, a0)
    gap = value(s1) - value(pred)
    if reward is not None:
        gap = gap + (reward(s0, a0, s1) - reward(s0, a0, pred)) / gamma
    return gap


def ma_l1(model, value: Value, s: torch.Tensor, a: torch.Tensor, reward: Reward | None = None,
          gamma: float = 1.0) -> torch.Tensor:
    """Model-advantage upper bound (Eq. 10) for a deterministic model:

        L_1^U = mean_B | V(s_{t+1}) - V(p_phi(s_t, a_t)) |

    (the expectation over ``s' ~ P_phi`` is the value at the single predicted state; Sec. 5). With ``reward``,
    the gap of :func:`value_gap` (the known reward of the transition included).
    """
    _check(s, a)
    return value_gap(model, value, s, a, reward, gamma).abs().mean()


def ma_vaml(model, value: Value, s: torch.Tensor, a: torch.Tensor, reward: Reward | None = None,
            gamma: float = 1.0) -> torch.Tensor:
    """MA-VAML (IterVAML; Sec. 3.2): ``mean_B (V(s_{t+1}) - V(p_phi(s_t, a_t)))^2``; with ``reward``, the
    squared gap of :func:`value_gap`."""
    _check(s, a)
    return value_gap(model, value, s, a, reward, gamma).pow(2).mean()


def vps(model, value: Value, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Value predictive smoothness (Eq. 12), over ``h >= 2`` step predictions:

        L_VPS = mean_B sum_{k=2..h} | (V(s_hat_{t+k}) - V(s_hat_{t+k-1})) - (V(s_{t+k}) - V(s_{t+k-1})) |

    For ``h = 2`` this is Eq. 12 exactly (the L2 norm of a scalar is its absolute value).
    """
    h = _check(s, a, min_h=2)
    pred = rollout_predictions(model, s, a, h)
    B, H1, S = pred.shape
    v_hat = value(pred[:, 1:].reshape(-1, S)).reshape(B, H1 - 1)
    v = value(s[:, 1:].reshape(-1, S)).reshape(B, H1 - 1)
    return (v_hat.diff(dim=1) - v.diff(dim=1)).abs().sum(1).mean()


#: objective name -> function(model, value, s, a)
OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {
    "mle": mle, "slbo": slbo, "ma_l1": ma_l1, "ma_vaml": ma_vaml, "vps": vps,
}

#: main objectives that learn the model through the value function (Algorithm 2 refreshes V for these)
VALUE_AWARE_OBJECTIVES = ("ma_l1", "ma_vaml")

#: method (the same name in tabular and on the command line) -> (main objective, uses VPS)
METHOD_PARTS: dict[str, tuple[str, bool]] = {
    "mle": ("mle", False),
    "slbo": ("slbo", False),
    "ma_l1": ("ma_l1", False),
    "ma_l1_vps": ("ma_l1", True),
    "ma_vaml": ("ma_vaml", False),
    "ma_vaml_vps": ("ma_vaml", True),
}


def model_loss(method: str, model, value: Value | None, s: torch.Tensor, a: torch.Tensor,
               alpha: float = 1.0, lam: float = 0.0, mle_weight: float = 0.0, reward: Reward | None = None,
               gamma: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Appendix C's combination ``alpha * L_main + lambda * L_VPS`` for ``method`` (a key of ``METHOD_PARTS``).

    Returns the loss and its parts (floats) for logging. VPS is added only for the ``*_vps`` methods.
    ``mle_weight`` (beta, an ablation outside the paper) adds ``beta * L_MLE`` to the value-aware methods,
    anchoring predictions to the real next states where the value function alone is flat. ``reward`` and
    ``gamma`` reach the value-aware main objectives only (:func:`value_gap`).
    """
    if method not in METHOD_PARTS:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(METHOD_PARTS)}")
    main_name, use_vps = METHOD_PARTS[method]
    if main_name in VALUE_AWARE_OBJECTIVES:
        main = OBJECTIVES[main_name](model, value, s, a, reward, gamma)
    else:
        main = OBJECTIVES[main_name](model, value, s, a)
    parts = {"main": float(main.detach())}
    loss = alpha * main
    if use_vps:
        reg = vps(model, value, s, a)
        parts["vps"] = float(reg.detach())
        loss = loss + lam * reg
    if mle_weight and main_name in VALUE_AWARE_OBJECTIVES:
        anchor = mle(model, None, s, a)
        parts["mle"] = float(anchor.detach())
        loss = loss + mle_weight * anchor
    return loss, parts
