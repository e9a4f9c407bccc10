"""The authors' divergences as RunConfig fields, each checked where it acts in the loop (deep.protocol lists
them; tests/deep/test_protocol.py checks the values against the authors' files)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import Trainer, ou_step, train_run, truncated_normal_init  # noqa: E402
from deep.config import make_config  # noqa: E402
from deep.policy import GaussianPolicy, ValueNet, clip_grad_norm, fit_value, trpo_step  # noqa: E402
from lab.rundir import read_metrics  # noqa: E402
from tests.deep.resume import assert_resumes_exactly  # noqa: E402

TINY = dict(n_real=150, k_model=4, value_refresh_every=2, refresh_samples=40, k_policy=2, policy_samples=40,
            rollout_envs=4, model_hidden=(16, 16), policy_hidden=(8,), value_hidden=(8,), model_batch=16,
            checkpoint_every=1, device="cpu")
AUTHORS_LIKE = dict(ou_sigma=0.3, entropy_coef=0.005, rounds=2, refresh_after=True, model_init_std=1e-5,
                    value_max_grad_norm=2.0)


def test_ou_step_is_the_discretized_process():
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(ou_step(x, 0.15, 0.3, np.array([0.5, 0.0])), [1.0 - 0.15 + 0.15, -2.0 + 0.3])
    # stationary variance sigma^2 / (1 - (1 - theta)^2) of the AR(1) it is
    rng = np.random.default_rng(0)
    x, xs = np.zeros(1), []
    for _ in range(100_000):
        x = ou_step(x, 0.15, 0.3, rng.standard_normal(1))
        xs.append(x[0])
    assert np.var(xs[1000:]) == pytest.approx(0.09 / (1 - 0.85 ** 2), rel=0.05)


def test_truncated_normal_init_bounds_and_scale():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(50, 400), torch.nn.ReLU(), torch.nn.Linear(400, 30))
    truncated_normal_init(net, 1e-5)
    for m in (net[0], net[2]):
        m.requires_grad_(False)
        assert m.weight.abs().max() <= 2e-5 and float(m.bias.abs().max()) == 0.0
        # a normal truncated at 2 std has std 0.8796 of the untruncated one
        assert float(m.weight.std()) == pytest.approx(0.8796e-5, rel=0.05)


def test_entropy_bonus_moves_only_the_log_std():
    torch.manual_seed(0)
    pol = GaussianPolicy(3, 2, (8,))
    s, a = torch.randn(64, 3), torch.randn(64, 2)
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    info = trpo_step(pol, s, a, torch.zeros(64))  # no advantage: nothing to gain
    assert not info.accepted
    info = trpo_step(pol, s, a, torch.zeros(64), entropy_coef=0.01)
    after = pol.state_dict()
    assert info.accepted and info.kl <= 0.01
    assert torch.all(after["log_std"] > before["log_std"])  # entropy grows with each log-std ...
    assert torch.allclose(after["log_std"] - before["log_std"], (after["log_std"] - before["log_std"])[0])
    for k in before:  # ... and the mean does not move
        if k != "log_std":
            assert torch.equal(before[k], after[k]), k


@pytest.mark.parametrize("B", [64, 4000])
def test_the_line_search_counts_the_entropy_bonus_once_per_state(B):
    """Advantages that favour actions near the mean (1 - eps^2): the step narrows the policy even with the bonus,
    whatever the batch size, and the improvement it reports is the surrogate's plus entropy_coef times the change
    of sum(log_std) (the entropy of a diagonal Gaussian, the same in every state), recomputed here from the new
    policy's log-probabilities."""
    torch.manual_seed(0)
    pol = GaussianPolicy(3, 2, (8,))
    s = torch.randn(B, 3)
    with torch.no_grad():
        eps = torch.randn(B, 2)
        a = pol.dist(s)[0] + eps * pol.log_std.exp()
        logp_old = pol.log_prob(s, a)
    adv = (1 - eps.pow(2)).sum(-1)
    adv = (adv - adv.mean()) / adv.std()
    log_std_old = pol.log_std.detach().clone()
    info = trpo_step(pol, s, a, adv, entropy_coef=0.005)
    assert info.accepted and info.kl <= 0.01
    assert torch.all(pol.log_std < log_std_old)  # narrower: the advantages outweigh the bonus
    with torch.no_grad():
        surrogate = float(((pol.log_prob(s, a) - logp_old).exp() * adv).mean() - adv.mean())
        entropy = 0.005 * float((pol.log_std - log_std_old).sum())
    assert info.improvement == pytest.approx(surrogate + entropy, rel=1e-4, abs=1e-7)
    assert info.improvement > 0


