"""The paper's MuJoCo tasks: SLBO's rllab-derived HalfCheetah, Hopper, Ant and Swimmer on mujoco 4.0.0.

The authors' code (nirbhayjm/va_slbo @ da9b45b, a clone of facebookresearch/slbo @ c963d6e) builds its
MuJoCo tasks in ``slbo/partial_envs.py``, whose later imports rebind ``HalfCheetah``, ``Hopper``, ``Ant`` and
``Swimmer`` to the classes of ``slbo/envs/mujoco/*_env.py``: subclasses of rllab's envs
(rll/rllab @ b3a2899, ``rllab/envs/mujoco/*_env.py`` and ``mujoco_env.py``, the commit va_slbo's README pins)
that replace the observation and, for Ant, the step. This module re-implements their behaviour; no code is
copied (SLBO and va_slbo are CC BY-NC 4.0). The MuJoCo models are rllab's ``vendor/mujoco_models/*.xml``
(MIT, ``assets/slbo/LICENSE-rllab``), shipped in ``deep/assets/slbo`` with their provenance and the changes
needed to load them in mujoco 4.0.0 (Hopper: global to local coordinates; Swimmer: ``collision`` option
replaced by disabling contacts) in each file's header.

What is reproduced, as rllab's ``MujocoEnv`` and SLBO's subclasses do it:

* step: ``ctrl = lo + (a + 1) (hi - lo) / 2`` for the policy's action ``a`` (SLBO's ``Runner(rescale_action=True)``;
  not clipped: MuJoCo clamps ``ctrl`` to ``ctrlrange``), ``frame_skip`` calls of ``mj_step`` (the XML's custom
  numeric ``frame_skip``, else 1), then ``mj_forward``; observation, reward and termination read the state
  after the step;
* reset: ``qpos = init_qpos + 0.01 N(0, 1)``, ``qvel = 0.1 N(0, 1)``, with ``init_qpos`` the XML's custom
  numeric ``init_qpos`` where present (Ant), else ``qpos0``;
* the torso's "com" is ``subtree_com`` and its "comvel" the subtree's centre-of-mass velocity (rllab's
  ``body_comvels``: mass-weighted body velocities at their centres of mass, summed up the tree, which is
  MuJoCo's ``subtree_linvel``; tests/deep/test_envs_slbo.py recomputes rllab's sum).

========================  =====  ==================================================  =========================
task (XML, dt)            obs    layout (index: quantity)                            reward r(s, a, s') and end
========================  =====  ==================================================  =========================
``halfcheetah-slbo``      24     0-8 qpos (0 rootx, 1 rootz, 2 rooty pitch,          ``s'[21] - 0.05 |clip(a)|^2``;
(half_cheetah.xml,               3-8 bthigh bshin bfoot fthigh fshin ffoot);         never ends
dt 0.01 = 0.01 x 1)              9-17 qvel (same order); 18-20 torso subtree com
                                 xyz; 21-23 its velocity (21 forward)
``hopper-slbo``           18     0-5 qpos (0 rootz height, 1 rootx, 2 rooty pitch,   ``s'[15] + 1 - 0.005 |a|^2``;
(hopper.xml,                     3 thigh, 4 leg, 5 foot); 6-11 qvel; 12-14 com;      ends unless ``s'[:12]`` finite,
dt 0.02 = 0.02 x 1)              15-17 com velocity (15 forward)                     all ``|s'[3:12]| < 100``,
                                                                                     ``s'[0] > 0.7``,
                                                                                     ``|s'[2]| < 0.2``
``ant-slbo``              44     0-14 qpos (0-2 torso xyz, 3-6 quaternion wxyz,      ``s'[41] - 0.005 |a|^2 + 0.05``;
(ant.xml,                        7-14 hip_1 ankle_1 ... hip_4 ankle_4); 15-28 qvel   ends unless ``s'[:29]``
dt 0.02 = 0.02 x 1)              (15-20 free joint); 29-37 torso rotation matrix     finite and
                                 (row-major); 38-40 com; 41-43 com velocity          ``0.2 <= s'[2] <= 1``
                                 (41 forward); no contact forces
``swimmer-slbo``          16     0-4 qpos (0 slider1 x, 1 slider2 y, 2 rot heading,  ``s'[13] - 0.005 |a|^2``;
(swimmer.xml,                    3 rot2, 4 rot3); 5-9 qvel; 10-12 com;               never ends
dt 0.05 = 0.001 x 50)            13-15 com velocity (13 forward)
========================  =====  ==================================================  =========================

``a`` is the policy's action, in ``[-1, 1]`` at the actuator limits: ``|a|^2`` is rllab's
``|u / ((hi - lo) / 2)|^2`` (Hopper ``u / 200``, Ant ``u / 150``, Swimmer ``u / 50``, HalfCheetah ``u``); only
HalfCheetah clips it in the cost (rllab's ``half_cheetah_env.py``). Episodes last 1000 steps (the authors'
``configs/env_tingwu/gym_{cheetah,hopper,ant,swimmer}.yml``, ``runner.max_steps``), applied by the caller.
The forward reward is the next observation's centre-of-mass velocity, as in SLBO's ``mb_step``. Two
differences from ``mb_step``, which scores the authors' model rollouts: its Hopper test is ``s'[3:12] < 100``
without ``abs`` and neither its Hopper nor its Ant test checks finiteness; the functions here follow the real
env's ``step`` (which the authors' ``verify`` only compares on random transitions that never reach -100).
Ant's contact cost is 0, as in SLBO's override. The authors' fifth MuJoCo task, Reacher, is MBBL's
(``slbo/envs/bm_envs/gym/reacher.py``) and is not built here (``reacher`` in ``deep.envs`` is Gymnasium's
Reacher-v5). The physics is mujoco 4.0.0's, not rllab's MuJoCo 1.31, so trajectories differ from the authors'.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Callable

import gymnasium
import numpy as np
import torch

__all__ = ["ASSETS", "RllabMujocoEnv", "SLBOHalfCheetahEnv", "SLBOHopperEnv", "SLBOAntEnv", "SLBOSwimmerEnv",
           "TASKS", "slbo_specs"]

#: the shipped MuJoCo models and rllab's licence
ASSETS = Path(__file__).resolve().parent / "assets" / "slbo"


class RllabMujocoEnv(gymnasium.Env):
    """rllab's ``MujocoEnv`` on mujoco 4.0.0 with SLBO's observation ``qpos, qvel, [extra], com, comvel``.

    ## Action Space
    ``Box(-1, 1, (nu,))``: ``ctrl = lo + (a + 1) (hi - lo) / 2``, clamped by MuJoCo to ``ctrlrange``.

    ## Observation Space
    ``Box(-inf, inf, (obs_dim,), float64)``; see the module's table.

    ## Starting State
    ``qpos = init_qpos + 0.01 N(0, I)``, ``qvel = 0.1 N(0, I)``.

    Subclasses set ``xml`` and define ``reward(a)`` and ``terminated()`` on the current (post-step) state.
    """

    metadata = {"render_modes": []}
    xml: str = ""

    def __init__(self):
        import mujoco

        from deep.envs import quiet_mujoco_log

        quiet_mujoco_log()  # MuJoCo's warnings as Python warnings, no MUJOCO_LOG.TXT
        self._mj = mujoco
        with warnings.catch_warnings():  # half_cheetah.xml's settotalmass: deprecated, still read by 4.0.0
            warnings.filterwarnings("ignore", message=".*settotalmass", category=RuntimeWarning)
            self.model = mujoco.MjModel.from_xml_path(str(ASSETS / self.xml))
        self.data = mujoco.MjData(self.model)
        names = {self.model.numeric(i).name for i in range(self.model.nnumeric)}
        self.frame_skip = int(self.model.numeric("frame_skip").data[0]) if "frame_skip" in names else 1
        self.init_qpos = (np.array(self.model.numeric("init_qpos").data, np.float64) if "init_qpos" in names
                          else self.model.qpos0.copy())
        self.dt = self.model.opt.timestep * self.frame_skip
        self.torso = self.model.body("torso").id
        self.ctrl_lo, self.ctrl_hi = self.model.actuator_ctrlrange.T.copy()
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        self._reset_state(np.zeros(self.model.nq), np.zeros(self.model.nv))
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, self._get_obs().shape, np.float64)

    # ---------------------------------------------------------------- simulator
    def _reset_state(self, noise_qpos: np.ndarray, noise_qvel: np.ndarray) -> None:
        self._mj.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.init_qpos + noise_qpos
        self.data.qvel[:] = noise_qvel
        self._mj.mj_forward(self.model, self.data)

    def com(self) -> np.ndarray:
        """The torso subtree's centre of mass (rllab's ``get_body_com("torso")``)."""
        return self.data.subtree_com[self.torso].copy()

    def comvel(self) -> np.ndarray:
        """The torso subtree's centre-of-mass velocity (rllab's ``get_body_comvel("torso")``)."""
        self._mj.mj_subtreeVel(self.model, self.data)
        return self.data.subtree_linvel[self.torso].copy()

    def _extra_obs(self) -> list[np.ndarray]:
        return []

    def _get_obs(self) -> np.ndarray:
        d = self.data
        return np.concatenate([d.qpos, d.qvel, *self._extra_obs(), self.com(), self.comvel()])

    def state(self) -> np.ndarray:
        """rllab's ``_state``: ``qpos, qvel``."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    # ---------------------------------------------------------------- Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        nq, nv = self.model.nq, self.model.nv
        qpos_noise = 0.01 * self.np_random.normal(size=nq)
        self._reset_state(qpos_noise, 0.1 * self.np_random.normal(size=nv))
        return self._get_obs(), {}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(self.model.nu)
        self.data.ctrl[:] = self.ctrl_lo + (a + 1.0) * 0.5 * (self.ctrl_hi - self.ctrl_lo)
        for _ in range(self.frame_skip):
            self._mj.mj_step(self.model, self.data)
        self._mj.mj_forward(self.model, self.data)
        obs = self._get_obs()
        return obs, float(self.reward(a)), bool(self.terminated()), False, {}

    def reward(self, a: np.ndarray) -> float:
        raise NotImplementedError

    def terminated(self) -> bool:
        return False


