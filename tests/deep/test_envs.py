"""deep.envs: each torch reward/termination function equals the real env's step outputs; start states."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep.config import ENV_NAMES, SLBO_ENV_NAMES  # noqa: E402
from deep.envs import ENVS, make_spec  # noqa: E402


MUJOCO = ("halfcheetah", "swimmer", "hopper", "ant", "reacher", *SLBO_ENV_NAMES)  # SLBO's: test_envs_slbo.py too
CLASSIC = sorted(set(ENVS) - set(MUJOCO))


@pytest.mark.parametrize("name", CLASSIC)
def test_reward_and_termination_match_real_env(name):
    spec = ENVS[name]
    env = spec.make()
    rng = np.random.default_rng(0)
    S, A, R, S2, D = [], [], [], [], []
    n_done = 0
    obs, _ = env.reset(seed=0)
    for _ in range(3000):
        a = rng.uniform(-1.3, 1.3, size=spec.act_dim)  # beyond [-1, 1] too: both sides must clip alike
        o2, r, term, _, _ = env.step(a)
        S.append(obs); A.append(a); R.append(r); S2.append(o2); D.append(term)
        n_done += term
        if name.startswith("acrobot") and rng.random() < 0.02:  # visit high states: jump to random angles
            env.unwrapped.state = rng.uniform(-np.pi, np.pi, 4) * np.array([1, 1, 0.3, 0.3])
            o2 = env.unwrapped._get_ob()
        obs = env.reset(seed=int(rng.integers(1 << 30)))[0] if term else o2
    t = lambda x: torch.tensor(np.array(x), dtype=torch.float32)  # noqa: E731
    r_hat = spec.reward_fn(t(S), t(A), t(S2))
    d_hat = spec.done_fn(t(S2))
    np.testing.assert_allclose(r_hat.numpy(), np.array(R), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(d_hat.numpy(), np.array(D))
    if name.endswith("-mbbl"):
        assert n_done == 0 and not d_hat.any()  # the MBBL tasks never terminate
    elif name != "pendulum":
        assert n_done > 0, "no terminations visited: the test would not check the done function"


@pytest.mark.parametrize("name", CLASSIC)
def test_start_states_match_reset_distribution_support(name):
    spec = ENVS[name]
    env = spec.make()
    real = np.array([env.reset(seed=i)[0] for i in range(200)])
    model = spec.start_fn(2000, torch.Generator().manual_seed(0)).numpy()
    assert model.shape == (2000, spec.obs_dim)
    lo, hi = real.min(0), real.max(0)
    span = hi - lo
    assert np.all(model.min(0) >= lo - 0.1 * span - 1e-6) and np.all(model.max(0) <= hi + 0.1 * span + 1e-6)


def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="valid"):
        make_spec("mountaincar")


@pytest.mark.parametrize("name, state, reward", [
    # hand-computed: Pendulum at rest at the bottom (theta = pi) pays +1 and stays there
    ("pendulum-mbbl", np.array([np.pi, 0.0]), 1.0),
    ("pendulum-mbbl", np.array([0.0, 0.0]), -1.0),            # upright: cos 0 = 1 is a cost
    ("cartpole-mbbl", np.array([2.0, 0.0, 0.0, 0.0]), 1.0 - 0.04),  # cos 0 - 0.01 * 2^2
    ("acrobot-mbbl", np.zeros(4), -2.0),                       # both links down: tip height -2
])
def test_mbbl_rewards_by_hand(name, state, reward):
    env = ENVS[name].make()
    env.reset(seed=0)
    env.unwrapped.state = state.copy()
    o2, r, term, trunc, _ = env.step(np.zeros(1))
    assert r == pytest.approx(reward, abs=1e-6) and not term and not trunc
    if name == "pendulum-mbbl" and state[0] == np.pi:
        assert o2 == pytest.approx([-1.0, 0.0, 0.0], abs=1e-6)  # a stable rest


def _step_from_rest(name, a):
    env = ENVS[name].make()
    env.reset(seed=0)
    env.unwrapped.state = np.zeros(4)
    return env.step(np.array([a]))[0]


def test_mbbl_cartpole_is_bang_bang():
    right, left = _step_from_rest("cartpole-mbbl", 1.0), _step_from_rest("cartpole-mbbl", -1.0)
    assert right[1] > 0 and np.allclose(left, -right)  # +10 N and -10 N mirror each other
    assert np.array_equal(_step_from_rest("cartpole-mbbl", 0.01), right)  # any a > 0 is the full force
    assert np.array_equal(_step_from_rest("cartpole-mbbl", 0.0), left)  # a = 0 pushes left, as in MBBL


def test_mbbl_acrobot_thresholds_the_torque():
    step = lambda a: _step_from_rest("acrobot-mbbl", a)  # noqa: E731
    assert np.array_equal(step(-0.5), step(-1.0)) and np.array_equal(step(0.5), step(1.0))
    assert np.array_equal(step(-0.2), step(0.32)) and np.abs(step(0.0)[4:]).max() < 1e-9  # no torque: at rest
    assert step(1.0)[5] > 0 > step(-1.0)[5]


#: documented residuals: Ant's forward reward reads x at the torso body, one substep behind qpos[0]
MUJOCO_ATOL = {"ant": 0.15}


@pytest.mark.parametrize("name", MUJOCO)
def test_mujoco_reward_and_termination_match_the_env(name):
    """Random and policy transitions (a random linear tanh policy), compared in float64: reward error below 1e-6
    (Ant: the documented torso-body lag), every termination matched."""
    pytest.importorskip("mujoco")
    spec = ENVS[name]
    env = spec.make()
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.5, (spec.act_dim, spec.obs_dim))
    S, A, R, S2, D = [], [], [], [], []
    obs, _ = env.reset(seed=0)
    t = 0
    for i in range(2500):
        a = rng.uniform(-1, 1, spec.act_dim) if i % 2 else np.tanh(W @ obs)
        o2, r, term, _, _ = env.step(a)
        S.append(obs); A.append(a); R.append(r); S2.append(o2); D.append(term)
        t += 1
        if term or t >= spec.max_steps:
            obs, t = env.reset(seed=int(rng.integers(1 << 30)))[0], 0
        else:
            obs = o2
    x = lambda v: torch.tensor(np.array(v), dtype=torch.float64)  # noqa: E731
    r_hat = spec.reward_fn(x(S), x(A), x(S2)).numpy()
    d_hat = spec.done_fn(x(S2)).numpy()
    err = np.abs(r_hat - np.array(R))
    assert err.max() < MUJOCO_ATOL.get(name, 1e-6), (err.max(), int(err.argmax()))
    np.testing.assert_array_equal(d_hat, np.array(D))
    if name in ("hopper", "ant"):
        assert np.sum(D) > 0, "no terminations visited: the test would not check the done function"


@pytest.mark.parametrize("name", MUJOCO)
def test_mujoco_start_states_are_env_resets_and_state_restores_exactly(name):
    pytest.importorskip("mujoco")
    spec = ENVS[name]
    env = spec.make()
    starts = spec.start_fn(8, torch.Generator().manual_seed(0))
    resets = np.array([env.reset(seed=i)[0] for i in range(1024)], dtype=np.float32)
    assert all(any(np.array_equal(s, r) for r in resets) for s in starts.numpy())  # drawn from real resets
    env.reset(seed=3)
    for _ in range(5):
        env.step(np.full(spec.act_dim, 0.3))
    saved = spec.get_state(env)
    ahead = [env.step(np.full(spec.act_dim, -0.2))[0] for _ in range(20)]
    other = spec.make()
    other.reset(seed=99)
    spec.set_state(other, saved)
    again = [other.step(np.full(spec.act_dim, -0.2))[0] for _ in range(20)]
    np.testing.assert_array_equal(np.array(ahead), np.array(again))  # bit for bit: warm starts restored too


@pytest.mark.parametrize("name", ENV_NAMES)
def test_reward_of_next_state_lists_exactly_the_rewards_with_a_gradient_in_s2(name):
    # RunConfig.reward_term applies where the known reward reaches the model's prediction
    from deep.config import REWARD_OF_NEXT_STATE
    from deep.envs import make_spec

    spec = make_spec(name)
    if name in REWARD_OF_NEXT_STATE:
        pytest.importorskip("mujoco")
    g = torch.Generator().manual_seed(0)
    s = spec.start_fn(64, g)
    s2 = (s + 0.01 * torch.randn(s.shape, generator=g)).requires_grad_(True)
    a = torch.rand(64, spec.act_dim, generator=g) * 2 - 1
    r = spec.reward_fn(s, a, s2).sum()
    grad = torch.autograd.grad(r, s2, allow_unused=True)[0] if r.requires_grad else None
    has_gradient = grad is not None and bool(grad.abs().sum() > 0)
    assert has_gradient == (name in REWARD_OF_NEXT_STATE)
