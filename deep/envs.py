"""Environments for the classic-control half of Figure 2, with known reward/termination functions in torch.

Every environment takes a *normalized* action ``a in [-1, 1]^A`` (the policy's units); the env scales it to
its own bounds (Pendulum torque ``2a``, CartPole force ``10a``, Acrobot torque ``a``). Model rollouts need
the reward ``r(s, a, s')`` and termination ``done(s')`` as differentiable-free torch functions of the
*observations*, plus a sampler for the start-state distribution (the paper assumes both are known, Sec. 5).
Each torch function is tested against the real environment's ``step`` outputs (tests/deep/test_envs.py).

Two families: Gymnasium's tasks with continuous actions (``pendulum``, ``cartpole``, ``acrobot``) and the
paper's, the MBBL benchmark's variants copied into the authors' code (``pendulum-mbbl``, ``cartpole-mbbl``,
``acrobot-mbbl``: 200 steps, no termination, reward of the observation before the step and the action).
MuJoCo: Gymnasium's v5 tasks (``halfcheetah``, ``hopper``, ...) and the paper's, SLBO's rllab-derived variants
(``halfcheetah-slbo``, ``hopper-slbo``, ``ant-slbo``, ``swimmer-slbo``; ``deep.envs_slbo``).

Time limits are applied by the caller (``EnvSpec.max_steps``), not by a Gymnasium ``TimeLimit`` wrapper, so
that a run's exact mid-episode state (``env.state`` plus the caller's step counter) can be checkpointed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from gymnasium.envs.classic_control.acrobot import AcrobotEnv
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

__all__ = ["EnvSpec", "ENVS", "make_spec", "ContinuousCartPoleEnv", "ContinuousAcrobotEnv",
           "NormalizedPendulumEnv", "MBBLPendulumEnv", "MBBLCartPoleEnv", "MBBLAcrobotEnv"]


class ContinuousCartPoleEnv(CartPoleEnv):
    """CartPole-v1 with a continuous force.

    ## Description
    Gymnasium's CartPole physics unchanged; only the action differs.

    ## Action Space
    ``Box(-1, 1, (1,))``: the force is ``force_mag * clip(a, -1, 1)`` (``force_mag = 10`` N), instead of
    ``±force_mag`` for the discrete actions {0, 1}.

    ## Observation Space
    As CartPole-v1: ``(x, x_dot, theta, theta_dot)``.

    ## Starting State
    Uniform in ``[-0.05, 0.05]^4``.

    ## Rewards
    ``+1`` for every step, including the one that terminates (Gymnasium's default).

    ## Episode End
    Terminates when ``|x| > 2.4`` or ``|theta| > 12°``; truncated at 500 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): continuous-action variant of Gymnasium 1.x CartPole-v1.
    """

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        base = self.force_mag
        try:  # reuse the parent's physics with the magnitude set to |force|
            self.force_mag = base * abs(a)
            out = super().step(1 if a >= 0 else 0)
        finally:
            self.force_mag = base
        return out


class ContinuousAcrobotEnv(AcrobotEnv):
    """Acrobot-v1 with a continuous torque.

    ## Description
    Gymnasium's Acrobot (book dynamics, RK4) unchanged; only the action differs.

    ## Action Space
    ``Box(-1, 1, (1,))``: the torque on the joint is ``clip(a, -1, 1)`` (the discrete env allows -1, 0, 1).

    ## Observation Space
    As Acrobot-v1: ``(cos t1, sin t1, cos t2, sin t2, t1_dot, t2_dot)``.

    ## Starting State
    Angles and velocities uniform in ``[-0.1, 0.1]``.

    ## Rewards
    ``-1`` per step, ``0`` on the step that reaches the goal.

    ## Episode End
    Terminates when ``-cos(t1) - cos(t1 + t2) > 1``; truncated at 500 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): continuous-action variant of Gymnasium 1.x Acrobot-v1.
    """

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self.AVAIL_TORQUE = [a]  # instance attribute shadows the class list for the parent's lookup
        return super().step(0)


class NormalizedPendulumEnv(PendulumEnv):
    """Pendulum-v1 taking a normalized action: torque ``2 * clip(a, -1, 1)``.

    ## Description
    Gymnasium's Pendulum-v1 unchanged except for the action units.

    ## Action Space
    ``Box(-1, 1, (1,))``; torque ``= max_torque * a`` with ``max_torque = 2``.

    ## Observation Space
    ``(cos theta, sin theta, theta_dot)``.

    ## Starting State
    ``theta ~ U[-pi, pi]``, ``theta_dot ~ U[-1, 1]``.

    ## Rewards
    ``-(theta_n^2 + 0.1 theta_dot^2 + 0.001 u^2)`` with ``theta_n`` the angle normalized to ``[-pi, pi)``,
    evaluated at the state *before* the step.

    ## Episode End
    Never terminates; truncated at 200 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): action rescaling of Gymnasium 1.x Pendulum-v1.
    """

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        return super().step(a * self.max_torque)


class MBBLPendulumEnv(PendulumEnv):
    """The paper's Pendulum: the MBBL benchmark's ``gym_pendulum`` (Wang et al., 2019), on Gymnasium's physics.

    ## Description
    Gymnasium's Pendulum-v1 dynamics (those of gym's Pendulum-v0); MBBL's reward and episode length, as in the
    authors' code (``mbbl/env/gym_env/pendulum.py``). With Gymnasium's angle convention (``theta = 0`` upright)
    the reward is highest hanging still at the bottom: a damping task, not a swing-up.

    ## Action Space
    ``Box(-1, 1, (1,))``; torque ``u = clip(2 a, -2, 2)``.

    ## Observation Space
    ``(cos theta, sin theta, theta_dot)``.

    ## Starting State
    ``theta ~ U[-pi, pi]``, ``theta_dot ~ U[-1, 1]`` (Gymnasium's reset).

    ## Rewards
    ``-(cos theta + 0.1 |sin theta| + 0.1 theta_dot^2 + 0.001 u^2)`` of the observation *before* the step:
    ``+1`` a step at rest at the bottom. A uniformly random policy scores about -203 per episode.

    ## Episode End
    Never terminates; 200 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): MBBL's ``gym_pendulum`` on Gymnasium 1.x.
    """

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        ob = self._get_obs()
        u = float(np.clip(a[0] * self.max_torque, -self.max_torque, self.max_torque))
        reward = -(ob[0] + 0.1 * abs(ob[1]) + 0.1 * ob[2] ** 2 + 0.001 * u ** 2)
        o2, _, _, truncated, info = super().step(np.array([u]))
        return o2, float(reward), False, truncated, info


class MBBLCartPoleEnv(CartPoleEnv):
    """The paper's CartPole: the MBBL benchmark's ``gym_cartpole``, on Gymnasium's physics.

    ## Description
    Gymnasium's CartPole-v1 physics with a bang-bang force and no termination, as in the authors' code
    (``mbbl/env/gym_env/cartpole.py``).

    ## Action Space
    ``Box(-1, 1, (1,))``; force ``+10`` N if ``a > 0``, else ``-10`` N.

    ## Observation Space
    As CartPole-v1: ``(x, x_dot, theta, theta_dot)``; the state keeps evolving past the old bounds.

    ## Starting State
    Uniform in ``[-0.05, 0.05]^4``.

    ## Rewards
    ``cos theta - 0.01 x^2`` of the observation *before* the step.

    ## Episode End
    Never terminates; 200 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): MBBL's ``gym_cartpole`` on Gymnasium 1.x.
    """

    def step(self, action):
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        ob = np.array(self.state, dtype=np.float32)
        reward = float(np.cos(ob[2]) - 0.01 * ob[0] ** 2)
        self.steps_beyond_terminated = None  # the episode goes on past the old bounds
        o2, _, _, truncated, info = super().step(1 if a > 0 else 0)
        self.steps_beyond_terminated = None
        return o2, reward, False, truncated, info


class MBBLAcrobotEnv(AcrobotEnv):
    """The paper's Acrobot: the MBBL benchmark's ``gym_acrobot``, on Gymnasium's physics.

    ## Description
    Gymnasium's Acrobot-v1 dynamics with a thresholded torque, a dense height reward and no termination, as
    in the authors' code (``mbbl/env/gym_env/acrobot.py``).

    ## Action Space
    ``Box(-1, 1, (1,))``; torque ``-1`` if ``a < -0.33``, ``0`` if ``a < 0.33``, else ``+1``.

    ## Observation Space
    As Acrobot-v1: ``(cos t1, sin t1, cos t2, sin t2, t1_dot, t2_dot)``.

    ## Starting State
    Angles and velocities uniform in ``[-0.1, 0.1]``.

    ## Rewards
    The tip height ``-(cos t1 + cos(t1 + t2))`` of the observation *before* the step (``-2`` hanging down).

    ## Episode End
    Never terminates; 200 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): MBBL's ``gym_acrobot`` on Gymnasium 1.x.
    """

    def step(self, action):
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        ob = self._get_ob()
        reward = float(-(ob[0] + ob[0] * ob[2] - ob[1] * ob[3]))
        o2, _, _, truncated, info = super().step(0 if a < -0.33 else 1 if a < 0.33 else 2)
        return o2, reward, False, truncated, info


# ---------------------------------------------------------------------------- torch reward / termination
# Shapes: s, s2 (B, S); a (B, A) normalized actions. Returns (B,).

def _pendulum_reward(s, a, s2):
    th = torch.atan2(s[:, 1], s[:, 0])
    u = 2.0 * a[:, 0].clamp(-1.0, 1.0)
    return -(th ** 2 + 0.1 * s[:, 2] ** 2 + 0.001 * u ** 2)


def _never_done(s2):
    return torch.zeros(s2.shape[0], dtype=torch.bool, device=s2.device)


def _cartpole_reward(s, a, s2):
    return torch.ones(s.shape[0], dtype=s.dtype, device=s.device)


def _cartpole_done(s2):
    return (s2[:, 0].abs() > 2.4) | (s2[:, 2].abs() > 12 * 2 * math.pi / 360)


def _acrobot_height(s2):
    c1, s1, c2, s2_ = s2[:, 0], s2[:, 1], s2[:, 2], s2[:, 3]
    return -c1 - (c1 * c2 - s1 * s2_)  # -cos(t1) - cos(t1 + t2)


def _acrobot_done(s2):
    return _acrobot_height(s2) > 1.0


def _acrobot_reward(s, a, s2):
    return torch.where(_acrobot_done(s2), 0.0, -1.0).to(s.dtype)


def _pendulum_mbbl_reward(s, a, s2):
    u = (2.0 * a[:, 0]).clamp(-2.0, 2.0)
    return -(s[:, 0] + 0.1 * s[:, 1].abs() + 0.1 * s[:, 2] ** 2 + 0.001 * u ** 2)


def _cartpole_mbbl_reward(s, a, s2):
    return torch.cos(s[:, 2]) - 0.01 * s[:, 0] ** 2


def _acrobot_mbbl_reward(s, a, s2):
    return -(s[:, 0] + s[:, 0] * s[:, 2] - s[:, 1] * s[:, 3])


def _uniform(g, B, low, high, dtype):
    low, high = torch.as_tensor(low, dtype=dtype), torch.as_tensor(high, dtype=dtype)
    return low + (high - low) * torch.rand((B, low.numel()), generator=g, dtype=dtype)


def _pendulum_start(B, g, dtype=torch.float32):
    x = _uniform(g, B, [-math.pi, -1.0], [math.pi, 1.0], dtype)
    return torch.stack([x[:, 0].cos(), x[:, 0].sin(), x[:, 1]], 1)


def _cartpole_start(B, g, dtype=torch.float32):
    return _uniform(g, B, [-0.05] * 4, [0.05] * 4, dtype)


def _acrobot_start(B, g, dtype=torch.float32):
    x = _uniform(g, B, [-0.1] * 4, [0.1] * 4, dtype)
    return torch.stack([x[:, 0].cos(), x[:, 0].sin(), x[:, 1].cos(), x[:, 1].sin(), x[:, 2], x[:, 3]], 1)


def _classic_state(env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, np.float64)


def _set_classic_state(env, state: np.ndarray) -> None:
    env.unwrapped.state = np.array(state, np.float64)


@dataclass(frozen=True)
class EnvSpec:
    """One environment: its constructor, dimensions, time limit and known functions in torch.

    ``position_dims``: observation dimensions the dynamics do not depend on (absolute positions, such as a
    MuJoCo runner's x); the dynamics model leaves them out of its input and still predicts their change.
    ``get_state``/``set_state``: the simulator's whole state, so that a checkpoint resumes mid-episode exactly.
    """

    name: str
    make: Callable[[], object]
    obs_dim: int
    act_dim: int
    max_steps: int
    reward_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    done_fn: Callable[[torch.Tensor], torch.Tensor]
    start_fn: Callable[..., torch.Tensor]
    position_dims: tuple[int, ...] = ()
    get_state: Callable[[object], np.ndarray] = _classic_state
    set_state: Callable[[object, np.ndarray], None] = _set_classic_state


ENVS: dict[str, EnvSpec] = {
    "pendulum": EnvSpec("pendulum", NormalizedPendulumEnv, 3, 1, 200,
                        _pendulum_reward, _never_done, _pendulum_start),
    "cartpole": EnvSpec("cartpole", ContinuousCartPoleEnv, 4, 1, 500,
                        _cartpole_reward, _cartpole_done, _cartpole_start),
    "acrobot": EnvSpec("acrobot", ContinuousAcrobotEnv, 6, 1, 500,
                       _acrobot_reward, _acrobot_done, _acrobot_start),
    # the paper's tasks (MBBL variants, Wang et al., 2019): 200 steps, no termination, reward of (s, a)
    "pendulum-mbbl": EnvSpec("pendulum-mbbl", MBBLPendulumEnv, 3, 1, 200,
                             _pendulum_mbbl_reward, _never_done, _pendulum_start),
    "cartpole-mbbl": EnvSpec("cartpole-mbbl", MBBLCartPoleEnv, 4, 1, 200,
                             _cartpole_mbbl_reward, _never_done, _cartpole_start),
    "acrobot-mbbl": EnvSpec("acrobot-mbbl", MBBLAcrobotEnv, 6, 1, 200,
                            _acrobot_mbbl_reward, _never_done, _acrobot_start),
}


# ---------------------------------------------------------------------------- MuJoCo (Gymnasium v5)
# Observations keep the absolute position (exclude_current_positions_from_observation=False), so the forward
# reward (x' - x) / dt is a function of (s, s'). Ant runs without contact forces in its observation and without
# the contact cost, which they would be needed for.
_MUJOCO = {  # name: (Gymnasium id, make kwargs, obs_dim, act_dim, max_steps, position dims); dt is in each reward
    "halfcheetah": ("HalfCheetah-v5", {"exclude_current_positions_from_observation": False}, 18, 6, 1000, (0,)),
    "swimmer": ("Swimmer-v5", {"exclude_current_positions_from_observation": False}, 10, 2, 1000, (0, 1)),
    "hopper": ("Hopper-v5", {"exclude_current_positions_from_observation": False}, 12, 3, 1000, (0,)),
    "ant": ("Ant-v5", {"exclude_current_positions_from_observation": False, "include_cfrc_ext_in_observation": False,
                       "contact_cost_weight": 0.0}, 29, 8, 1000, (0, 1)),
    "reacher": ("Reacher-v5", {}, 10, 2, 50, ()),
}


def _mujoco_warning(message: str) -> None:
    warnings.warn(f"MuJoCo: {message.strip()}", RuntimeWarning, stacklevel=2)


def quiet_mujoco_log() -> None:
    """Route MuJoCo's warnings to Python's ``warnings`` instead of a ``MUJOCO_LOG.TXT`` in the current folder."""
    import mujoco

    mujoco.set_mju_user_warning(_mujoco_warning)


def _mujoco_make(name: str):
    def make():
        import gymnasium as gym

        quiet_mujoco_log()

        env_id, kwargs = _MUJOCO[name][:2]
        try:
            return gym.make(env_id, max_episode_steps=None, disable_env_checker=True, **kwargs).unwrapped
        except (gym.error.DependencyNotInstalled, ImportError) as e:
            raise ValueError(f"env {name!r} needs MuJoCo: pip install -e '.[mujoco]' ({e})") from None

    return make


def _mujoco_state(env) -> np.ndarray:
    import mujoco

    u = env.unwrapped
    state = np.empty(mujoco.mj_stateSize(u.model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(u.model, u.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    return state  # qpos, qvel, activations, warm-start accelerations, time...: an exact continuation


def _set_mujoco_state(env, state: np.ndarray) -> None:
    import mujoco

    u = env.unwrapped
    mujoco.mj_setState(u.model, u.data, np.asarray(state, np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(u.model, u.data)


class _ResetPool:
    """Model rollouts start from states of ``env.reset()``: a pool of resets with seeds 0..n-1, drawn from with
    the rollout's generator (a pool, because rollouts restart columns at every step)."""

    def __init__(self, name: str, n: int = 1024):
        self.name, self.n, self.pool = name, n, None

    def __call__(self, B, g, dtype=torch.float32):
        if self.pool is None:
            env = _mujoco_make(self.name)()
            self.pool = torch.tensor(np.array([env.reset(seed=i)[0] for i in range(self.n)]), dtype=torch.float32)
        return self.pool[torch.randint(self.n, (B,), generator=g)].to(dtype)


def _sq(a):
    return a.clamp(-1.0, 1.0).pow(2).sum(-1)


def _forward(s, s2, dt):
    return (s2[:, 0] - s[:, 0]) / dt


def _halfcheetah_reward(s, a, s2):
    return _forward(s, s2, 0.05) - 0.1 * _sq(a)


def _swimmer_reward(s, a, s2):
    return _forward(s, s2, 0.04) - 1e-4 * _sq(a)


def _hopper_healthy(s2):
    # z = qpos[1] > 0.7, |angle = qpos[2]| < 0.2, and every other coordinate within (-100, 100); the observation
    # clips velocities to [-10, 10], so the last test reads positions only in practice
    return (s2[:, 1] > 0.7) & (s2[:, 2].abs() < 0.2) & (s2[:, 2:].abs() < 100).all(-1)


def _hopper_reward(s, a, s2):
    return _hopper_healthy(s2).to(s.dtype) + _forward(s, s2, 0.008) - 1e-3 * _sq(a)


def _hopper_done(s2):
    return ~_hopper_healthy(s2)


def _ant_healthy(s2):
    return torch.isfinite(s2).all(-1) & (s2[:, 2] >= 0.2) & (s2[:, 2] <= 1.0)


def _ant_reward(s, a, s2):
    # Gymnasium measures x at the torso body, one substep behind qpos[0]: |error| up to about 0.1 (tested)
    return _ant_healthy(s2).to(s.dtype) + _forward(s, s2, 0.05) - 0.5 * _sq(a)


def _ant_done(s2):
    return ~_ant_healthy(s2)


def _reacher_reward(s, a, s2):
    # the code's control weight is 1 (its docstring says 0.1); the distance is that of the next state
    return -s2[:, 8:10].norm(dim=-1) - _sq(a)


_MUJOCO_FNS = {"halfcheetah": (_halfcheetah_reward, _never_done), "swimmer": (_swimmer_reward, _never_done),
               "hopper": (_hopper_reward, _hopper_done), "ant": (_ant_reward, _ant_done),
               "reacher": (_reacher_reward, _never_done)}

for _name, (_, _, _S, _A, _T, _pos) in _MUJOCO.items():
    ENVS[_name] = EnvSpec(_name, _mujoco_make(_name), _S, _A, _T, *_MUJOCO_FNS[_name], _ResetPool(_name),
                          position_dims=_pos, get_state=_mujoco_state, set_state=_set_mujoco_state)


# ---------------------------------------------------------------------------- the paper's MuJoCo tasks
# SLBO's rllab-derived HalfCheetah, Hopper, Ant and Swimmer (halfcheetah-slbo, ...): deep/envs_slbo.py
from deep.envs_slbo import slbo_specs as _slbo_specs  # noqa: E402  (it builds EnvSpecs with EnvSpec, above)

ENVS.update(_slbo_specs())


def make_spec(name: str) -> EnvSpec:
    """Look up an environment by name; ``ValueError`` listing the valid names otherwise."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; valid: {sorted(ENVS)}")
    return ENVS[name]