class SLBOHalfCheetahEnv(RllabMujocoEnv):
    """SLBO's HalfCheetah (``slbo/envs/mujoco/half_cheetah_env.py`` on rllab's ``half_cheetah_env.py``).

    ## Description
    rllab's ``half_cheetah.xml`` (dt 0.01, no frame skip); action, observation and start as
    :class:`RllabMujocoEnv` (24 observations: the module's table).

    ## Rewards
    ``comvel_x - 0.05 |clip(a, -1, 1)|^2`` (rllab: ``-(0.5 * 0.1 * |a|^2 - comvel_x)``).

    ## Episode End
    Never terminates; 1000 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): SLBO's class on mujoco 4.0.0.
    """

    xml = "half_cheetah.xml"

    def reward(self, a):
        return self.comvel()[0] - 0.05 * np.sum(np.square(np.clip(a, -1.0, 1.0)))


class SLBOHopperEnv(RllabMujocoEnv):
    """SLBO's Hopper (``slbo/envs/mujoco/hopper_env.py`` on rllab's ``hopper_env.py``, alive 1, ctrl 0.01).

    ## Description
    rllab's ``hopper.xml`` ported to local coordinates (dt 0.02, RK4); qpos is ``rootz, rootx, rooty, ...``,
    so ``s[0]`` is the height. 18 observations (the module's table).

    ## Rewards
    ``comvel_x + 1 - 0.5 * 0.01 |a|^2``, ``a = u / 200``; the alive bonus is paid on the terminating step too.

    ## Episode End
    Terminates unless ``qpos, qvel`` are finite, ``|qpos[3:], qvel| < 100``, the height ``qpos[0] > 0.7``
    and the pitch ``|qpos[2]| < 0.2``; 1000 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): SLBO's class on mujoco 4.0.0.
    """

    xml = "hopper.xml"

    def reward(self, a):
        return self.comvel()[0] + 1.0 - 0.005 * np.sum(np.square(a))

    def terminated(self):
        s = self.state()
        ok = np.isfinite(s).all() and (np.abs(s[3:]) < 100).all() and s[0] > 0.7 and abs(s[2]) < 0.2
        return not ok


