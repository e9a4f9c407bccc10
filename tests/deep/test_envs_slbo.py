"""deep.envs_slbo: SLBO's rllab-derived MuJoCo tasks against their own steps, every termination branch, the
observation layout, rllab's constants, the ported XMLs, and the config's defaults for these tasks.

Constants below are literals from the sources, each cited: rllab = rll/rllab @ b3a2899 (vendor/mujoco_models/*.xml,
rllab/envs/mujoco/*_env.py), SLBO = facebookresearch/slbo @ c963d6e = nirbhayjm/va_slbo @ da9b45b
(slbo/envs/mujoco/*_env.py, configs/env_tingwu/gym_*.yml). (The generic MuJoCo tests of test_envs.py run on these
tasks too: random-policy rewards within 1e-6, start states drawn from resets, bit-exact state restore.)
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mujoco = pytest.importorskip("mujoco")

from deep.config import SLBO_ENV_NAMES, TABLE1, make_config, reward_term_applies  # noqa: E402
from deep.envs import make_spec  # noqa: E402
from deep.envs_slbo import ASSETS, TASKS  # noqa: E402

NAMES = list(TASKS)

#: name: (obs dim, act dim, timestep, frame_skip, ctrl half-range, control-cost weight on the policy action,
#: constant per-step bonus, index of the forward com velocity in the observation)
#: timestep, frame_skip (custom numeric), ctrlrange: rllab's XMLs. Weights: rllab half_cheetah_env.py
#: 1e-1 * 0.5 (on the clipped action); hopper_env.py 0.5 * ctrl_cost_coeff (0.01) and alive_coeff 1;
#: SLBO ant_env.py 0.5 * 1e-2 and survive_reward 0.05 (contact cost 0); swimmer_env.py 0.5 * 1e-2.
#: Observation sizes: SLBO's get_current_obs (qpos, qvel, [Ant: torso xmat 9], torso com 3, comvel 3).
SOURCE = {
    "halfcheetah-slbo": (24, 6, 0.01, 1, 1.0, 0.05, 0.0, 21),
    "hopper-slbo": (18, 3, 0.02, 1, 200.0, 0.005, 1.0, 15),
    "ant-slbo": (44, 8, 0.02, 1, 150.0, 0.005, 0.05, 41),
    "swimmer-slbo": (16, 2, 0.001, 50, 50.0, 0.005, 0.0, 13),
}


def _t(x):
    return torch.tensor(np.array(x), dtype=torch.float64)


def _put(env, qpos, qvel):
    """Set the simulator state (after a reset) and recompute the derived quantities."""
    env.reset(seed=0)
    env.data.qpos[:] = qpos
    env.data.qvel[:] = qvel
    mujoco.mj_forward(env.model, env.data)


@pytest.mark.parametrize("name", NAMES)
def test_sizes_timestep_and_episode_length_are_the_sources(name):
    S, A, timestep, skip, half, _, _, _ = SOURCE[name]
    spec = make_spec(name)
    env = spec.make()
    assert (spec.obs_dim, spec.act_dim) == (S, A) == (env.observation_space.shape[0], env.action_space.shape[0])
    assert env.reset(seed=0)[0].shape == (S,)
    assert env.model.opt.timestep == timestep and env.frame_skip == skip
    assert env.dt == pytest.approx(timestep * skip, rel=1e-12)
    np.testing.assert_array_equal(env.model.actuator_ctrlrange, np.tile([-half, half], (A, 1)))
    if name != "halfcheetah-slbo":  # gear 1: torque = ctrl, so a = u / half-range (HalfCheetah: gears 120 ... 30)
        assert np.all(env.model.actuator_gear[:, 0] == 1.0)
    assert spec.max_steps == 1000  # configs/env_tingwu/gym_{cheetah,hopper,ant,swimmer}.yml: runner.max_steps


@pytest.mark.parametrize("name", NAMES)
def test_passes_gymnasiums_env_checker(name):
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():  # unbounded observation boxes are what Gymnasium's own MuJoCo envs use too
        warnings.filterwarnings("ignore", message=".*infinity", category=UserWarning)
        check_env(make_spec(name).make(), skip_render_check=True)


@pytest.mark.parametrize("name", NAMES)
def test_reward_and_termination_match_the_env_in_float64_and_float32(name):
    """Actions beyond [-1, 1] too (the authors' real actions are Gaussian plus OU noise, unclipped): only
    HalfCheetah clips them in its cost. Both sides read the same float64 com velocity; only the order of the
    control-cost sum can differ, so float64 agrees to ~1e-15 (1e-9 checked: the smallest term, 0.005 a^2 at
    |a| ~ 0.01, is 5e-7). In float32 (what the training loop uses) rewards of size <= ~20 round at ~1e-6."""
    spec = make_spec(name)
    env = spec.make()
    rng = np.random.default_rng(1)
    W = rng.normal(0, 0.5, (spec.act_dim, spec.obs_dim))
    S, A, R, S2, D = [], [], [], [], []
    obs, _ = env.reset(seed=1)
    for i in range(1500):
        a = rng.uniform(-1.5, 1.5, spec.act_dim) if i % 2 else np.tanh(W @ obs / 10)
        o2, r, term, trunc, _ = env.step(a)
        assert not trunc  # the time limit is the caller's
        S.append(obs); A.append(a); R.append(r); S2.append(o2); D.append(term)
        obs = env.reset(seed=int(rng.integers(1 << 30)))[0] if term else o2
    r_hat = spec.reward_fn(_t(S), _t(A), _t(S2)).numpy()
    np.testing.assert_allclose(r_hat, np.array(R), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(spec.done_fn(_t(S2)).numpy(), np.array(D))
    f = lambda x: torch.tensor(np.array(x), dtype=torch.float32)  # noqa: E731
    np.testing.assert_allclose(spec.reward_fn(f(S), f(A), f(S2)).numpy(), np.array(R), rtol=1e-5, atol=1e-5)
    if name == "hopper-slbo":
        assert sum(D) > 10, "random Hopper falls within ~20 steps: terminations must have been visited"
    if name in ("halfcheetah-slbo", "swimmer-slbo"):
        assert not any(D)


@pytest.mark.parametrize("name", NAMES)
def test_rewards_by_hand_in_free_flight(name):
    """In the air with no action nothing acts horizontally, so the com velocity set at the start is kept and the
    reward is that velocity plus the bonus; with an action the reward is the next com velocity plus the bonus
    minus the control cost computed by hand (torques alone do not keep the com velocity: rotor armature)."""
    S, A, _, _, _, w, bonus, fwd = SOURCE[name]
    env = make_spec(name).make()
    qpos, qvel = env.init_qpos.copy(), np.zeros(env.model.nv)
    if name == "halfcheetah-slbo":
        qpos[1] = 1.0  # rootz: the torso 1 m above its start, the feet off the ground
        qvel[0] = 2.0
    elif name == "hopper-slbo":
        qpos[0], qpos[3], qpos[4] = 1.6, -0.5, -0.5  # height; thigh and leg bent away from their limits
        qvel[1] = 2.0
    elif name == "ant-slbo":
        qpos[2] = 0.95  # below the termination height 1, the feet ~0.4 above the floor
        qvel[0] = 2.0
    else:
        qvel[0] = 2.0  # the swimmer: viscosity slows it, so its reward is checked against its own com velocity
    _put(env, qpos, qvel)
    o2, r, term, _, _ = env.step(np.zeros(A))
    assert not term and env.data.ncon == 0
    if name == "swimmer-slbo":
        assert 0 < o2[fwd] < 2.0 and r == o2[fwd]
    else:
        assert o2[fwd] == pytest.approx(2.0, abs=1e-9) and r == pytest.approx(2.0 + bonus, abs=1e-9)
    _put(env, qpos, qvel)
    a = np.linspace(-1.5, 1.5, A)  # beyond the bounds at both ends: only HalfCheetah's cost clips them
    cost = w * np.sum(np.clip(a, -1, 1) ** 2 if name == "halfcheetah-slbo" else a ** 2)
    o2, r, term, _, _ = env.step(a)
    assert not term and r == pytest.approx(o2[fwd] + bonus - cost, abs=1e-12)


def _hopper_failures(o):
    """Which of rllab's healthy conditions the observation breaks (hopper_env.py: state = qpos, qvel)."""
    s = o[:12]
    return {"finite": not np.isfinite(s).all(), "joints": bool((np.abs(s[3:6]) >= 100).any()),
            "velocities": bool((np.abs(s[6:12]) >= 100).any()), "height": s[0] <= 0.7, "pitch": abs(s[2]) >= 0.2}


HOPPER_FALLS = {  # name: (qpos change, qvel change, the one condition broken after one step)
    "height": ({0: -0.65, 3: -np.pi / 2}, {}, "height"),  # thigh folded up, torso at 0.6 m: nothing touches
    "pitch forward": ({2: 0.3}, {}, "pitch"),
    "pitch backward": ({2: -0.3}, {}, "pitch"),
    "velocity": ({}, {1: 150.0}, "velocities"),  # sliding at 150 m/s in the air
    "negative velocity": ({}, {1: -150.0}, "velocities"),  # SLBO's mb_step (no abs) would miss this one
}


@pytest.mark.parametrize("case", HOPPER_FALLS)
def test_hopper_each_termination_branch_through_a_step(case):
    spec = make_spec("hopper-slbo")
    env = spec.make()
    dq, dv, broken = HOPPER_FALLS[case]
    qpos, qvel = env.init_qpos.copy(), np.zeros(6)
    for i, v in dq.items():
        qpos[i] += v
    for i, v in dv.items():
        qvel[i] += v
    _put(env, qpos, qvel)
    o2, r, term, _, _ = env.step(np.zeros(3))
    assert [k for k, v in _hopper_failures(o2).items() if v] == [broken]
    assert term and bool(spec.done_fn(_t([o2]))[0])
    assert r == pytest.approx(o2[15] + 1.0, abs=1e-12)  # the alive bonus is paid on the terminating step


def test_hopper_standing_still_is_healthy():
    spec = make_spec("hopper-slbo")
    env = spec.make()
    o, _ = env.reset(seed=0)
    o2, _, term, _, _ = env.step(np.zeros(3))
    assert not any(_hopper_failures(o2).values()) and not term and not bool(spec.done_fn(_t([o2]))[0])


@pytest.mark.parametrize("name, index, value", [
    ("hopper-slbo", 5, -101.0),      # a joint angle beyond 100 rad: the limits make it unreachable by stepping
    ("hopper-slbo", 4, 100.5),
    ("hopper-slbo", 9, np.nan),      # non-finite: MuJoCo 4 resets a diverged simulation, so no step yields one
    ("ant-slbo", 20, np.inf),
])
def test_unreachable_termination_branches_on_the_envs_own_predicate(name, index, value):
    """Branches no step reaches are checked on the env's own termination test of the state (qpos, qvel)."""
    spec = make_spec(name)
    env = spec.make()
    env.reset(seed=0)
    nq = env.model.nq
    target = env.data.qpos if index < nq else env.data.qvel
    target[index if index < nq else index - nq] = value
    mujoco.mj_forward(env.model, env.data)  # no mj_step: its divergence check would reset the state
    o = env._get_obs()
    assert env.terminated() and bool(spec.done_fn(_t([o]))[0])
    if name == "hopper-slbo" and np.isfinite(value):
        assert [k for k, v in _hopper_failures(o).items() if v] == ["joints"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hopper_done_in_one_comparison_is_the_sources_conjunction(dtype):
    """The torch test written as rllab's hopper_env.py states it (finite state, |s[3:12]| < 100, z > 0.7,
    |pitch| < 0.2) and the one-comparison form agree on every row: NaN and +-inf at each index, each bound
    itself and its neighbours in ``dtype``, and random states on both sides of the bounds."""
    spec = make_spec("hopper-slbo")

    def conjunction(s2):
        state = s2[:, :12]
        return ~(torch.isfinite(state).all(-1) & (state[:, 3:].abs() < 100).all(-1) & (state[:, 0] > 0.7)
                 & (state[:, 2].abs() < 0.2))

    g = torch.Generator().manual_seed(0)
    base = torch.tensor([1.25, 0.0, 0.0] + [0.0] * 15, dtype=dtype)
    rows = [base + torch.randn(18, generator=g, dtype=dtype) * torch.tensor([0.4, 5, 0.2] + [80] * 15, dtype=dtype)
            for _ in range(2000)]
    for i in range(12):
        for v in (float("nan"), float("inf"), -float("inf")):
            rows.append(base.clone().index_fill_(0, torch.tensor([i]), v))
    for i, bound in [(0, 0.7), (2, 0.2), (2, -0.2)] + [(i, 100.0) for i in range(3, 12)]:
        b = torch.tensor(bound, dtype=dtype)
        for v in (b, torch.nextafter(b, torch.tensor(0.0, dtype=dtype)), torch.nextafter(b, 2 * b)):
            rows.append(base.clone().index_fill_(0, torch.tensor([i]), v.item()))
    s2 = torch.stack(rows)
    expected = conjunction(s2)
    assert 0 < int(expected.sum()) < len(rows)  # both outcomes occur
    assert torch.equal(spec.done_fn(s2), expected)


@pytest.mark.parametrize("dz, ends", [(1.0, True), (-0.45, True), (0.0, False)])
def test_ant_height_branches_through_a_step(dz, ends):
    """rllab's ant_env.py: healthy while 0.2 <= z <= 1. Raised 1 m it is still above 1 after one step (1.55);
    dropped to 0.1 m the floor pushes it up, but not past 0.2 in one step (0.14)."""
    spec = make_spec("ant-slbo")
    env = spec.make()
    qpos = env.init_qpos.copy()
    qpos[2] += dz
    _put(env, qpos, np.zeros(env.model.nv))
    o2, r, term, _, _ = env.step(np.zeros(8))
    assert term == ends == bool(spec.done_fn(_t([o2]))[0]) == (not 0.2 <= o2[2] <= 1.0)
    assert r == pytest.approx(o2[41] + 0.05, abs=1e-12)


@pytest.mark.parametrize("name", ["halfcheetah-slbo", "swimmer-slbo"])
def test_never_terminates_even_upside_down(name):
    spec = make_spec(name)
    env = spec.make()
    qpos = env.init_qpos.copy()
    qpos[2] = np.pi  # HalfCheetah's pitch (rooty), Swimmer's heading (rot)
    _put(env, qpos, np.zeros(env.model.nv))
    for _ in range(50):
        o2, _, term, _, _ = env.step(np.ones(spec.act_dim))
        assert not term and not bool(spec.done_fn(_t([o2]))[0])


def _rllab_comvel(model, data, body):
    """rllab's MjModel._compute_subtree (rllab/mujoco_py/mjcore.py): each body's velocity at its centre of
    mass times its mass, summed up the tree, divided by the subtree's mass."""
    n = model.nbody
    vel = np.zeros((n, 6))
    for i in range(n):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, i, vel[i], 0)
    mom = vel[:, 3:] * model.body_mass[:, None]
    mass = model.body_mass.copy()
    for i in range(n - 1, 0, -1):
        mom[model.body_parentid[i]] += mom[i]
        mass[model.body_parentid[i]] += mass[i]
    return mom[body] / mass[body]


#: name: (qpos joint names in observation order, extra block) from the module docstring's table
LAYOUT = {
    "halfcheetah-slbo": (["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"], 0),
    "hopper-slbo": (["rootz", "rootx", "rooty", "thigh_joint", "leg_joint", "foot_joint"], 0),
    "ant-slbo": (["root"] * 7 + ["hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4"], 9),
    "swimmer-slbo": (["slider1", "slider2", "rot", "rot2", "rot3"], 0),
}


@pytest.mark.parametrize("name", NAMES)
def test_observation_layout_reads_the_named_quantities(name):
    spec = make_spec(name)
    env = spec.make()
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    for _ in range(30):
        o, *_ = env.step(rng.uniform(-1, 1, spec.act_dim))
    m, d = env.model, env.data
    joints, extra = LAYOUT[name]
    nq, nv = m.nq, m.nv
    qpos_names = [m.joint(j).name for j in range(m.njnt) for _ in range({0: 7, 1: 4}.get(m.jnt_type[j], 1))]
    assert qpos_names == joints  # free joint: 7 qpos (xyz, quaternion); ball: 4
    np.testing.assert_array_equal(o[:nq], d.qpos)
    np.testing.assert_array_equal(o[nq:nq + nv], d.qvel)
    if extra:
        np.testing.assert_array_equal(o[nq + nv:nq + nv + 9], d.body("torso").xmat)
    torso = m.body("torso").id
    np.testing.assert_array_equal(o[-6:-3], d.subtree_com[torso])
    np.testing.assert_allclose(o[-3:], _rllab_comvel(m, d, torso), rtol=0, atol=1e-10)
    assert m.body_parentid[torso] == 0 and m.body_subtreemass[torso] == pytest.approx(m.body_mass.sum())


def test_halfcheetah_com_velocity_is_the_rate_of_change_of_the_com():
    """The forward reward is the com's velocity in m/s: over 200 steps the com's displacement divided by dt
    tracks the velocity after the step (semi-implicit Euler moves positions with the new velocity; the com is
    nonlinear in the joint angles, so the gap is second order in dt: 2% of the mean speed measured)."""
    env = make_spec("halfcheetah-slbo").make()
    o, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    rate, vel = [], []
    for _ in range(200):
        o2, *_ = env.step(rng.uniform(-1, 1, 6))
        rate.append((o2[18] - o[18]) / 0.01)
        vel.append(o2[21])
        o = o2
    rate, vel = np.array(rate), np.array(vel)
    assert np.mean(np.abs(rate - vel)) < 0.05 * np.mean(np.abs(vel)) and np.mean(np.abs(vel)) > 0.1


@pytest.mark.parametrize("name", NAMES)
def test_resets_follow_rllab_noise(name):
    """rllab's reset_mujoco: qpos = init_qpos + 0.01 N(0, 1), qvel = 0.1 N(0, 1). Over 400 resets the per-dim
    standard deviations pooled over dimensions are within 10% (the standard error is ~1/sqrt(2 * 400 * dims))."""
    env = make_spec(name).make()
    nq, nv = env.model.nq, env.model.nv
    obs = np.array([env.reset(seed=i)[0] for i in range(400)])
    dq, dv = obs[:, :nq] - env.init_qpos, obs[:, nq:nq + nv]
    assert np.sqrt(np.mean(dq ** 2)) == pytest.approx(0.01, rel=0.1)
    assert np.sqrt(np.mean(dv ** 2)) == pytest.approx(0.1, rel=0.1)
    np.testing.assert_array_equal(env.reset(seed=7)[0], env.reset(seed=7)[0])


def test_ant_starts_from_rllabs_init_qpos():
    # rllab vendor/mujoco_models/ant.xml: <numeric name="init_qpos" data="0.0 0.0 0.55 1.0 0.0 ...">
    env = make_spec("ant-slbo").make()
    np.testing.assert_array_equal(env.init_qpos, [0, 0, 0.55, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1])


@pytest.mark.parametrize("name", NAMES)
def test_position_dims_do_not_enter_the_dynamics(name):
    """Shifting the root's horizontal position moves the com by the same amount and changes no observed
    change over a step: the position dims are absolute coordinates the model may leave out of its input."""
    spec = make_spec(name)
    env = spec.make()
    horizontal = {"halfcheetah-slbo": [0], "hopper-slbo": [1], "ant-slbo": [0, 1], "swimmer-slbo": [0, 1]}[name]
    env.reset(seed=4)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    a = np.full(spec.act_dim, 0.4)
    out = []
    for shift in (0.0, 3.7):
        q = qpos.copy()
        q[horizontal] += shift
        _put(env, q, qvel)
        o = env._get_obs()
        o2 = env.step(a)[0]
        out.append((o, o2))
    (o, o2), (p, p2) = out
    moved = np.flatnonzero(np.abs(p - o) > 1e-9)
    assert sorted(moved) == sorted(spec.position_dims)
    np.testing.assert_allclose(p[moved] - o[moved], 3.7, atol=1e-9)
    np.testing.assert_allclose(p2 - p, o2 - o, atol=1e-7)


def test_hopper_port_keeps_rllabs_global_geometry():
    """rllab's hopper.xml is in global coordinates: at qpos0 the ported model must put every joint anchor and
    geom where the original says (joint pos, the midpoints and half-lengths of the geoms' fromto)."""
    env = make_spec("hopper-slbo").make()
    m, d = env.model, env.data
    d.qpos[:] = m.qpos0
    mujoco.mj_kinematics(m, d)
    anchors = {"rootz": (0, 0, 0), "rootx": (0, 0, 0), "rooty": (0, 0, 1.25), "thigh_joint": (0, 0, 1.05),
               "leg_joint": (0, 0, 0.6), "foot_joint": (0, 0, 0.1)}
    for j, p in anchors.items():
        np.testing.assert_allclose(d.joint(j).xanchor, p, atol=1e-12)
    fromto = {"torso_geom": ((0, 0, 1.45), (0, 0, 1.05)), "thigh_geom": ((0, 0, 1.05), (0, 0, 0.6)),
              "leg_geom": ((0, 0, 0.6), (0, 0, 0.1)), "foot_geom": ((-0.13, 0, 0.1), (0.26, 0, 0.1))}
    for g, (p0, p1) in fromto.items():
        p0, p1 = np.array(p0), np.array(p1)
        np.testing.assert_allclose(d.geom(g).xpos, (p0 + p1) / 2, atol=1e-12)
        assert m.geom(g).size[1] == pytest.approx(np.linalg.norm(p1 - p0) / 2, abs=1e-12)
        axis = d.geom(g).xmat.reshape(3, 3)[:, 2]
        assert abs(axis @ (p1 - p0)) == pytest.approx(np.linalg.norm(p1 - p0), abs=1e-12)
    # masses from the geoms at density 1000: capsule volume pi r^2 L + 4/3 pi r^3
    radius = {"torso_geom": 0.05, "thigh_geom": 0.05, "leg_geom": 0.04, "foot_geom": 0.06}
    total = sum(1000 * (np.pi * r ** 2 * 2 * m.geom(g).size[1] + 4 / 3 * np.pi * r ** 3) for g, r in radius.items())
    assert m.body_subtreemass[m.body("torso").id] == pytest.approx(total, rel=1e-12)
    assert m.joint("rootz").qpos0[0] == 1.25  # ref="1.25": qpos[0] is the height


def test_swimmer_port_has_no_contacts():
    """rllab's swimmer.xml had collision="predefined" and no <contact> pairs: no contact was ever made."""
    env = make_spec("swimmer-slbo").make()
    assert env.model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT
    env.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(100):
        env.step(rng.uniform(-1, 1, 2))
        assert env.data.ncon == 0


def test_assets_carry_provenance_and_licence():
    text = (ASSETS / "LICENSE-rllab").read_text()
    assert text.startswith("The MIT License (MIT)") and "rllab contributors" in text
    for f in ("half_cheetah.xml", "hopper.xml", "ant.xml", "swimmer.xml"):
        head = (ASSETS / f).read_text().split("-->")[0]
        assert "b3a28992eca103cab3cb58363dd7a4bb07f250a0" in head and f"vendor/mujoco_models/{f}" in head
        assert "LICENSE-rllab" in head


@pytest.mark.parametrize("name", SLBO_ENV_NAMES)
def test_config_defaults_are_table1_of_the_task_and_no_reward_term(name):
    base = name.removesuffix("-slbo")
    for method in ("ma_l1", "ma_l1_vps", "ma_vaml", "ma_vaml_vps"):
        c = make_config(name, method)
        assert (c.alpha, c.lam) == TABLE1[(base, method)]
        assert not reward_term_applies(name, method) and c.reward_term is False
        assert make_config(name, method, reward_term=True).reward_term is False
    assert reward_term_applies(base, "ma_l1")  # Gymnasium's (x' - x) / dt task keeps it
