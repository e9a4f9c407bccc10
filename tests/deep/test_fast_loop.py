"""The deep loop's fast paths against the plain module code they replace: folded normalizers, the model
rollout, the numpy policy of real steps; same seed, same run; the CUDA path where CUDA is present."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.algorithm import Trainer, train_run  # noqa: E402
from deep.config import make_config  # noqa: E402
from deep.models import DynamicsModel, fold_normalizers, folded_forward  # noqa: E402
from deep.policy import GaussianPolicy  # noqa: E402
from lab.rundir import read_metrics  # noqa: E402

torch.set_num_threads(1)

TINY = dict(n_real=150, k_model=4, value_refresh_every=2, refresh_samples=40, k_policy=2, policy_samples=40,
            rollout_envs=4, model_hidden=(16, 16), policy_hidden=(8,), value_hidden=(8,), model_batch=16,
            checkpoint_every=1, device="cpu")


def test_folded_normalizers_give_the_modules_outputs():
    torch.manual_seed(0)
    s = torch.randn(200, 7) * torch.arange(1.0, 8.0) + 2.0
    s2 = s + 0.1 * torch.randn(200, 7) + 0.3
    a = torch.rand(200, 2) * 2 - 1
    model = DynamicsModel(7, 2, (32, 32), ignore_dims=(0, 3))
    model.fit_normalizers(s, s2)
    with torch.no_grad():
        torch.testing.assert_close(s + folded_forward(model.folded(), torch.cat([s, a], 1)), model(s, a),
                                   rtol=1e-5, atol=1e-5)
        pol = GaussianPolicy(7, 2, (16, 16))
        pol.obs_norm.fit(s)
        layers = fold_normalizers(pol.mu, pol.obs_norm.mean, pol.obs_norm.std)
        torch.testing.assert_close(folded_forward(layers, s), pol.dist(s)[0], rtol=1e-5, atol=1e-5)


def _reference_rollout(tr, n):
    """Algorithm 2's model rollout written step by step with the modules (same generator draws)."""
    B, spec = tr.cfg.rollout_envs, tr.spec
    T = n // B
    s = spec.start_fn(B, tr.g)
    noise = torch.randn((T, B, spec.act_dim), generator=tr.g) * tr.policy.log_std.exp()
    ep_t = torch.zeros(B)
    out = {k: [] for k in ("s", "a", "r", "s2", "done", "trunc")}
    for t in range(T):
        a = tr.policy.dist(s)[0] + noise[t]
        ac = a.clamp(-1.0, 1.0)
        s2 = torch.nan_to_num(tr.model(s, ac)).clamp(tr.box[0], tr.box[1])
        done = spec.done_fn(s2)
        ep_t += 1
        trunc = (ep_t >= spec.max_steps) & ~done
        for k, v in zip(out, (s, a, spec.reward_fn(s, ac, s2), s2, done, trunc)):
            out[k].append(v)
        end = done | trunc
        if end.any():
            s = torch.where(end[:, None], spec.start_fn(B, tr.g), s2)
            ep_t[end] = 0
        else:
            s = s2
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("env, n", [("cartpole", 8 * 60), ("pendulum", 2 * 230)])
def test_model_rollout_equals_the_step_by_step_reference(env, n):
    """cartpole: terminations (columns restart mid-rollout); pendulum: 230 steps cross the 200-step limit."""
    cfg = make_config(env, "mle", steps=1000, **{**TINY, "rollout_envs": n // (60 if env == "cartpole" else 230)})
    tr = Trainer(cfg)
    tr.collect(300)
    tr._fit_normalizers()
    tr.update_model()
    if env == "cartpole":
        with torch.no_grad():  # a pole angle drifting by 0.03 rad a step: terminations within ~10 steps
            tr.model.delta_norm.mean[2] += 0.03
    state = tr.g.get_state()
    with torch.no_grad():
        want = _reference_rollout(tr, n)
    after = tr.g.get_state()
    tr.g.set_state(state)
    got = tr.model_rollout(n)
    assert torch.equal(tr.g.get_state(), after)  # the same draws from the run's generator
    assert torch.equal(got["done"], want["done"]) and torch.equal(got["trunc"], want["trunc"])
    assert (want["done"] if env == "cartpole" else want["trunc"]).any()  # the restart path was exercised
    for k in ("s", "a", "r", "s2"):
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-4, msg=k)


def test_real_steps_use_the_policy_mean_plus_noise():
    """The numpy policy of ``collect`` computes the module's mean; actions are mean + sigma * noise, clipped."""
    cfg = make_config("pendulum", "mle", steps=1000, **TINY)
    tr = Trainer(cfg)
    tr.collect(100)
    tr._fit_normalizers()
    with torch.no_grad():
        tr.policy.log_std.fill_(-20.0)  # no noise: the action is the (clipped) mean
    n0 = tr.buffer.n
    tr.collect(50)
    s = torch.as_tensor(tr.buffer.obs[n0:n0 + 50])
    with torch.no_grad():
        mean = tr.policy.dist(s)[0].clamp(-1, 1).numpy()
    np.testing.assert_allclose(tr.buffer.act[n0:n0 + 50], mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env, method", [("pendulum", "ma_l1"), ("cartpole", "ma_vaml_vps")])
def test_same_seed_same_run(tmp_path, env, method):
    """Two runs of one config log the same numbers and end with the same networks."""
    cfg = make_config(env, method, steps=300, **TINY)
    a = train_run(cfg, root=tmp_path / "a", progress=False)
    b = train_run(cfg, root=tmp_path / "b", progress=False)
    ma, mb = read_metrics(a), read_metrics(b)
    assert list(ma) == list(mb) and len(ma["step"]) == 2
    for key in ma:
        if key != "wall_s":
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=key)
    ca = torch.load(a / "checkpoint", weights_only=True)
    cb = torch.load(b / "checkpoint", weights_only=True)
    for net in ("model", "policy", "value", "model_opt", "value_opt"):
        fa, fb = ca[net], cb[net]
        if net.endswith("opt"):
            fa, fb = fa["state"], fb["state"]
            assert fa.keys() == fb.keys()
            for k in fa:
                for name in fa[k]:
                    assert torch.equal(fa[k][name], fb[k][name]), (net, k, name)
        else:
            for k in fa:
                assert torch.equal(fa[k], fb[k]), (net, k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_is_finite_and_resumes(tmp_path):
    """``--device cuda``: networks and rollouts on the GPU; the run finishes with finite numbers and resumes.
    CUDA's atomic adds (index_select's backward) make GPU runs reproducible only to rounding, which training
    amplifies, so the comparison with an uninterrupted run is exact only where no training has acted yet: the
    steps and the first iteration's real return (the initial policy's)."""
    cfg = make_config("pendulum", "ma_l1_vps", steps=300, **{**TINY, "device": "cuda"})
    tr = Trainer(cfg)
    assert next(tr.model.parameters()).is_cuda and next(tr.value.parameters()).is_cuda
    tr.collect(150)
    tr._fit_normalizers()
    ro = tr.model_rollout(40)
    assert ro["s"].is_cuda and ro["s"].shape == (10, 4, 3) and torch.isfinite(ro["r"]).all()
    full = train_run(cfg, root=tmp_path / "a", progress=False)
    part = train_run(cfg, root=tmp_path / "b", progress=False, max_iterations=1)
    part = train_run(cfg, root=tmp_path / "b", progress=False)
    ma, mb = read_metrics(full), read_metrics(part)
    for key in ("model_loss", "vps_loss", "kl", "value_loss", "one_step_error"):
        assert np.all(np.isfinite(ma[key])) and np.all(np.isfinite(mb[key])), key
    assert list(ma["step"]) == list(mb["step"]) == [150, 300]
    assert ma["return"][0] == mb["return"][0]
