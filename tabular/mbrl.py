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
* Known reward function ``r(s, s')`` (:func:`tabular.gridworld.transition_reward`) scored on the model's
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
* Randomness: one ``numpy.random.Generator`` per run seeded from ``Config.seed``. Checkpoints (``np.savez``)
  hold everything a bit-identical resume needs, the generator state included.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .advantage import expected_model_advantage, mean_model_advantage, simulation_lemma
from .gridworld import ENV_IDS, GridLayout, make_twin
from .mdp import TabularMDP
from .objectives import EXACT_OBJECTIVES, SAMPLED_OBJECTIVES, TransitionBatch, model_probs
from .runs import MetricsWriter, atomic_write_bytes, is_done, mark_done, write_config
from .solve import evaluate, policy_evaluation

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "VALUE_MODES",
    "OPTIMIZERS",
    "Config",
    "validate_config",
    "learned_mdp",
    "value_target",
    "evaluate_return",
    "exact_return",
    "final_cells",
    "FINAL_CELLS",
    "train",
    "run",
]

#: The five model-learning objectives of Figure 1 (keys of ``SAMPLED_OBJECTIVES``), in plotting order.
METHODS = ("mle", "ma_direct_l1", "ma_direct_l2", "ma_upper_l1", "ma_vaml_l2")
#: Figure labels (the paper's names).
METHOD_LABELS = {"mle": "MLE", "ma_direct_l1": "MA Direct L1", "ma_direct_l2": "MA Direct L2",
                 "ma_upper_l1": "MA Upper Bound L1", "ma_vaml_l2": "MA VAML L2"}
VALUE_MODES = ("learned", "exact")
CHECKPOINT = "checkpoint.npz"
#: per-cell diagnostics of the final policy and model, written next to metrics.csv when a run finishes
FINAL_CELLS = "final_cells.csv"


@dataclass(frozen=True)
class Config:
    """One gridworld MBRL run (Algorithm 2 with A2C). Defaults: the quick 8x8 budget of ``modeladv gridworld``."""

    size: int = 8
    """grid side including walls (MiniGrid convention: 8 -> 6x6 interior); >= 4"""
    method: str = "ma_upper_l1"
    """model-learning objective, a key of tabular.objectives.SAMPLED_OBJECTIVES"""
    seed: int = 0
    """seed of the run's single numpy Generator"""
    gamma: float = 0.95
    """discount of the stationary twin / learned model (planning and diagnostics)"""
    iterations: int = 50
    """outer iterations K of Algorithm 2"""
    steps_per_iter: int = 10
    """real environment steps n collected per iteration (line 4)"""
    max_steps: int | None = None
    """real episode time limit (None: 8 (size - 3), four times the shortest path)"""
    model_steps: int = 20
    """K_model gradient steps on the model logits per iteration (line 5)"""
    model_lr: float = 0.3
    """model learning rate (best AUC of {0.03, 0.1, 0.3, 1} on 8x8 for MLE, MA-L1^U and VAML; seeds 100-102)"""
    optimizer: str = "adam"
    """model optimizer: 'adam' or 'sgd'"""
    model_init_scale: float = 1.0
    """std of the Gaussian initial model logits (0: uniform model)"""
    value: str = "learned"
    """value used by the objectives and A2C: 'learned' tabular critic or 'exact' V^pi in the learned model"""
    value_refresh_every: int = 5
    """refresh V every this many model steps (Alg. 2 lines 7-8)"""
    refresh_rollouts: int = 32
    """model rollouts per critic refresh (value='learned')"""
    refresh_from: str = "start"
    """start states of the critic-refresh rollouts (line 7): 'start' (p0) or 'buffer' (replay next states,
    where the objectives read V; measured worse on 8x8, see docs/gridworld_results.md)"""
    policy_steps: int = 30
    """K_policy A2C updates per iteration (line 10)"""
    rollouts: int = 32
    """parallel model rollouts B per A2C update"""
    rollout_len: int = 0
    """model rollout length T (0: twice the Manhattan distance start->goal)"""
    policy_lr: float = 1.0
    """A2C step size on the softmax logits (gradient summed over a rollout, averaged over rollouts)"""
    critic_lr: float = 0.5
    """tabular critic step towards the per-state mean n-step return, in (0, 1]"""
    entropy_coef: float = 0.01
    """A2C entropy bonus"""
    eval_episodes: int = 20
    """real evaluation episodes per iteration (the logged 'return')"""
    checkpoint_every: int = 10
    """iterations between checkpoints"""

    @property
    def layout(self) -> GridLayout:
        return GridLayout(self.size, self.max_steps)

    @property
    def horizon(self) -> int:
        return self.rollout_len or 2 * self.layout.manhattan


