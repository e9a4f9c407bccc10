"""Tabular value-aware MBRL (Modhe et al., 2021, Algorithm 2; Algorithm 1 for MLE) with A2C, on the gridworld.

One run, top to bottom (:func:`train`)::

    for each iteration:
        D <- D + {n real steps by pi}                                    # Alg. 2 line 4 (the Gymnasium env)
        for K_model steps:                                               # lines 5-9
            logits <- Adam step on objective(logits, W, D)               # line 6, W = V + u/gamma held fixed
            every `value_refresh_every` steps: refresh V in the model    # lines 7-8 (critic or exact V^pi)
        for K_policy steps:                                              # lines 10-13
            B rollouts of T steps in M_phi from p0; A2C update of pi (and of the critic)
        log: real steps, real return, exact diagnostics

* Model ``P_phi(s'|s, a) = softmax(logits[s, a])``, logits ``(S, A, S)`` over the gridworld's cells. The
  objectives and their closed-form gradients come from :mod:`tabular.objectives` (``SAMPLED_OBJECTIVES``);
  the expectation over predicted states is the exact sum over states (Sec. 4.1).
* Known reward function ``r(s, s')`` (:func:`gridworld.transition_reward`) scored on the model's
  predicted next state, and known episode end: ``M_phi`` has ``R_phi(s, a) = E_{P_phi} r(s, .)`` and the
  stationary twin's ``p0``, ``gamma`` and absorbing goal (its goal rows are the identity); only the dynamics are
  learned. Because ``r`` depends on ``s'``, the value-aware objectives compare the one-step target
  ``r(s, s') + gamma V(s')``: they are called with ``W = V + u / gamma`` (:func:`value_target`), ``u`` the
  next-state part of ``r`` (the rest of ``r`` does not depend on ``s'`` and cancels in every residual).
* Policy: tabular softmax ``pi = softmax(theta)`` ``(S, A)``. A2C with n-step bootstrapped returns and an
  entropy bonus. ``value="learned"``: a tabular critic ``v (S,)`` fitted on model rollouts (the paper's
  ``V_theta``); ``value="exact"``: ``V^pi_{M_phi}`` from :func:`tabular.policy_evaluation` on the learned
  ``TabularMDP`` (separates objective effects from critic error).
* Diagnostics (exact, every iteration), with ``M*`` the stationary twin and ``V = V^pi_{M_phi}``:
  ``gap = |J_{M*}(pi) - J_{M_phi}(pi)|``; ``ema = E_{d_M*} E_{P_M*}[A_{M_phi}]`` (Eq. 2's ``A`` with ``V`` alone,
  :func:`tabular.expected_model_advantage`) and ``reward_term`` (Lemma 1's reward-difference term, nonzero
  because ``R_phi`` follows the model), which add up to ``J_M* - J_M_phi`` (:func:`tabular.simulation_lemma`);
  every objective's exact value ``exact_<name>`` at ``W`` (:data:`tabular.objectives.EXACT_OBJECTIVES`); and
  ``lemma1_residual = gap - gamma * exact_ma_direct_l1`` (zero up to round-off: Lemma 1 for the one-step target).
* Randomness: one ``numpy.random.Generator`` per run seeded from ``RunConfig.seed``. Checkpoints (``np.savez``)
  hold everything a bit-identical resume needs, the generator state included.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from lab.rundir import RunDir, atomic_write_bytes, execute

from tabular.advantage import expected_model_advantage, mean_model_advantage, simulation_lemma
from tabular.mdp import TabularMDP, softmax_policy
from tabular.objectives import EXACT_OBJECTIVES, SAMPLED_OBJECTIVES, model_probs
from tabular.sampling import RowSampler, TransitionBatch
from tabular.solve import evaluate, policy_evaluation
from .config import METHODS, OPTIMIZERS, VALUE_MODES, RunConfig, identity_of
from .env import ENV_IDS
from .layout import GridLayout, make_twin

__all__ = [
    "METHODS",
    "VALUE_MODES",
    "OPTIMIZERS",
    "RunConfig",
    "learned_mdp",
    "value_target",
    "evaluate_return",
    "exact_return",
    "final_cells",
    "FINAL_CELLS",
    "FINAL_MODEL",
    "Trainer",
    "train",
    "run",
]

EXPERIMENT = "gridworld"
#: per-cell diagnostics of the final policy and model, written next to metrics.csv when a run finishes
FINAL_CELLS = "final_cells.csv"
#: the final model logits and policy logits (``np.savez_compressed``), read by ``modeladv explain --run``
FINAL_MODEL = "final_model.npz"


# ---- pieces -------------------------------------------------------------------------------------------
def learned_mdp(logits: np.ndarray, twin: TabularMDP, reward: np.ndarray) -> TabularMDP:
    """``M_phi``: ``softmax(logits)`` dynamics scored with the known reward ``reward[s, s']`` ``(S, S)`` (so
    ``R_phi(s, a) = sum_s' P_phi(s'|s, a) r(s, s')``), and the twin's ``p0``, ``gamma`` and absorbing goal."""
    P = model_probs(logits)
    for s in np.flatnonzero(twin.terminal):
        P[s] = 0.0
        P[s, :, s] = 1.0
    R = np.broadcast_to(reward[:, None, :], P.shape)
    return TabularMDP(P, R, twin.p0, twin.gamma, terminal=twin.terminal)


def value_target(V: np.ndarray, arrival: np.ndarray, gamma: float) -> np.ndarray:
    """``W = V + u / gamma``: the value the objectives compare, so that ``gamma (W(s2) - E_phi W)`` is the
    model advantage of the one-step target ``r(s, s2) + gamma V(s2)`` (Eq. 2 with the reward of the predicted
    next state included; ``u`` = :attr:`GridLayout.arrival_reward`, the next-state part of ``r``). With it
    Lemma 1 stays exact: ``gamma * exact ma_direct_l1 = |J_M* - J_M_phi|`` for ``V = V^pi_{M_phi}``."""
    return V + arrival / gamma


class _Adam:
    """Adam (Kingma & Ba, 2015) on one array; ``sgd`` when ``adam=False``."""

    def __init__(self, shape, lr: float, adam: bool = True, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.adam, self.b1, self.b2, self.eps = lr, adam, b1, b2, eps
        self.m, self.v, self.n = np.zeros(shape), np.zeros(shape), 0

    def step(self, x: np.ndarray, g: np.ndarray) -> None:
        """In place: ``x -= lr * mhat / (sqrt(vhat) + eps)``, bias-corrected moments (the efficient form of
        Kingma & Ba's Sec. 2)."""
        if not self.adam:
            x -= self.lr * g
            return
        from tabular import _kernels

        if not (x.flags.c_contiguous and self.m.flags.c_contiguous and self.v.flags.c_contiguous):
            raise ValueError("Adam updates C-contiguous arrays in place")
        self.n += 1
        c2 = np.sqrt(1 - self.b2 ** self.n)  # sqrt(vhat) + eps, times sqrt(1 - b2^n)
        _kernels.adam_step_numba(x.reshape(-1), g.reshape(-1), self.m.reshape(-1), self.v.reshape(-1), self.b1,
                                 self.b2, self.eps, c2, self.lr * c2 / (1 - self.b1 ** self.n))


class _Rollout:
    """``B`` rollouts of ``T`` steps from ``start`` (a state or ``(B,)`` states) in a model given by its sampler
    (:func:`_model_sampler`) scored by ``reward[s, s']``: ``s, a, r, alive`` ``(T, B)`` and the last state."""

    def __init__(self, model: RowSampler, reward: np.ndarray, terminal: np.ndarray, start: int, pi: np.ndarray,
                 B: int, T: int, rng: np.random.Generator):
        from tabular import _kernels

        start = np.broadcast_to(np.asarray(start, dtype=np.int64), (B,))
        u = rng.random((T, 2, B))  # per step: B action draws, then B next-state draws
        self.s, self.a, self.r, self.alive, self.last, self.last_alive = _kernels.rollout_numba(
            model.table, RowSampler(pi).table, pi.shape[1], np.ascontiguousarray(start), reward, terminal, u)

    def returns(self, V: np.ndarray, gamma: float) -> np.ndarray:
        """n-step returns ``G_t = r_t + gamma G_{t+1}``, bootstrapped with ``V`` at the last state, ``(T, B)``."""
        from tabular import _kernels

        return _kernels.returns_numba(self.r, self.alive, self.last, self.last_alive, np.asarray(V, float), float(gamma))


def _model_sampler(M: TabularMDP) -> RowSampler:
    """A sampler of ``P(.|s, a)`` over the rows ``s * A + a``; built once per model, shared by its rollouts."""
    return RowSampler(M.P.reshape(M.S * M.A, M.S))


def _critic_step(v: np.ndarray, s: np.ndarray, G: np.ndarray, lr: float) -> None:
    """Tabular critic: ``v[s] += lr (mean of the returns observed from s - v[s])`` for every visited ``s``."""
    S = len(v)
    n = np.bincount(s, minlength=S)
    tot = np.bincount(s, weights=G, minlength=S)
    seen = n > 0
    v[seen] += lr * (tot[seen] / n[seen] - v[seen])


def _a2c_grad(pi: np.ndarray, s: np.ndarray, a: np.ndarray, adv: np.ndarray, B: int, ent: float) -> np.ndarray:
    """A2C gradient on softmax logits ``(S, A)``: ``(1/B) sum_i adv_i (e_{a_i} - pi(s_i)) + ent * dH``."""
    S, A = pi.shape
    W_sa = np.bincount(s * A + a, weights=adv, minlength=S * A).reshape(S, A)
    W_s = np.bincount(s, weights=adv, minlength=S)
    g = W_sa - W_s[:, None] * pi
    if ent:
        n = np.bincount(s, minlength=S)[:, None]
        logp = np.log(np.maximum(pi, 1e-300))
        H = -(pi * logp).sum(axis=1, keepdims=True)
        g += ent * n * (-pi * (logp + H))  # dH/dtheta, per visit
    return g / B


def exact_return(layout: GridLayout, pi: np.ndarray, tol: float = 1e-12) -> float:
    """Exact expected undiscounted return of the *real* (time-decayed, truncated) environment under ``pi``.

    Forward recursion over ``t`` of the cell distribution (the time-augmented twin, without building it).
    """
    nxt, dense, arrive = layout.tables
    C = layout.n_cells
    r_dense, p_arrive = (pi * dense).sum(axis=1), (pi * arrive).sum(axis=1)
    rows, cols = np.repeat(np.arange(C), 4), nxt.ravel()
    x = np.zeros(C)
    x[layout.start] = 1.0
    total = 0.0
    for t in range(1, layout.max_steps + 1):
        x[layout.goal] = 0.0  # absorbed: no more reward
        if x.sum() < tol:
            break
        total += float(x @ r_dense) + float(x @ p_arrive) * float(layout.bonus(t))
        x = np.bincount(cols, weights=(x[:, None] * pi).ravel(), minlength=C)
    return total


def evaluate_return(layout: GridLayout, pi: np.ndarray, episodes: int, rng: np.random.Generator) -> float:
    """Mean undiscounted return of ``episodes`` real episodes under ``pi`` (vectorized; the dynamics and reward
    tables of :attr:`GridLayout.tables`, i.e. the Gymnasium environment's, with its decay and truncation)."""
    nxt, dense, arrive = layout.tables
    s = np.full(episodes, layout.start)
    ret = np.zeros(episodes)
    alive = np.ones(episodes, dtype=bool)
    policy = RowSampler(pi)
    for t in range(1, layout.max_steps + 1):
        if not alive.any():
            break
        a = policy.sample(s, rng)
        ret += np.where(alive, dense[s, a] + arrive[s, a] * layout.bonus(t), 0.0)
        s = np.where(alive, nxt[s, a], s)
        alive &= s != layout.goal
    return float(ret.mean())


def _diagnostics(twin: TabularMDP, M_phi: TabularMDP, logits: np.ndarray, pi: np.ndarray,
                 arrival: np.ndarray) -> dict:
    """Exact diagnostics of the learned model ``M_phi`` against the stationary twin ``M*`` for ``pi``."""
    ev_true, ev_model = evaluate(twin, pi), evaluate(M_phi, pi)
    W = value_target(ev_model.V, arrival, twin.gamma)  # from V^pi_{M_phi}
    lemma = simulation_lemma(twin, M_phi, pi)
    out = {"J_true": ev_true.J, "J_model": ev_model.J, "gap": abs(ev_true.J - ev_model.J),
           "ema": expected_model_advantage(twin, M_phi, pi), "reward_term": lemma.reward_term}
    for name in METHODS:
        out[f"exact_{name}"] = EXACT_OBJECTIVES[name](twin, pi, logits, W)[0]
    # Lemma 1 self-check: gamma * exact direct L1 (one-step target, V = V^pi_{M_phi}) = gap
    out["lemma1_residual"] = out["gap"] - twin.gamma * out["exact_ma_direct_l1"]
    # model error on the states pi visits: E_{d_M*, pi} ||P_phi(s, a) - P*(s, a)||_1
    diff = np.abs(M_phi.dense_P() - twin.dense_P()).sum(axis=2)
    out["model_l1"] = float((ev_true.d[:, None] * pi * diff).sum())
    return out


def final_cells(twin: TabularMDP, M_phi: TabularMDP, pi: np.ndarray, arrival: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cell exact diagnostics ``(C,)`` each: ``d`` (``d_{M*,pi}``), ``V_true`` (``V^pi_{M*}``), ``V_model``
    (``V^pi_{M_phi}``), ``ma`` (``E_{s'~P^pi_{M*}(s)} A_{M_phi}(s, s')`` for the one-step target
    ``r + gamma V^pi_{M_phi}``: the per-state model advantage; ``sum_s w(s) ma(s) = J_M* - J_M_phi``) and
    ``action`` (the policy's most likely action)."""
    ev = evaluate(twin, pi)
    V_model = policy_evaluation(M_phi, pi)
    ma = mean_model_advantage(twin, M_phi, pi, V=value_target(V_model, arrival, twin.gamma))
    return {"cell": np.arange(twin.S), "d": ev.d, "V_true": ev.V, "V_model": V_model, "ma": ma,
            "action": np.argmax(pi, axis=1)}


def _write_cells(path: Path, cols: dict[str, np.ndarray]) -> None:
    lines = [",".join(cols)]
    lines += [",".join(f"{v:.8g}" if isinstance(v, float) else str(v) for v in vals)
              for vals in zip(*(c.tolist() for c in cols.values()))]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


# ---- the run ------------------------------------------------------------------------------------------
class Trainer:
    """State and steps of one gridworld run of Algorithm 2, shaped like :class:`deep.algorithm.Trainer`:
    :meth:`collect` (line 4), :meth:`update_model` (lines 5-9), :meth:`update_policy` (lines 10-13),
    :meth:`iterate` (one iteration, its metrics row), :meth:`dumps`/:meth:`loads` (an exact resume).

    ``position`` is the iteration count (the first metrics column).
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.layout = cfg.layout
        self.twin = make_twin(self.layout, cfg.gamma)
        S, A = self.twin.S, self.twin.A
        self.rng = np.random.default_rng(cfg.seed)
        self.logits = cfg.model_init_scale * self.rng.standard_normal((S, A, S))
        self.opt = _Adam(self.logits.shape, cfg.model_lr, cfg.optimizer == "adam")
        self.theta, self.v = np.zeros((S, A)), np.zeros(S)
        cap = cfg.iterations * cfg.steps_per_iter
        self.buf = {k: np.zeros(cap, dtype=np.int64) for k in ("s", "a", "s2", "t", "episode")}
        self.n = self.episode = self.position = 0
        import gymnasium as gym

        self.env = gym.make(ENV_IDS[0], size=cfg.size, max_steps=self.layout.max_steps)
        self.cell, info = self.env.reset(seed=cfg.seed)  # the observation is the agent's cell
        self.t = info["t"]
        self.objective = SAMPLED_OBJECTIVES[cfg.method]

    # line 4: n real steps with the current policy
    def collect(self, pi: np.ndarray) -> TransitionBatch:
        cfg = self.cfg
        policy = RowSampler(pi)
        u = self.rng.random(cfg.steps_per_iter)
        for k in range(cfg.steps_per_iter):
            s, t = self.cell, self.t
            a = int(policy.draw(np.array([s]), u[k:k + 1])[0])
            s2, _, terminated, truncated, info = self.env.step(a)
            for key, val in zip(("s", "a", "s2", "t", "episode"), (s, a, s2, t, self.episode)):
                self.buf[key][self.n] = val
            self.n += 1
            self.cell, self.t = s2, info["t"]
            if terminated or truncated:
                self.cell, info = self.env.reset()
                self.t = info["t"]
                self.episode += 1
        return TransitionBatch(*(self.buf[k][:self.n] for k in ("s", "a", "s2", "t", "episode")))

    def _model(self) -> TabularMDP:
        return learned_mdp(self.logits, self.twin, self.layout.reward_table)

    # lines 5-9: model updates, the value refreshed in the current model between them
    def update_model(self, batch: TransitionBatch, pi: np.ndarray) -> None:
        cfg, gamma, rng = self.cfg, self.cfg.gamma, self.rng
        reward, arrival, term = self.layout.reward_table, self.layout.arrival_reward, self.twin.terminal
        for j in range(cfg.model_steps):
            if j % cfg.value_refresh_every == 0:
                M_phi = self._model()
                if cfg.value == "exact":
                    V = policy_evaluation(M_phi, pi)
                else:
                    s0 = (batch.s2[rng.integers(self.n, size=cfg.refresh_rollouts)] if cfg.refresh_from == "buffer"
                          else self.layout.start)
                    ro = _Rollout(_model_sampler(M_phi), reward, term, s0, pi, cfg.refresh_rollouts, cfg.horizon, rng)
                    _critic_step(self.v, ro.s[ro.alive], ro.returns(self.v, gamma)[ro.alive], cfg.critic_lr)
                    V = self.v
                W = value_target(V, arrival, gamma)
            _, g = self.objective(self.logits, W, batch, gamma)
            self.opt.step(self.logits, g)

    # lines 10-13: A2C on rollouts in the learned model
    def update_policy(self) -> None:
        cfg, gamma = self.cfg, self.cfg.gamma
        M_phi = self._model()
        model = _model_sampler(M_phi)
        for _ in range(cfg.policy_steps):
            pi = softmax_policy(self.theta)
            V = policy_evaluation(M_phi, pi) if cfg.value == "exact" else self.v
            ro = _Rollout(model, self.layout.reward_table, self.twin.terminal, self.layout.start, pi,
                          cfg.rollouts, cfg.horizon, self.rng)
            G = ro.returns(V, gamma)
            s, a, G = ro.s[ro.alive], ro.a[ro.alive], G[ro.alive]
            self.theta += cfg.policy_lr * _a2c_grad(pi, s, a, G - V[s], cfg.rollouts, cfg.entropy_coef)
            if cfg.value == "learned":
                _critic_step(self.v, s, G, cfg.critic_lr)

    def row(self) -> dict:
        """The metrics row of the current policy and model (real return, exact return, exact diagnostics)."""
        pi = softmax_policy(self.theta)
        row = {"iteration": self.position, "steps": self.n,
               "return": evaluate_return(self.layout, pi, self.cfg.eval_episodes, self.rng),
               "return_exact": exact_return(self.layout, pi), "episodes": self.episode}
        row.update(_diagnostics(self.twin, self._model(), self.logits, pi, self.layout.arrival_reward))
        return {k: (v if isinstance(v, int) else float(f"{v:.8g}")) for k, v in row.items()}  # compact logs

    def iterate(self) -> dict:
        self.position += 1
        pi = softmax_policy(self.theta)
        batch = self.collect(pi)
        self.update_model(batch, pi)
        self.update_policy()
        return self.row()

    def final_cells(self) -> dict[str, np.ndarray]:
        return final_cells(self.twin, self._model(), softmax_policy(self.theta), self.layout.arrival_reward)

    def dumps(self) -> bytes:
        data = dict(iteration=self.position, logits=self.logits, opt_m=self.opt.m, opt_v=self.opt.v, opt_n=self.opt.n,
                    theta=self.theta, v=self.v, n=self.n, env_cell=self.cell, env_t=self.t, episode=self.episode,
                    rng=np.array(json.dumps(self.rng.bit_generator.state)),
                    **{f"buf_{k}": a[:self.n] for k, a in self.buf.items()})
        bio = io.BytesIO()
        np.savez(bio, **data)
        return bio.getvalue()

    def loads(self, data: bytes) -> None:
        with np.load(io.BytesIO(data)) as z:
            logits = z["logits"]
            if logits.shape != self.logits.shape or int(z["n"]) > len(self.buf["s"]):
                raise ValueError(f"checkpoint holds a model of shape {logits.shape} and {int(z['n'])} transitions; "
                                 f"this run has {self.logits.shape} and room for {len(self.buf['s'])}")
            self.position = int(z["iteration"])
            self.logits = logits.copy()
            self.opt.m, self.opt.v, self.opt.n = z["opt_m"].copy(), z["opt_v"].copy(), int(z["opt_n"])
            self.theta, self.v = z["theta"].copy(), z["v"].copy()
            self.n, self.episode = int(z["n"]), int(z["episode"])
            for k in self.buf:
                self.buf[k][:self.n] = z[f"buf_{k}"]
            self.rng.bit_generator.state = json.loads(str(z["rng"]))
            # the episode resumes where the checkpoint left it (the environment's documented reset options)
            self.cell, info = self.env.reset(options={"cell": int(z["env_cell"]), "t": int(z["env_t"])})
            self.t = info["t"]

    def close(self) -> None:
        self.env.close()


def train(cfg: RunConfig, stop_after: int | None = None) -> Iterator[dict]:
    """Algorithm 2 for ``cfg`` in memory, yielding one metrics row per iteration (iteration 0: before learning);
    ``stop_after`` caps the iterations. :func:`run` is the same loop with a run directory."""
    trainer = Trainer(cfg)
    try:
        yield trainer.row()
        last = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
        while trainer.position < last:
            yield trainer.iterate()
    finally:
        trainer.close()


def run(cfg: RunConfig, run_path: str | os.PathLike | RunDir, stop_after: int | None = None, progress: bool = False,
        wait: bool = False, locked: bool = False) -> Path:
    """Run (or resume, or skip when finished) one seed in a run directory: ``config.json``, ``metrics.csv``,
    ``checkpoint`` while running, ``final_cells.csv`` and ``DONE`` at the end (the checkpoint is then removed).

    ``stop_after`` caps the iterations done by this call (an interruption, for tests); ``locked``: the caller
    holds the run's lock.
    """
    rd = run_path if isinstance(run_path, RunDir) else RunDir(run_path)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.iterations, leave=False, desc=f"{cfg.method} {cfg.size}x{cfg.size} seed {cfg.seed}")
    made: list[Trainer] = []

    def make() -> Trainer:
        made.append(Trainer(cfg))
        return made[-1]

    def finalize(trainer: Trainer, rd: RunDir) -> None:
        _write_cells(rd.file(FINAL_CELLS), trainer.final_cells())
        bio = io.BytesIO()  # the final model and policy, for `modeladv explain --run` (not committed: large)
        np.savez_compressed(bio, logits=trainer.logits, theta=trainer.theta)
        atomic_write_bytes(rd.file(FINAL_MODEL), bio.getvalue())

    def on_row(row: dict) -> None:
        if bar is not None:
            bar.update()
            bar.set_postfix(ret=f"{row['return']:.2f}", steps=row["steps"])

    try:
        execute(rd, cfg, make, cfg.iterations, identity=identity_of, first_row=Trainer.row,
                checkpoint_every=cfg.checkpoint_every, max_iterations=stop_after, keep_checkpoint=False, finalize=finalize, wait=wait, locked=locked,
                on_row=on_row)
    finally:
        for t in made:
            t.close()
        if bar is not None:
            bar.close()
    return rd.path
