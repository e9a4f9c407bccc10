"""deep.objectives: hand-computed small cases, frozen value, and the cross-check against tabular.objectives."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.models import DynamicsModel, Normalizer  # noqa: E402
from deep.objectives import METHOD_PARTS, frozen, ma_l1, ma_vaml, mle, model_loss, slbo, vps  # noqa: E402
from tabular.objectives import TransitionBatch, ma_upper_l1_loss, ma_vaml_l2_loss, mle_loss  # noqa: E402

torch.set_num_threads(1)


class ShiftModel(torch.nn.Module):
    """1-D toy model s' = s + theta (actions ignored), delta std 1, unit-variance Gaussian likelihood."""

    def __init__(self, theta):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor([float(theta)], dtype=torch.float64))
        self.delta_norm = Normalizer(1).double()

    def forward(self, s, a):
        return s + self.theta

    def nll(self, s, a, s2):
        return 0.5 * (s + self.theta - s2).pow(2).sum(-1)


def _seq(states):
    """One segment of 1-D states -> s (1, h+1, 1), a (1, h, 1)."""
    s = torch.tensor(states, dtype=torch.float64).reshape(1, -1, 1)
    return s, torch.zeros(1, s.shape[1] - 1, 1, dtype=torch.float64)


def _grad(loss, model):
    model.zero_grad()
    loss.backward()
    return float(model.theta.grad)


# Hand case: states 0 -> 1 -> 3, model shift theta = 0.5, so s_hat_1 = 0.5, s_hat_2 = 1.0.
def test_slbo_hand_case():
    m = ShiftModel(0.5)
    s, a = _seq([0.0, 1.0, 3.0])
    loss = slbo(m, None, s, a)
    # |0.5 - 1| + |0.5 - 2| = 2;  d/dtheta = sign(-0.5) + sign(-1.5) = -2
    assert float(loss.detach()) == pytest.approx(2.0)
    assert _grad(loss, m) == pytest.approx(-2.0)


def test_vps_hand_case():
    m = ShiftModel(0.5)
    s, a = _seq([0.0, 1.0, 3.0])
    V = lambda x: x.pow(2).sum(-1)  # noqa: E731
    loss = vps(m, V, s, a)
    # (V(1.0) - V(0.5)) - (V(3) - V(1)) = 0.75 - 8 = -7.25; d/dtheta (s2h^2 - s1h^2) = 2*1*2 - 2*0.5 = 3
    assert float(loss.detach()) == pytest.approx(7.25)
    assert _grad(loss, m) == pytest.approx(-3.0)


def test_ma_l1_and_vaml_hand_case():
    m = ShiftModel(0.5)
    s, a = _seq([0.0, 1.0])
    V = lambda x: 3.0 * x.sum(-1)  # noqa: E731  linear value, w = 3
    # delta = V(1) - V(0.5) = 1.5
    l1 = ma_l1(m, V, s, a)
    assert float(l1.detach()) == pytest.approx(1.5)
    assert _grad(l1, m) == pytest.approx(-3.0)       # -sign(delta) * w
    l2 = ma_vaml(m, V, s, a)
    assert float(l2.detach()) == pytest.approx(2.25)
    assert _grad(l2, m) == pytest.approx(-9.0)       # -2 delta w
    nll = mle(m, None, s, a)
    assert float(nll.detach()) == pytest.approx(0.125)        # 0.5 (0.5 - 1)^2
    assert _grad(nll, m) == pytest.approx(-0.5)