OPTIMIZERS = ("adam", "sgd")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def validate_config(cfg: Config) -> Config:
    """Check every field once at the boundary; ``ValueError`` names the field and the bad value."""
    GridLayout(cfg.size, cfg.max_steps)  # size >= 4, max_steps >= 1
    _check(cfg.method in SAMPLED_OBJECTIVES,
           f"unknown method {cfg.method!r}; choose from {', '.join(METHODS)}")
    _check(cfg.value in VALUE_MODES, f"value must be one of {VALUE_MODES}; got {cfg.value!r}")
    _check(cfg.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}; got {cfg.optimizer!r}")
    _check(cfg.refresh_from in ("buffer", "start"),
           f"refresh_from must be 'buffer' or 'start'; got {cfg.refresh_from!r}")
    _check(0.0 < cfg.gamma < 1.0, f"gamma must lie in (0, 1); got {cfg.gamma}")
    _check(_is_int(cfg.seed) and cfg.seed >= 0, f"seed must be a non-negative integer; got {cfg.seed!r}")
    for name in ("iterations", "steps_per_iter", "policy_steps", "rollouts", "eval_episodes",
                 "value_refresh_every", "refresh_rollouts", "checkpoint_every"):
        v = getattr(cfg, name)
        _check(_is_int(v) and v >= 1, f"{name} must be a positive integer; got {v!r}")
    for name in ("model_steps", "rollout_len"):
        v = getattr(cfg, name)
        _check(_is_int(v) and v >= 0, f"{name} must be a non-negative integer; got {v!r}")
    for name in ("model_lr", "policy_lr"):
        v = getattr(cfg, name)
        _check(np.isfinite(v) and v > 0, f"{name} must be positive; got {v!r}")
    _check(0 < cfg.critic_lr <= 1, f"critic_lr must lie in (0, 1]; got {cfg.critic_lr!r}")
    for name in ("entropy_coef", "model_init_scale"):
        v = getattr(cfg, name)
        _check(np.isfinite(v) and v >= 0, f"{name} must be non-negative; got {v!r}")
    return cfg


# ---- pieces -------------------------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


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
        self.n += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * g
        self.v *= self.b2
        self.v += (1 - self.b2) * (g * g)
        c2 = np.sqrt(1 - self.b2 ** self.n)
        denom = np.sqrt(self.v)
        denom += self.eps * c2  # sqrt(vhat) + eps, times sqrt(1 - b2^n)
        x -= (self.lr * c2 / (1 - self.b1 ** self.n)) * self.m / denom


def _sample_rows(P_rows: np.ndarray, rng: np.random.Generator, cdf: np.ndarray | None = None) -> np.ndarray:
    """One draw from each row of ``P_rows`` ``(B, S)`` by inversion (``cdf``: their cumulative sums, if known)."""
    cdf = np.cumsum(P_rows, axis=1) if cdf is None else cdf
    u = rng.random(len(cdf))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), cdf.shape[1] - 1)


class _Rollout:
    """``B`` rollouts of ``T`` steps from ``start`` (a state or ``(B,)`` states) in a model ``P`` ``(S, A, S)``
    scored by ``reward[s, s']``: ``s, a, r, alive`` ``(T, B)`` and the last state."""

    def __init__(self, P: np.ndarray, reward: np.ndarray, terminal: np.ndarray, start: int, pi: np.ndarray,
                 B: int, T: int, rng: np.random.Generator):
        s = np.broadcast_to(np.asarray(start, dtype=np.int64), (B,)).copy()
        alive = ~terminal[s]
        P_cdf = np.cumsum(P, axis=2)  # once per rollout batch instead of once per step
        self.s = np.empty((T, B), dtype=np.int64)
        self.a = np.empty((T, B), dtype=np.int64)
        self.r = np.zeros((T, B))
        self.alive = np.empty((T, B), dtype=bool)
        for t in range(T):
            a = _sample_rows(pi[s], rng)
            self.s[t], self.a[t], self.alive[t] = s, a, alive
            s2 = _sample_rows(None, rng, P_cdf[s, a])
            self.r[t] = np.where(alive, reward[s, s2], 0.0)
            s = s2
            alive = alive & ~terminal[s]
        self.last, self.last_alive = s, alive

    def returns(self, V: np.ndarray, gamma: float) -> np.ndarray:
        """n-step returns ``G_t = r_t + gamma G_{t+1}``, bootstrapped with ``V`` at the last state, ``(T, B)``."""
        G = np.where(self.last_alive, V[self.last], 0.0)
        out = np.empty_like(self.r)
        for t in range(len(self.r) - 1, -1, -1):
            G = self.r[t] + gamma * G  # r = 0 after termination and the terminal continuation is 0
            G = np.where(self.alive[t], G, 0.0)
            out[t] = G
        return out


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
    for t in range(1, layout.max_steps + 1):
        if not alive.any():
            break
        a = _sample_rows(pi[s], rng)
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
@dataclass
class _State:
    """Everything a resume needs (saved by :func:`_save`)."""

    iteration: int
    logits: np.ndarray
    opt: _Adam
    theta: np.ndarray
    v: np.ndarray
    buf: dict  # s, a, s2, t, episode: (capacity,) int arrays
    n: int     # transitions in the buffer (= real steps so far)
    env_cell: int
    env_t: int
    episode: int
    rng: np.random.Generator


