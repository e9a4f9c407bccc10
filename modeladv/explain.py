"""``modeladv explain``: one figure of Lemma 1 for a small MDP, a policy and a second model.

The numbers come from :func:`tabular.explain.explain`; this module builds the pair of models (a Gymnasium
toy-text environment or the gridworld, and a perturbed or learned second model), picks the policy and draws:

* the map (grid environments): each state's share ``ma(s) + reward(s)`` of ``J_M - J_M2``, with arrows for the
  transitions that carry the most of it (colour: sign, width: size; Taxi, which has no map, gets a scatter of
  ``A(s, s')`` against ``w(s) P^pi_M(s, s')`` instead);
* the states with the largest shares, split into the model-advantage and the reward term;
* Lemma 1's two sides, its residual, printed Eq. 3's residual, and the leading transitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from gridworld.mbrl import FINAL_MODEL as MODEL_FILE  # the final model and policy a gridworld run keeps
from lab.config import bounded, check_choice, check_fields
from lab.guards import check_figure_path
from tabular import softmax_policy

__all__ = ["Args", "run", "ENVS", "Problem", "load_problem", "plot_explanation", "MODEL_FILE"]

#: toy-text environments (Gymnasium id, make kwargs, map shape or None) and the gridworld
ENVS = {
    "frozenlake": ("FrozenLake-v1", {}, (4, 4)),
    "frozenlake8x8": ("FrozenLake-v1", {"map_name": "8x8"}, (8, 8)),
    "cliffwalking": ("CliffWalking-v1", {}, (4, 12)),
    "taxi": ("Taxi-v4", {}, None),
    "gridworld": (None, {}, None),
}



@dataclass(frozen=True)
class Args:
    """Lemma 1 state by state: where J_M - J_M2 comes from, for a small MDP, a policy and a second model.

    For example:

        modeladv explain                                                  # FrozenLake, optimal policy, noise 0.1
        modeladv explain --env cliffwalking --policy uniform --noise 0.3
        modeladv explain --env gridworld --run runs/gridworld/<hash>/seed0 --policy run   # a learned model

    Prints Lemma 1's two sides, its residual and the leading transitions; writes one figure.
    """

    env: Literal[tuple(ENVS)] = "frozenlake"
    """frozenlake, frozenlake8x8, cliffwalking, taxi (Gymnasium toy text) or gridworld"""
    policy: str = "optimal"
    """optimal (in the true model), uniform, run (the --run's final policy) or a .npy (S, A) file"""
    noise: float = field(default=0.1, metadata=bounded(0.0, 1.0))
    """second model = the true one perturbed at this level (each row mixed with a Dirichlet(1) draw), in [0, 1]"""
    run: str | None = None
    """a finished gridworld run directory: its learned model is the second model (with --env gridworld)"""
    size: int = 8
    """gridworld size, walls included (without --run)"""
    gamma: float = field(default=0.95, metadata=bounded(0.0, 1.0, high_open=True))
    """discount of the tabular models (a --run uses its own)"""
    seed: int = field(default=0, metadata=bounded(0))
    """seed of the perturbation"""
    top: int = field(default=10, metadata=bounded(0))
    """how many leading transitions to print"""
    figure: str | None = None
    """figure path (None: runs/figures/explain_<env>.png)"""

    def __post_init__(self):
        from gridworld.layout import GridLayout

        check_choice("env", self.env, tuple(ENVS))
        check_fields(self)
        GridLayout(self.size)


def run(o: Args) -> int:
    from tabular.explain import explain

    figure = check_figure_path(o.figure or Path("runs") / "figures" / f"explain_{o.env}.png")
    problem = load_problem(o.env, o.gamma, o.policy, o.noise, o.seed, o.run, o.size)
    ex = explain(problem.M, problem.M2, problem.pi, top=o.top)
    L = ex.lemma
    print(f"{problem.name}; policy {problem.policy}; M2: {problem.second}")
    print(f"J_M - J_M2 = {L.lhs:+.6g} = model-advantage term {L.model_advantage_term:+.6g} "
          f"+ reward term {L.reward_term:+.6g}   (residual {L.residual:+.1e}; printed Eq. 3 residual "
          f"{L.printed_residual:+.3g})")
    print("leading transitions (share = w(s) P(s, s') A(s, s')):")
    for t in ex.top:
        print(f"  {t.s:>4} -> {t.s2:<4} w {t.w:8.4f}  P {t.prob:6.3f}  A {t.advantage:+9.5f}  share {t.flow:+.5f}")
    print(f"figure: {plot_explanation(problem, ex, figure)}")
    return 0

@dataclass(frozen=True)
class Problem:
    """What :func:`tabular.explain.explain` needs, and how to draw it."""

    M: object
    M2: object
    pi: np.ndarray
    name: str
    second: str
    policy: str
    shape: tuple[int, int] | None
    marks: dict


def _gym_mdp(env: str, gamma: float):
    import gymnasium as gym

    from tabular import from_gymnasium
    from tabular.mdp import gymnasium_transition_rewards

    gym_id, kwargs, shape = ENVS[env]
    e = gym.make(gym_id, **kwargs)
    try:
        M, r = from_gymnasium(e, gamma), gymnasium_transition_rewards(e)
        u = e.unwrapped
        marks = {}
        desc = getattr(u, "desc", None)
        if desc is not None:  # FrozenLake: start, holes, goal
            d = np.asarray(desc).astype(str).ravel()
            marks = {"S": np.flatnonzero(d == "S"), "H": np.flatnonzero(d == "H"), "G": np.flatnonzero(d == "G")}
        elif env == "cliffwalking":
            cliff = np.flatnonzero(np.asarray(u._cliff).ravel())
            marks = {"S": np.array([int(u.start_state_index)]), "C": cliff, "G": np.array([shape[0] * shape[1] - 1])}
    finally:
        e.close()
    return M, r, shape, marks


def _gridworld(size: int, gamma: float):
    from gridworld.layout import GridLayout, make_twin

    layout = GridLayout(size)
    M = make_twin(layout, gamma)
    r = np.broadcast_to(layout.reward_table[:, None, :], (M.S, M.A, M.S)).copy()
    r[M.terminal] = 0.0
    return M, r, (layout.width, layout.width), {"S": np.array([layout.start]), "G": np.array([layout.goal])}, layout


def _load_run(run: str | Path) -> tuple[dict, np.ndarray, np.ndarray]:
    run = Path(run)
    cfg_path, model_path = run / "config.json", run / MODEL_FILE
    if not cfg_path.exists():
        raise ValueError(f"{run} is not a run directory (no config.json)")
    if not model_path.exists():
        raise ValueError(f"{run} holds no {MODEL_FILE}: only gridworld runs finished by this version keep their "
                         f"final model; rerun it (modeladv gridworld ...) into a fresh --root")
    cfg = json.loads(cfg_path.read_text())
    with np.load(model_path) as z:
        return cfg, z["logits"].astype(np.float64), z["theta"].astype(np.float64)


def load_problem(env: str = "frozenlake", gamma: float = 0.95, policy: str = "optimal", noise: float = 0.1,
                 seed: int = 0, run: str | None = None, size: int = 8) -> Problem:
    """The true model ``M``, the second model ``M2`` and the policy.

    Args:
        env: a key of :data:`ENVS`. gamma: discount of the tabular model (ignored with ``run``: the run's).
        policy: ``optimal`` (policy iteration in ``M``), ``uniform``, ``run`` (the run's final policy) or the
            path of a ``.npy`` ``(S, A)`` policy.
        noise: with no ``run``, ``M2`` is ``M`` perturbed at this level (:func:`tabular.explain.perturb`,
            ``seed``); its rewards score its own dynamics with the environment's transition rewards.
        run: a finished gridworld run directory: ``M2`` is its learned model (``env`` must be ``gridworld``;
            its size and gamma are the run's).
        size: gridworld size (walls included) when there is no ``run``.

    Raises:
        ValueError: an unknown env or policy, a run that is not a finished gridworld run, a bad policy file.
    """
    from tabular import policy_iteration, uniform_policy
    from tabular.explain import perturb

    if env not in ENVS:
        raise ValueError(f"unknown env {env!r}; choose from {', '.join(ENVS)}")
    if run is not None and env != "gridworld":
        raise ValueError("--run loads a learned gridworld model; use --env gridworld with it")
    if policy == "run" and run is None:
        raise ValueError("--policy run needs --run DIR (a finished gridworld run)")
    if env == "gridworld":
        if run is not None:
            cfg, logits, theta = _load_run(run)
            if cfg.get("method") is None or "size" not in cfg:
                raise ValueError(f"{run} is not a gridworld run")
            size, gamma = int(cfg["size"]), float(cfg["gamma"])
        M, r, shape, marks, layout = _gridworld(size, gamma)
        name = f"gridworld {size}x{size}"
    else:
        M, r, shape, marks = _gym_mdp(env, gamma)
        name = ENVS[env][0] + (f" {ENVS[env][1]['map_name']}" if ENVS[env][1] else "")
    if run is not None:
        from gridworld.mbrl import learned_mdp

        if logits.shape != (M.S, M.A, M.S):
            raise ValueError(f"{run}: model logits of shape {logits.shape} do not fit the {size}x{size} grid")
        M2 = learned_mdp(logits, M, layout.reward_table)
        second = f"learned model ({cfg['method']}, seed {cfg['seed']}, run {Path(run).parent.name})"
    else:
        M2 = perturb(M, noise, np.random.default_rng(seed), reward=r)
        second = f"M perturbed, noise {noise:g} (seed {seed})"
    if policy == "optimal":
        pi = policy_iteration(M).pi
    elif policy == "uniform":
        pi = uniform_policy(M)
    elif policy == "run":
        pi = softmax_policy(theta)  # the run's own policy map
    else:
        path = Path(policy)
        if path.suffix != ".npy" or not path.exists():
            raise ValueError(f"--policy must be optimal, uniform, run or an existing .npy file; got {policy!r}")
        pi = np.load(path)
        if pi.shape != (M.S, M.A):
            raise ValueError(f"{path}: policy of shape {pi.shape}; {name} needs ({M.S}, {M.A})")
    return Problem(M=M, M2=M2, pi=pi, name=name, second=second, policy=policy, shape=shape, marks=marks)


def _state_xy(s: int, shape: tuple[int, int]) -> tuple[float, float]:
    return float(s % shape[1]), float(s // shape[1])


def plot_explanation(problem: Problem, ex, out: str | Path, arrows: int = 12) -> Path:
    """The figure of :func:`tabular.explain.explain`'s ``ex`` for ``problem`` (see the module text)."""
    from lab.plot import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1.25, 1.0, 1.05]})
    ax = axes[0]
    n_map = problem.shape[0] * problem.shape[1] if problem.shape else 0
    if problem.shape:
        grid = ex.total[:n_map].reshape(problem.shape)
        lim = float(np.abs(grid).max()) or 1.0
        im = ax.imshow(grid, cmap="coolwarm", vmin=-lim, vmax=lim, origin="upper")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="share (ma + reward)")
        for key, cells in problem.marks.items():
            for c in cells:
                x, y = _state_xy(int(c), problem.shape)
                ax.text(x, y, key, ha="center", va="center", fontsize=8, weight="bold")
        flat = np.argsort(-np.abs(ex.flow[:n_map, :n_map]), axis=None)[:arrows]
        big = float(np.abs(ex.flow.flat[flat[0]])) if len(flat) else 1.0
        for i in flat:
            s, s2 = divmod(int(i), n_map)
            f = float(ex.flow[s, s2])
            if f == 0.0:
                continue
            (x, y), (x2, y2) = _state_xy(s, problem.shape), _state_xy(s2, problem.shape)
            col = "darkred" if f > 0 else "navy"
            if s == s2:  # staying put: a ring
                ax.add_patch(plt.Circle((x, y), 0.32, fill=False, color=col, lw=0.6 + 3 * abs(f) / big))
            else:
                ax.annotate("", xy=(x + 0.8 * (x2 - x), y + 0.8 * (y2 - y)), xytext=(x, y),
                            arrowprops=dict(arrowstyle="->", color=col, lw=0.6 + 3 * abs(f) / big))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{problem.name}: per-state share and the {arrows} largest\n"
                     "transition shares w(s)·P(s,s')·A(s,s') (red > 0, blue < 0)", fontsize=9)
    else:
        carry = ex.P_pi > 0
        weight = (ex.w[:, None] * ex.P_pi)[carry]
        ax.scatter(weight, ex.A[carry], s=6, c=np.sign(ex.flow[carry]), cmap="coolwarm", vmin=-1, vmax=1)
        ax.set_xscale("log")
        ax.set_xlabel("w(s) P^π_M(s, s')  (how often the true dynamics take it)")
        ax.set_ylabel("A_M2(s, s')")
        ax.set_title(f"{problem.name}: every transition that carries probability", fontsize=9)
    # the states with the largest shares
    ax = axes[1]
    k = min(12, len(ex.total))
    idx = np.argsort(-np.abs(ex.total), kind="stable")[:k]
    y = np.arange(k)
    ax.barh(y - 0.2, ex.ma[idx], height=0.4, color="tab:purple", label="model-advantage term w(s)·E_P[A]")
    ax.barh(y + 0.2, ex.reward[idx], height=0.4, color="tab:orange", label="reward term w(s)·ΔR(s)")
    ax.set_yticks(y, [f"s={s}" for s in idx], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"the {k} states with the largest |share|", fontsize=9)
    # Lemma 1, printed Eq. 3 and the leading transitions
    ax = axes[2]
    ax.axis("off")
    L = ex.lemma
    lines = [f"policy: {problem.policy};  M2: {problem.second}", f"γ = {L.gamma:g}", "",
             "Lemma 1 (unnormalized values):",
             f"  J_M − J_M2                        = {L.lhs:+.6g}",
             f"  1/(1−γ) E_dM E_PM[A_M2]           = {L.model_advantage_term:+.6g}",
             f"  1/(1−γ) E_dM[R_M − R_M2]          = {L.reward_term:+.6g}",
             f"  residual (lhs − rhs)              = {L.residual:+.2e}",
             f"  Σ_s share(s) − gap                = {-ex.residual:+.2e}",
             f"  printed Eq. 3 residual            = {L.printed_residual:+.3g}", "",
             "largest transition shares  s → s'   w(s)   P   A   share:"]
    lines += [f"  {t.s:>4} → {t.s2:<4} {t.w:7.3f} {t.prob:5.2f} {t.advantage:+8.4f} {t.flow:+9.5f}" for t in ex.top[:10]]
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7.5, transform=ax.transAxes)
    fig.suptitle("Where the performance gap of the second model comes from (Lemma 1, state by state)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)