def test_value_gradient_clip_matches_clip_grad_norm_with_adam():
    torch.manual_seed(0)
    s, target = torch.randn(32, 3), 100 * torch.randn(32)  # large targets: every gradient is clipped
    v1, v2 = ValueNet(3, (8,)), ValueNet(3, (8,))
    v2.load_state_dict(v1.state_dict())
    v1.obs_norm.fit(s), v2.obs_norm.fit(s)
    opt1, opt2 = torch.optim.Adam(v1.parameters(), lr=1e-3), torch.optim.Adam(v2.parameters(), lr=1e-3)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    fit_value(v1, opt1, s, target, epochs=2, batch_size=8, g=g1, max_grad_norm=0.5)
    perms = [torch.randperm(32, generator=g2) for _ in range(2)]
    for perm in perms:  # the reference: autograd, clip_grad_norm_, torch's Adam
        for i in range(0, 32, 8):
            idx = perm[i:i + 8]
            opt2.zero_grad()
            ((v2(s[idx]) - target[idx]) ** 2).mean().backward()
            torch.nn.utils.clip_grad_norm_(v2.parameters(), 0.5)
            opt2.step()
    for p1, p2 in zip(v1.parameters(), v2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    grads = [torch.full((3,), 4.0), torch.full((4,), 0.0)]
    clip_grad_norm(grads, 2.0)
    assert float(torch.linalg.vector_norm(torch.cat(grads))) == pytest.approx(2.0, rel=1e-5)


def test_rounds_and_refresh_timing_follow_the_schedule(monkeypatch):
    calls = []
    real_refresh, real_trpo = Trainer.refresh_value, Trainer.update_policy

    def refresh(self, n):
        calls.append(("refresh", int(self.model_opt.state[next(self.model.parameters())]["step"])
                      if self.model_opt.state else 0))
        return real_refresh(self, n)

    def policy(self, n=None):
        calls.append(("policy", n))
        return real_trpo(self, n)

    monkeypatch.setattr(Trainer, "refresh_value", refresh)
    monkeypatch.setattr(Trainer, "update_policy", policy)
    Trainer(make_config("pendulum", "ma_l1", steps=150, **TINY)).iterate()
    assert calls == [("refresh", 0), ("refresh", 2), ("policy", 2)]  # before model steps 0 and 2; both TRPO updates
    calls.clear()
    Trainer(make_config("pendulum", "ma_l1", steps=150, **{**TINY, "rounds": 2, "refresh_after": True})).iterate()
    # two rounds of (2 model steps, refresh after the second; 1 TRPO update)
    assert calls == [("refresh", 2), ("policy", 1), ("refresh", 4), ("policy", 1)]


def test_slbo_mean_over_h_divides_alpha_by_h(monkeypatch):
    import deep.algorithm as alg

    seen = []
    real = alg.model_loss
    monkeypatch.setattr(alg, "model_loss", lambda method, model, value, s, a, alpha, *rest:
                        (seen.append(alpha), real(method, model, value, s, a, alpha, *rest))[1])
    for mean in (False, True):
        t = Trainer(make_config("pendulum", "slbo", steps=150, **{**TINY, "slbo_mean_over_h": mean}))
        t.collect(150)
        t._fit_normalizers()
        t.update_model(1)
    assert seen == [1.0, 0.5]  # SLBO's alpha 1, h = 2


def test_a_run_with_every_divergence_on_resumes_exactly(tmp_path):
    cfg = make_config("cartpole", "ma_l1", steps=450, **{**TINY, **AUTHORS_LIKE})
    full, _ = assert_resumes_exactly(cfg, tmp_path, stop_after=1)
    ma = read_metrics(full)
    plain = read_metrics(train_run(make_config("cartpole", "ma_l1", steps=450, **TINY), root=tmp_path / "c",
                                   progress=False))
    assert not np.array_equal(plain["model_loss"], ma["model_loss"])  # the fields act