class SLBOAntEnv(RllabMujocoEnv):
    """SLBO's Ant (``slbo/envs/mujoco/ant_env.py``: rllab's ``ant_env.py`` without contact forces and cost).

    ## Description
    rllab's ``ant.xml`` (dt 0.02, RK4), started from its custom numeric ``init_qpos`` (height 0.55).

    ## Observation Space
    ``qpos (15), qvel (14), torso rotation matrix (9), com (3), comvel (3)``.

    ## Rewards
    ``comvel_x - 0.5 * 1e-2 |a|^2 + 0.05``, ``a = u / 150``.

    ## Episode End
    Terminates unless ``qpos, qvel`` are finite and ``0.2 <= qpos[2] <= 1``; 1000 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): SLBO's class on mujoco 4.0.0.
    """

    xml = "ant.xml"

    def _extra_obs(self):
        return [self.data.xmat[self.torso].copy()]

    def reward(self, a):
        return self.comvel()[0] - 0.005 * np.sum(np.square(a)) + 0.05

    def terminated(self):
        s = self.state()
        return not (np.isfinite(s).all() and 0.2 <= s[2] <= 1.0)


class SLBOSwimmerEnv(RllabMujocoEnv):
    """SLBO's Swimmer (``slbo/envs/mujoco/swimmer_env.py`` on rllab's ``swimmer_env.py``, ctrl 0.01).

    ## Description
    rllab's ``swimmer.xml`` with contacts disabled (as its ``collision="predefined"`` had them); 50 Euler steps
    of 0.001 per step (dt 0.05), viscous fluid. 16 observations (the module's table).

    ## Rewards
    ``comvel_x - 0.5 * 0.01 |a|^2``, ``a = u / 50``.

    ## Episode End
    Never terminates; 1000 steps (by the caller).

    ## Arguments
    None.

    ## Version History
    v0 (this package): SLBO's class on mujoco 4.0.0.
    """

    xml = "swimmer.xml"

    def reward(self, a):
        return self.comvel()[0] - 0.005 * np.sum(np.square(a))