def test_model_loss_combination_and_gradient_vs_finite_difference():
    m = ShiftModel(0.3)
    s, a = _seq([0.0, 1.0, 3.0])
    V = lambda x: x.pow(2).sum(-1)  # noqa: E731
    loss, parts = model_loss("ma_l1_vps", m, V, s, a, alpha=0.5, lam=2.0)
    assert float(loss.detach()) == pytest.approx(0.5 * parts["main"] + 2.0 * parts["vps"])
    g = _grad(loss, m)
    eps = 1e-6
    with torch.no_grad():
        m.theta += eps
        up = model_loss("ma_l1_vps", m, V, s, a, 0.5, 2.0)[0]
        m.theta -= 2 * eps
        down = model_loss("ma_l1_vps", m, V, s, a, 0.5, 2.0)[0]
    assert g == pytest.approx(float(up - down) / (2 * eps), rel=1e-5)
    with pytest.raises(ValueError, match="valid"):
        model_loss("nope", m, V, s, a)


def test_frozen_value_gets_no_gradient_but_input_does():
    torch.manual_seed(0)
    model = DynamicsModel(3, 1, hidden=(8,))
    vnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    value = lambda x: frozen(vnet)(x).squeeze(-1)  # noqa: E731
    s = torch.randn(5, 3, 3)
    a = torch.randn(5, 2, 1)
    for name in ("ma_l1", "ma_vaml", "ma_l1_vps", "ma_vaml_vps"):
        model.zero_grad()
        vnet.zero_grad()
        model_loss(name, model, value, s, a, 1.0, 1.0)[0].backward()
        assert all(p.grad is None for p in vnet.parameters()), name
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), name


def test_objectives_reject_bad_shapes():
    m = ShiftModel(0.0)
    with pytest.raises(ValueError, match=r"\(B, h\+1, S\)"):
        ma_l1(m, lambda x: x.sum(-1), torch.zeros(2, 3, 1), torch.zeros(2, 1, 1))
    with pytest.raises(ValueError, match="h >= 2"):
        vps(m, lambda x: x.sum(-1), torch.zeros(2, 2, 1), torch.zeros(2, 1, 1))
    assert set(METHOD_PARTS) == {"mle", "slbo", "ma_l1", "ma_l1_vps", "ma_vaml", "ma_vaml_vps"}