def _init_state(cfg: Config, S: int, A: int) -> _State:
    rng = np.random.default_rng(cfg.seed)
    logits = cfg.model_init_scale * rng.standard_normal((S, A, S))
    cap = cfg.iterations * cfg.steps_per_iter
    buf = {k: np.zeros(cap, dtype=np.int64) for k in ("s", "a", "s2", "t", "episode")}
    return _State(0, logits, _Adam(logits.shape, cfg.model_lr, cfg.optimizer == "adam"), np.zeros((S, A)),
                  np.zeros(S), buf, 0, cfg.layout.start, 0, 0, rng)


def _save(path: Path, st: _State) -> None:
    import io

    data = dict(iteration=st.iteration, logits=st.logits, opt_m=st.opt.m, opt_v=st.opt.v, opt_n=st.opt.n,
                theta=st.theta, v=st.v, n=st.n, env_cell=st.env_cell, env_t=st.env_t, episode=st.episode,
                rng=np.array(json.dumps(st.rng.bit_generator.state)),
                **{f"buf_{k}": a[:st.n] for k, a in st.buf.items()})
    bio = io.BytesIO()
    np.savez(bio, **data)
    atomic_write_bytes(path, bio.getvalue())


def _load(path: Path, cfg: Config, S: int, A: int) -> _State:
    st = _init_state(cfg, S, A)
    with np.load(path) as z:
        st.iteration = int(z["iteration"])
        st.logits = z["logits"].copy()
        st.opt.m, st.opt.v, st.opt.n = z["opt_m"].copy(), z["opt_v"].copy(), int(z["opt_n"])
        st.theta, st.v = z["theta"].copy(), z["v"].copy()
        st.n, st.env_cell, st.env_t, st.episode = int(z["n"]), int(z["env_cell"]), int(z["env_t"]), int(z["episode"])
        for k in st.buf:
            st.buf[k][:st.n] = z[f"buf_{k}"]
        st.rng.bit_generator.state = json.loads(str(z["rng"]))
    return st