# ---------------------------------------------------------------------------- torch reward / termination
# Shapes: s, s2 (B, S) observations; a (B, A) policy actions. Returns (B,). The forward reward is the next
# observation's com velocity, so it reads s2 only.

def _halfcheetah_reward(s, a, s2):
    return s2[:, 21] - 0.05 * a.clamp(-1.0, 1.0).pow(2).sum(-1)


def _hopper_reward(s, a, s2):
    return s2[:, 15] + 1.0 - 0.005 * a.pow(2).sum(-1)


@functools.lru_cache(maxsize=None)
def _hopper_bounds(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Bounds on |qpos, qvel| of Hopper's alive check: z and x only finite, pitch 0.2, the rest 100 (in ``dtype``,
    as the scalars of a comparison are)."""
    return torch.tensor([float("inf"), float("inf"), 0.2] + [100.0] * 9, dtype=dtype, device=device)


def _hopper_done(s2):
    # one comparison also checks finiteness (NaN and inf fail |x| < bound); a model rollout calls this every step
    return ~((s2[:, :12].abs() < _hopper_bounds(s2.device, s2.dtype)).all(-1) & (s2[:, 0] > 0.7))


def _ant_reward(s, a, s2):
    return s2[:, 41] - 0.005 * a.pow(2).sum(-1) + 0.05


def _ant_done(s2):
    ok = torch.isfinite(s2[:, :29]).all(-1) & (s2[:, 2] >= 0.2) & (s2[:, 2] <= 1.0)
    return ~ok


def _swimmer_reward(s, a, s2):
    return s2[:, 13] - 0.005 * a.pow(2).sum(-1)


def _never_done(s2):
    return torch.zeros(s2.shape[0], dtype=torch.bool, device=s2.device)


class _ResetPool:
    """Model rollouts start from states of ``env.reset()``: a pool of resets with seeds 0..n-1, drawn from with
    the rollout's generator (as ``deep.envs`` does for Gymnasium's MuJoCo tasks)."""

    def __init__(self, make: Callable[[], RllabMujocoEnv], n: int = 1024):
        self.make, self.n, self.pool = make, n, None

    def __call__(self, B, g, dtype=torch.float32):
        if self.pool is None:
            env = self.make()
            self.pool = torch.tensor(np.array([env.reset(seed=i)[0] for i in range(self.n)]), dtype=torch.float32)
        return self.pool[torch.randint(self.n, (B,), generator=g)].to(dtype)


def _maker(cls: type[RllabMujocoEnv]) -> Callable[[], RllabMujocoEnv]:
    def make():
        try:
            import mujoco  # noqa: F401
        except ImportError as e:
            raise ValueError(f"{cls.__name__} needs MuJoCo: pip install -e '.[mujoco]' ({e})") from None
        return cls()

    return make


#: name -> (env class, obs_dim, act_dim, position dims, reward_fn, done_fn). Position dims: the absolute
#: horizontal coordinates (root x, y and the com's x, y), which the dynamics do not depend on.
TASKS = {
    "halfcheetah-slbo": (SLBOHalfCheetahEnv, 24, 6, (0, 18), _halfcheetah_reward, _never_done),
    "hopper-slbo": (SLBOHopperEnv, 18, 3, (1, 12), _hopper_reward, _hopper_done),
    "ant-slbo": (SLBOAntEnv, 44, 8, (0, 1, 38, 39), _ant_reward, _ant_done),
    "swimmer-slbo": (SLBOSwimmerEnv, 16, 2, (0, 1, 10, 11), _swimmer_reward, _never_done),
}

#: episode length of every task (the authors' configs/env_tingwu/gym_*.yml, runner.max_steps and plan.max_steps)
MAX_STEPS = 1000


def slbo_specs() -> dict:
    """``deep.envs.EnvSpec`` of every task, keyed by name (``deep.envs`` registers them in ``ENVS``)."""
    from deep.envs import EnvSpec, _mujoco_state, _set_mujoco_state

    out = {}
    for name, (cls, S, A, pos, reward_fn, done_fn) in TASKS.items():
        make = _maker(cls)
        out[name] = EnvSpec(name, make, S, A, MAX_STEPS, reward_fn, done_fn, _ResetPool(make), position_dims=pos,
                            get_state=_mujoco_state, set_state=_set_mujoco_state)
    return out