# ---------------------------------------------------------------- cross-check with the tabular core
class SoftmaxModel(torch.nn.Module):
    """Tabular model in the deep interface: one-hot states/actions -> expected next one-hot = P_phi(s, a)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, s, a):
        return torch.einsum("bs,ba,sax->bx", s, a, self.logits.softmax(-1))

    def nll(self, s, a, s2):
        logp = torch.einsum("bs,ba,sax->bx", s, a, self.logits.log_softmax(-1))
        return -(logp * s2).sum(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_objectives_equal_tabular_sampled_ones(seed):
    rng = np.random.default_rng(seed)
    S, A, N = 5, 3, 40
    logits = rng.normal(size=(S, A, S))
    Vtab = rng.normal(size=S) * 3
    s, a, s2 = rng.integers(S, size=N), rng.integers(A, size=N), rng.integers(S, size=N)
    batch = TransitionBatch(s, a, s2)
    eyeS, eyeA = np.eye(S), np.eye(A)
    s_seq = torch.tensor(np.stack([eyeS[s], eyeS[s2]], 1))
    a_seq = torch.tensor(eyeA[a][:, None])
    Vt = torch.tensor(Vtab)
    value = lambda x: x @ Vt  # noqa: E731  V of the expected one-hot = E_{s'~P_phi} V[s']
    for torch_fn, tab in ((ma_l1, lambda: ma_upper_l1_loss(logits, Vtab, batch)),
                          (ma_vaml, lambda: ma_vaml_l2_loss(logits, Vtab, batch)),
                          (mle, lambda: mle_loss(logits, batch))):
        model = SoftmaxModel(logits)
        loss = torch_fn(model, value, s_seq, a_seq)
        loss.backward()
        val, grad = tab()
        assert float(loss.detach()) == pytest.approx(val, rel=1e-10, abs=1e-12), torch_fn.__name__
        np.testing.assert_allclose(model.logits.grad.numpy(), grad, rtol=1e-8, atol=1e-12,
                                   err_msg=torch_fn.__name__)


def test_mle_weight_adds_an_mle_anchor_to_value_aware_losses_only():
    # hand case: states 0 -> 1, theta = 0.3, V(x) = x^2: MA-L1 = |1 - 0.09| = 0.91, MLE = 0.5 * 0.7^2 = 0.245
    m = ShiftModel(0.3)
    s, a = _seq([0.0, 1.0])
    V = lambda x: x.pow(2).sum(-1)  # noqa: E731
    loss, parts = model_loss("ma_l1", m, V, s, a, alpha=0.5, mle_weight=2.0)
    assert parts["main"] == pytest.approx(0.91) and parts["mle"] == pytest.approx(0.245)
    assert float(loss.detach()) == pytest.approx(0.5 * 0.91 + 2.0 * 0.245)
    # d/dtheta: 0.5 * d|1 - theta^2| + 2 * (theta - 1) = 0.5 * (-0.6) + 2 * (-0.7) = -1.7
    assert _grad(loss, m) == pytest.approx(-1.7)
    plain, parts = model_loss("mle", m, None, s, a, mle_weight=2.0)
    assert float(plain.detach()) == pytest.approx(0.245) and "mle" not in parts


def test_model_ignores_position_dims_but_predicts_their_change():
    model = DynamicsModel(4, 1, (16,), ignore_dims=(0,))
    s, a = torch.randn(5, 4), torch.randn(5, 1)
    shifted = s.clone()
    shifted[:, 0] += 7.0
    out, out_shifted = model(s, a), model(shifted, a)
    torch.testing.assert_close(out_shifted - shifted, out - s)  # the same predicted delta, x included
    assert model.net[0].in_features == 3 + 1
    with pytest.raises(ValueError, match="ignore_dims"):
        DynamicsModel(4, 1, (16,), ignore_dims=(4,))


def test_reward_of_the_transition_enters_the_value_gap_divided_by_gamma():
    # hand case: states 0 -> 1, theta = 0.3, V(x) = x^2, r(s, a, s') = 4 (s' - s), gamma = 0.5:
    # gap = (1 - 0.09) + (4 - 1.2) / 0.5 = 6.51; d gap / d theta = -0.6 - 4 / 0.5 = -8.6
    m = ShiftModel(0.3)
    s, a = _seq([0.0, 1.0])
    V = lambda x: x.pow(2).sum(-1)  # noqa: E731
    r = lambda s0, a0, s1: 4.0 * (s1 - s0).sum(-1)  # noqa: E731
    loss = ma_l1(m, V, s, a, reward=r, gamma=0.5)
    assert float(loss.detach()) == pytest.approx(6.51)
    assert _grad(loss, m) == pytest.approx(-8.6)
    loss = ma_vaml(m, V, s, a, reward=r, gamma=0.5)
    assert float(loss.detach()) == pytest.approx(6.51 ** 2)
    assert _grad(loss, m) == pytest.approx(2 * 6.51 * -8.6)
    # through model_loss: alpha scales it, and MLE/SLBO ignore the reward
    full, parts = model_loss("ma_l1_vps", m, V, *_seq([0.0, 1.0, 3.0]), alpha=2.0, lam=0.0, reward=r, gamma=0.5)
    assert parts["main"] == pytest.approx(6.51) and float(full.detach()) == pytest.approx(13.02)
    assert float(model_loss("mle", m, None, s, a, reward=r, gamma=0.5)[0].detach()) == pytest.approx(0.245)


def test_a_reward_of_state_and_action_leaves_eq10_unchanged():
    g = torch.Generator().manual_seed(3)
    model = DynamicsModel(3, 1, (8,))
    s, a = torch.randn(16, 2, 3, generator=g), torch.randn(16, 1, 1, generator=g)
    V = frozen(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1), torch.nn.Flatten(0)))
    r = lambda s0, a0, s1: -(s0 ** 2).sum(-1) - a0[:, 0] ** 2  # noqa: E731
    for f in (ma_l1, ma_vaml):
        assert torch.equal(f(model, V, s, a), f(model, V, s, a, reward=r, gamma=0.9))