def train(cfg: Config, run_path: str | os.PathLike | None = None, stop_after: int | None = None,
          progress: bool = False) -> Iterator[dict]:
    """Run Algorithm 2 for ``cfg``, yielding one metrics row per iteration (iteration 0: before learning).

    With ``run_path``, resumes from its checkpoint when one exists (rows are yielded only for new
    iterations) and writes a checkpoint every ``cfg.checkpoint_every`` iterations. ``stop_after`` caps the
    iterations done by this call (an interruption for tests; not part of the config).
    """
    import gymnasium as gym
    from tqdm.auto import tqdm

    validate_config(cfg)
    layout = cfg.layout
    twin = make_twin(layout, cfg.gamma)
    S, A, gamma = twin.S, twin.A, cfg.gamma
    reward, arrival, term, start = layout.reward_table, layout.arrival_reward, twin.terminal, layout.start
    objective = SAMPLED_OBJECTIVES[cfg.method]
    ckpt = None if run_path is None else Path(run_path) / CHECKPOINT
    st = _load(ckpt, cfg, S, A) if ckpt is not None and ckpt.exists() else _init_state(cfg, S, A)
    rng = st.rng

    env = gym.make(ENV_IDS[0], size=cfg.size, max_steps=layout.max_steps)
    env.reset(seed=cfg.seed)
    env.unwrapped.cell, env.unwrapped.t = st.env_cell, st.env_t
    T, B = cfg.horizon, cfg.rollouts

    def value(M_phi: TabularMDP, pi: np.ndarray) -> np.ndarray:
        return policy_evaluation(M_phi, pi) if cfg.value == "exact" else st.v

    def log_row(pi: np.ndarray) -> dict:
        M_phi = learned_mdp(st.logits, twin, reward)
        row = {"iteration": st.iteration, "steps": st.n,
               "return": evaluate_return(layout, pi, cfg.eval_episodes, rng),
               "return_exact": exact_return(layout, pi), "episodes": st.episode}
        row.update(_diagnostics(twin, M_phi, st.logits, pi, arrival))
        return {k: (v if isinstance(v, int) else float(f"{v:.8g}")) for k, v in row.items()}  # compact logs

    if st.iteration == 0:
        yield log_row(_softmax(st.theta))
    last = cfg.iterations if stop_after is None else min(cfg.iterations, st.iteration + stop_after)
    bar = tqdm(range(st.iteration, last), disable=not progress, leave=False,
               desc=f"{cfg.method} {cfg.size}x{cfg.size} seed {cfg.seed}")
    for _ in bar:
        st.iteration += 1
        pi = _softmax(st.theta)

        # line 4: n real steps with the current policy
        cum = np.cumsum(pi, axis=1)
        u = rng.random(cfg.steps_per_iter)
        for k in range(cfg.steps_per_iter):
            s = env.unwrapped.cell
            a = min(int(np.searchsorted(cum[s], u[k] * cum[s, -1], side="right")), A - 1)
            t = env.unwrapped.t
            s2, _, terminated, truncated, _ = env.step(a)
            i = st.n
            for key, val in zip(("s", "a", "s2", "t", "episode"), (s, a, s2, t, st.episode)):
                st.buf[key][i] = val
            st.n += 1
            if terminated or truncated:
                env.reset()
                st.episode += 1
        batch = TransitionBatch(*(st.buf[k][:st.n] for k in ("s", "a", "s2", "t", "episode")))

        # lines 5-9: model updates with the value refreshed in the current model between them
        for j in range(cfg.model_steps):
            if j % cfg.value_refresh_every == 0:
                M_phi = learned_mdp(st.logits, twin, reward)
                if cfg.value == "exact":
                    V = policy_evaluation(M_phi, pi)
                else:
                    s0 = (batch.s2[rng.integers(st.n, size=cfg.refresh_rollouts)] if cfg.refresh_from == "buffer"
                          else start)
                    ro = _Rollout(M_phi.P, reward, term, s0, pi, cfg.refresh_rollouts, T, rng)
                    _critic_step(st.v, ro.s[ro.alive], ro.returns(st.v, gamma)[ro.alive], cfg.critic_lr)
                    V = st.v
                W = value_target(V, arrival, gamma)
            _, g = objective(st.logits, W, batch, gamma)
            st.opt.step(st.logits, g)

        # lines 10-13: A2C on rollouts in the learned model
        M_phi = learned_mdp(st.logits, twin, reward)
        P = M_phi.P
        for _ in range(cfg.policy_steps):
            pi = _softmax(st.theta)
            V = value(M_phi, pi)
            ro = _Rollout(P, reward, term, start, pi, B, T, rng)
            G = ro.returns(V, gamma)
            m = ro.alive
            s, a, G = ro.s[m], ro.a[m], G[m]
            st.theta += cfg.policy_lr * _a2c_grad(pi, s, a, G - V[s], B, cfg.entropy_coef)
            if cfg.value == "learned":
                _critic_step(st.v, s, G, cfg.critic_lr)

        st.env_cell, st.env_t = env.unwrapped.cell, env.unwrapped.t
        row = log_row(_softmax(st.theta))
        if progress:
            bar.set_postfix(ret=f"{row['return']:.2f}", steps=st.n)
        yield row
        if ckpt is not None and (st.iteration % cfg.checkpoint_every == 0 or st.iteration == last):
            if st.iteration == cfg.iterations:
                _write_cells(ckpt.parent / FINAL_CELLS, final_cells(twin, learned_mdp(st.logits, twin, reward),
                                                                    _softmax(st.theta), arrival))
            _save(ckpt, st)
    env.close()


def run(cfg: Config, run_path: str | os.PathLike, stop_after: int | None = None, progress: bool = False) -> Path:
    """Run (or resume, or skip when ``DONE``) one seed in ``run_path``: ``config.json``, ``metrics.csv``,
    ``checkpoint.npz`` while running; ``DONE`` written last and the checkpoint removed then."""
    validate_config(cfg)
    path = Path(run_path)
    if is_done(path):
        return path
    path.mkdir(parents=True, exist_ok=True)
    write_config(path, cfg)
    ckpt = path / CHECKPOINT
    resumed_at = 0
    if ckpt.exists():
        with np.load(ckpt) as z:
            resumed_at = int(z["iteration"])
    # a fresh start drops any rows of an interrupted attempt; a resume drops rows after its checkpoint
    writer = MetricsWriter(path / "metrics.csv", truncate_after=resumed_at if ckpt.exists() else -1)
    finished = False
    for row in train(cfg, path, stop_after=stop_after, progress=progress):
        writer.write(row)
        finished = row["iteration"] == cfg.iterations
    if finished:
        mark_done(path)
        ckpt.unlink(missing_ok=True)
    return path
