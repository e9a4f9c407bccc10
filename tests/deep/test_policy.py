"""deep.policy: GAE against a direct O(T^2) sum, lambda = 1 identity, TRPO respects the KL limit."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.policy import GaussianPolicy, ValueNet, conjugate_gradient, fit_value, gae, trpo_step  # noqa: E402

torch.set_num_threads(1)


def _direct_gae(r, v, v_tp1, disc, lam, cut):
    """A_t = sum_{l>=0} prod_{j<l} (disc_{t+j} lam (1 - cut_{t+j})) delta_{t+l}, summed term by term."""
    T = len(r)
    delta = r + disc * v_tp1 - v
    out = np.zeros(T)
    for t in range(T):
        w = 1.0
        for l in range(t, T):
            out[t] += w * delta[l]
            w *= disc[l] * lam * (1 - cut[l])
    return out


def test_gae_matches_direct_sum_with_terminations_and_cuts():
    rng = np.random.default_rng(0)
    T = 12
    r, v, v_tp1 = rng.normal(size=T), rng.normal(size=T), rng.normal(size=T)
    disc = np.full(T, 0.9)
    disc[4] = 0.0          # termination after step 4
    cut = np.zeros(T)
    cut[8] = 1.0           # truncation after step 8
    got = gae(*(torch.tensor(x)[:, None] for x in (r, v, v_tp1, disc)), 0.7, torch.tensor(cut)[:, None])
    np.testing.assert_allclose(got[:, 0].numpy(), _direct_gae(r, v, v_tp1, disc, 0.7, cut), rtol=1e-12)


def test_gae_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(1)
    T, gamma = 10, 0.95
    r, v = rng.normal(size=T), rng.normal(size=T + 1)  # v[T] bootstraps
    adv = gae(torch.tensor(r), torch.tensor(v[:-1]), torch.tensor(v[1:]), torch.full((T,), gamma, dtype=torch.float64), 1.0)
    ret = np.array([sum(gamma ** (l - t) * r[l] for l in range(t, T)) + gamma ** (T - t) * v[T] for t in range(T)])
    np.testing.assert_allclose(adv.numpy(), ret - v[:-1], rtol=1e-12)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        gae(torch.zeros(3), torch.zeros(4), torch.zeros(3), torch.zeros(3), 0.9)


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(2)
    M = rng.normal(size=(6, 6))
    A = torch.tensor(M @ M.T + 6 * np.eye(6))
    b = torch.tensor(rng.normal(size=6))
    x = conjugate_gradient(lambda p: A @ p, b, iters=20)
    np.testing.assert_allclose((A @ x).numpy(), b.numpy(), atol=1e-8)


@pytest.mark.parametrize("max_kl", [0.01, 0.05])
def test_trpo_step_respects_kl_limit_and_improves_surrogate(max_kl):
    torch.manual_seed(0)
    pol = GaussianPolicy(3, 2)
    s = torch.randn(512, 3)
    a = pol.sample(s) + 0.3
    adv = torch.randn(512)
    adv = adv + 2.0 * a[:, 0]  # advantage correlated with the action: a real ascent direction
    adv = (adv - adv.mean()) / adv.std()
    with torch.no_grad():
        mu0, ls0 = (x.clone() for x in pol.dist(s))
    info = trpo_step(pol, s, a, adv, max_kl=max_kl)
    assert info.accepted and info.improvement > 0
    with torch.no_grad():
        mu1, ls1 = pol.dist(s)
    old = torch.distributions.Normal(mu0, ls0.exp())
    new = torch.distributions.Normal(mu1, ls1.exp())
    kl = torch.distributions.kl_divergence(old, new).sum(-1).mean().item()
    assert 0 < kl <= 1.5 * max_kl
    assert kl == pytest.approx(info.kl, rel=1e-5)


def test_fit_value_reduces_loss():
    torch.manual_seed(0)
    v = ValueNet(2)
    s = torch.randn(400, 2)
    target = s[:, 0] * 2 - s[:, 1]
    opt = torch.optim.Adam(v.parameters(), lr=1e-2)
    first = fit_value(v, opt, s, target, epochs=1)
    last = fit_value(v, opt, s, target, epochs=20)
    assert last < 0.2 * first


def test_value_output_stats_move_without_changing_outputs():
    torch.manual_seed(1)
    v = ValueNet(3, (8, 8), normalize_output=True)
    s = torch.randn(50, 3)
    before = v(s).detach().clone()
    v.set_output_stats(torch.tensor(-400.0), torch.tensor(120.0))
    assert torch.allclose(v(s), before, atol=1e-4)
    assert torch.allclose(v.normalized(s) * 120.0 - 400.0, before, atol=1e-4)
    with pytest.raises(ValueError, match="normalize_output"):
        ValueNet(3).set_output_stats(torch.tensor(0.0), torch.tensor(1.0))


def test_normalized_value_fits_large_returns_where_the_plain_net_does_not():
    # returns of magnitude ~1000 (Pendulum-like): the plain tanh net must push its last layer to ~1000/64
    # and, within the same 30 Adam epochs, stays far off; the PopArt net regresses O(1) targets.
    s = torch.randn(512, 2, generator=torch.Generator().manual_seed(0))
    target = -800.0 + 150.0 * torch.tanh(s[:, 0]) - 60.0 * s[:, 1]
    errs = {}  # measured: plain 804, normalized 15 (target s.d. 112)
    for norm in (False, True):
        torch.manual_seed(0)
        v = ValueNet(2, normalize_output=norm)
        v.obs_norm.fit(s)
        opt = torch.optim.Adam(v.parameters(), lr=1e-3)
        fit_value(v, opt, s, target, epochs=30, g=torch.Generator().manual_seed(0))
        errs[norm] = float((v(s) - target).detach().pow(2).mean().sqrt())
    assert errs[True] < 0.2 * target.std()
    assert errs[False] > 0.5 * target.std()
    assert float(v.out_mean) == pytest.approx(float(target.mean()), rel=1e-5)


def test_constant_returns_do_not_blow_up_a_floored_normalized_value():
    # Acrobot model rollouts that never terminate all return exactly -100: sigma collapses to ~0 and PopArt's
    # rescaling multiplies the last layer by sigma_old / sigma. The floor keeps the last layer at its scale
    # (measured: max weight 1.8 with the floor, 1.8e6 without).
    s = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    varied = -60.0 + 15.0 * s[:, 0]
    flat = torch.full((256,), -100.0)
    out = {}
    for min_std in (1e-6, 1.0):
        torch.manual_seed(0)
        v = ValueNet(2, normalize_output=True, min_std=min_std)
        v.obs_norm.fit(s)
        opt = torch.optim.Adam(v.parameters(), lr=1e-3)
        fit_value(v, opt, s, varied, epochs=5)
        fit_value(v, opt, s, flat, epochs=5)
        assert float(v.out_std) == pytest.approx(min_std, rel=1e-6)  # flat targets: sigma sits on the floor
        out[min_std] = float(v.net[-1].weight.detach().abs().max())
    assert out[1e-6] > 1e3 * out[1.0]  # the unfloored last layer is rescaled by about sigma_old / 1e-6


def _policy_with_stats(seed=0):
    torch.manual_seed(seed)
    pol = GaussianPolicy(5, 3, hidden=(16, 8), init_log_std=-0.3)
    s = torch.randn(300, 5) * torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0]) + 0.7
    pol.obs_norm.fit(s)
    with torch.no_grad():
        pol.log_std.copy_(torch.tensor([0.2, -0.5, 0.0]))
    return pol, s


def test_fisher_vector_product_is_the_kl_hessian():
    """The analytic Fisher product equals the Hessian of mean KL(pi_old || pi) at pi_old (double backward)."""
    from deep.policy import _kl, _mean_params, _tanh_forward, fisher_vector_product
    pol, s = _policy_with_stats()
    params = list(pol.parameters())
    with torch.no_grad():
        mu_old, ls_old = (t.clone() for t in pol.dist(s))
    grad = torch.autograd.grad(_kl(pol, s, mu_old, ls_old), params, create_graph=True)
    flat = torch.cat([x.reshape(-1) for x in grad])
    weights, biases = _mean_params(pol)
    with torch.no_grad():
        hs, _ = _tanh_forward(weights, biases, pol.obs_norm(s))
    for k in range(3):
        v = torch.randn(flat.numel(), generator=torch.Generator().manual_seed(k))
        hv = torch.cat([x.reshape(-1) for x in torch.autograd.grad(flat @ v, params, retain_graph=True)])
        with torch.no_grad():
            fv = fisher_vector_product(weights, hs, pol.log_std.detach(), v, damping=0.1)
        torch.testing.assert_close(fv, hv + 0.1 * v, rtol=1e-4, atol=1e-5)


def test_tanh_mlp_products_match_autograd():
    from deep.policy import _mean_params, _tanh_forward, tanh_mlp_jvp, tanh_mlp_vjp
    pol, s = _policy_with_stats(1)
    weights, biases = _mean_params(pol)
    x = pol.obs_norm(s).detach()
    params = [p for W, b in zip(weights, biases) for p in (W, b)]
    with torch.no_grad():
        hs, y = _tanh_forward(weights, biases, x)
    dy = torch.randn_like(y)
    ref = torch.autograd.grad((_tanh_forward(weights, biases, x)[1] * dy).sum(), params)
    for got, want in zip(tanh_mlp_vjp(weights, hs, dy), ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    v = [torch.randn_like(p) for p in params]
    f = lambda *ps: _tanh_forward(list(ps[0::2]), list(ps[1::2]), x)[1]  # noqa: E731
    _, want = torch.func.jvp(f, tuple(p.detach() for p in params), tuple(v))
    torch.testing.assert_close(tanh_mlp_jvp(weights, hs, v), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value_norm", [False, True])
def test_fit_value_equals_autograd_regression_with_torch_adam(value_norm):
    """The hand-written minibatch steps and fused Adam give what autograd and ``torch.optim.Adam`` give:
    the same permutations (same generator), a last minibatch of 8 of 40 rows, two calls (Adam state kept)."""
    torch.manual_seed(0)
    fast = ValueNet(4, hidden=(12, 6), normalize_output=value_norm)
    ref = ValueNet(4, hidden=(12, 6), normalize_output=value_norm)
    ref.load_state_dict(fast.state_dict())
    s = torch.randn(40, 4) * 2 + 1
    target = s[:, 0] * 3 - s[:, 1].pow(2) + 5
    for m in (fast, ref):
        m.obs_norm.fit(s)
    opt_fast = torch.optim.Adam(fast.parameters(), lr=1e-2)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2, foreach=False)
    g_fast, g_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(2):
        loss = fit_value(fast, opt_fast, s, target, epochs=3, batch_size=16, g=g_fast)
        t = target
        if value_norm:
            ref.set_output_stats(t.mean(), t.std(unbiased=False), preserve=bool(ref.out_set))
            t = (t - ref.out_mean) / ref.out_std
        x = ref.obs_norm(s).detach()
        for _ in range(3):
            perm = torch.randperm(40, generator=g_ref)
            tot = 0.0
            for i in range(0, 40, 16):
                idx = perm[i:i + 16]
                l = (ref.net(x[idx]).squeeze(-1) - t[idx]).pow(2).mean()
                opt_ref.zero_grad()
                l.backward()
                opt_ref.step()
                tot += float(l.detach()) * len(idx)
        want = tot / 40 * (float(ref.out_std) ** 2 if value_norm else 1.0)
        assert loss == pytest.approx(want, rel=1e-4)
        for (k, a), b in zip(fast.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=k)
    st_fast, st_ref = opt_fast.state_dict()["state"], opt_ref.state_dict()["state"]
    for k in st_ref:
        assert float(st_fast[k]["step"]) == float(st_ref[k]["step"]) == 6 * 3
