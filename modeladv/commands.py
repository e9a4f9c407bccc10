"""The subcommands of ``modeladv``: each one's options dataclass (its flags) and its implementation.

Heavy imports (torch, Gymnasium, the experiments) happen inside each ``run_*``, so ``modeladv verify`` never
imports torch. The same option means the same everywhere: ``--root`` a run root, ``--figure`` a figure path,
``--workers`` processes, ``--seeds`` a count of seeds ``0..K-1``, ``--wait`` waiting for runs another process
holds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from deep.config import METHOD_NAMES, RunConfig
from gridworld.config import RunConfig as GridConfig

from .cli import Command, values_for
from lab.config import check_choice, check_float, check_int
from lab.guards import check_figure_path, check_memory, check_output_dir

__all__ = ["COMMANDS", "VerifyOptions", "GridworldOptions", "TrainOptions", "SweepOptions", "PlotOptions"]


def default_figure(root: Path, experiment: str, keys=()) -> Path:
    """``<root>/figures/<experiment>[_<keys>].png``: the one name every command gives an experiment's figure
    (keys: the gridworld sizes or the deep environments it shows)."""
    tail = "_".join(map(str, sorted(set(keys))))
    return Path(root) / "figures" / (f"{experiment}_{tail}.png" if tail else f"{experiment}.png")


# ---- verify ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyOptions:
    seed: int = 0
    """seed of the random MDPs"""
    n_mdps: int = 5
    """number of random MDP pairs (>= 0)"""
    states: int = 10
    """states of each random MDP (>= 1)"""
    actions: int = 3
    """actions of each random MDP (>= 1)"""
    gamma: float = 0.9
    """discount of the random MDPs, in [0, 1)"""
    json: bool = False
    """print the rows and the summary as JSON"""

    def __post_init__(self):
        check_float("gamma", self.gamma, 0.0, 1.0, high_open=True)
        check_int("states", self.states, 1)
        check_int("actions", self.actions, 1)
        check_int("n_mdps", self.n_mdps, 0)


def run_verify(values: dict) -> int:
    """Check Lemma 1 and Corollary 2 on random MDPs and Sutton & Barto's grids; show printed Eq. 3 and 5 failing.

    modeladv verify                        # 5 random 10-state pairs + textbook grids
    modeladv verify --gamma 0.99 --json
    """
    from tabular.verify import TOL, format_table, verify_cases, verify_pair

    o = VerifyOptions(**values_for(VerifyOptions, values))
    rows = [verify_pair(*c) for c in verify_cases(o.seed, o.n_mdps, o.states, o.actions, o.gamma)]
    failed = {c: sum(abs(getattr(r, c)) > TOL * max(1.0, abs(r.lhs)) for r in rows) for c in ("printed_eq3", "printed_eq5")}
    ok = all(r.exact_ok for r in rows)
    if o.json:
        print(json.dumps({"rows": [dataclasses.asdict(r) | {"exact_ok": r.exact_ok} for r in rows],
                          "printed_failures": failed, "n": len(rows), "pass": ok}, indent=1))
        return 0 if ok else 1
    print("Residuals (lhs - rhs) of Lemma 1 (Eq. 3) and Corollary 2 (Eq. 5), values unnormalized unless '(norm)'")
    print(format_table(rows))
    print(f"\nprinted Eq. 3 (unnormalized values) fails on {failed['printed_eq3']}/{len(rows)} pairs "
          "(holds only for (1-gamma)-normalized values or equal expected rewards)")
    print(f"printed Eq. 5 fails on {failed['printed_eq5']}/{len(rows)} pairs "
          "(holds when P^pi agrees; exact forms: E_dM[T_M V_M2 - T_M2 V_M2] or E_dM2[T_M V_M - T_M2 V_M])")
    print(f"{'PASS' if ok else 'FAIL'}: exact forms of Lemma 1 and Corollary 2 hold to {TOL:g} on "
          f"{sum(r.exact_ok for r in rows)}/{len(rows)} pairs")
    return 0 if ok else 1


# ---- gridworld ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridworldOptions:
    size: tuple[int, ...] = (8,)
    """grid size(s), walls included"""
    methods: tuple[str, ...] = ("all",)
    """all, or any of mle, ma_direct_l1, ma_direct_l2, ma_l1, ma_vaml"""
    seeds: int = 5
    """seeds per method: first_seed .. first_seed + K - 1"""
    first_seed: int = 0
    """the first seed (model-lr selection uses seeds 100-102, disjoint from the reported 0..K-1)"""
    iterations: int | None = None
    """outer iterations (None: 50 for size <= 8, else 100)"""
    steps_per_iter: int | None = None
    """real steps per iteration (None: 10 for size <= 8, else 60)"""
    root: str = "runs"
    """run root: runs go to <root>/gridworld/<config-hash>/seed<k>/"""
    workers: int = 2
    """parallel worker processes"""
    figure: str | None = None
    """figure path (None: <root>/figures/gridworld_<sizes>.png)"""
    plot: bool = True
    """write the figure at the end"""
    wait: bool = False
    """wait for runs another process is working in, instead of stopping"""
    progress: bool = True
    """show a progress bar"""
    stop_after: int | None = None
    """stop each run after this many iterations (a rerun resumes it); for tests and staged work"""

    def __post_init__(self):
        if self.stop_after is not None:
            check_int("stop_after", self.stop_after, 1)


_GRID_OWN = frozenset({"size", "method", "seed", "iterations", "steps_per_iter", "first_seed"})


def run_gridworld(values: dict) -> int:
    """The Figure-1 gridworld experiment (Sec. 4.1): tabular Algorithm 2 with A2C, five objectives.

    modeladv gridworld                                        # quick 8x8: 5 methods x 5 seeds, 500 real steps
    modeladv gridworld --size 8 16 --seeds 10 --root results  # the full Figure 1 (then figures/make_fig1.py)
    modeladv gridworld --methods mle ma_l1 --value exact --gamma 0.9

    Runs resume after an interruption (rerun the same command); finished runs are skipped.
    """
    from gridworld.report import collect, format_table, plot_returns, summarize
    from gridworld.runner import make_configs, run_all

    o = GridworldOptions(**values_for(GridworldOptions, values))
    cfgs = make_configs(o.size, o.methods, o.seeds, o.iterations, o.steps_per_iter, o.first_seed,
                        **values_for(GridConfig, values, skip=_GRID_OWN))
    root = check_output_dir(o.root)
    figure = Path(o.figure) if o.figure else default_figure(root, "gridworld", o.size)
    if o.plot:
        check_figure_path(figure)
    for c in {c.size: c for c in cfgs}.values():
        check_memory(c.memory_bytes(), min(o.workers, len(cfgs)), f"--size {c.size}")
    t0 = time.perf_counter()
    paths = run_all(cfgs, root, workers=o.workers, stop_after=o.stop_after, progress=o.progress, wait=o.wait)
    wall = time.perf_counter() - t0
    runs = collect(root, paths)
    print(format_table(summarize(runs)))
    print(f"{len(cfgs)} run(s) in {wall:.0f} s; logs under {root / 'gridworld'}/")
    if o.plot and runs:
        print(f"figure: {plot_returns(runs, figure)}")
    return 0


# ---- train ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainOptions:
    root: str = "runs"
    """run root: the run goes to <root>/deep/<config-hash>/seed<k>/"""
    threads: int = 1
    """torch CPU threads"""
    progress: bool = True
    """show a progress bar"""
    wait: bool = False
    """wait for another process working in the same run, instead of stopping"""

    def __post_init__(self):
        check_int("threads", self.threads, 1)


def _import_torch(command: str):
    try:
        import torch
    except ImportError:
        raise ValueError(f"modeladv {command} needs torch; install the deep extra: pip install -e '.[deep]'") from None
    return torch


def _summary(path: Path, wall: float) -> str:
    from lab.rundir import read_metrics

    m = read_metrics(path)
    steps = int(m["step"][-1]) if len(m.get("step", ())) else 0
    ret = float(m["return"][-1]) if steps else float("nan")
    return f"final return {ret:.1f} after {steps} real steps; {wall:.1f} s in this call; run directory {path}"


def run_train(values: dict) -> int:
    """One deep run of Algorithm 2 (value-aware MBRL with TRPO); alpha/lambda default to the paper's Table 1.

    modeladv train --env pendulum --method ma_l1 --steps 200000 --seed 0

    Writes <root>/deep/<config-hash>/seed<k>/; rerunning resumes it, or extends it to a larger --steps.
    """
    o = TrainOptions(**values_for(TrainOptions, values))
    cfg = RunConfig(**values_for(RunConfig, values))  # validated before torch is imported
    root = check_output_dir(o.root)
    check_memory(cfg.memory_bytes(), 1, f"--steps {cfg.steps}")
    torch = _import_torch("train")

    from deep.algorithm import resolve_device, train_run
    from deep.config import run_dir

    resolve_device(cfg.device)  # an unusable device is refused before the run directory is made
    torch.set_num_threads(o.threads)
    t0 = time.perf_counter()
    before = run_dir(root, cfg).done_position()
    path = train_run(cfg, root=root, progress=o.progress, wait=o.wait)
    note = " (already finished: nothing to do)" if before is not None and before >= cfg.steps else ""
    print(f"{cfg.env} {cfg.method} seed {cfg.seed}: {_summary(path, time.perf_counter() - t0)}{note}")
    return 0


# ---- sweep ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepOptions:
    envs: tuple[str, ...] = ("pendulum-mbbl", "cartpole-mbbl", "acrobot-mbbl")
    """environments (any of deep.config.ENV_NAMES; default: the paper's classic-control tasks)"""
    methods: tuple[str, ...] = METHOD_NAMES
    """model objectives"""
    seeds: int = 3
    """seeds per (env, method): first_seed .. first_seed + K - 1"""
    first_seed: int = 0
    """the first seed (a selection sweep takes seeds disjoint from the reported runs', e.g. 100)"""
    steps: int = 200_000
    """real steps of every run"""
    stages: tuple[int, ...] = ()
    """step budgets run in turn over the whole grid (runs resume from their checkpoints); empty: just --steps"""
    alpha_sweep: bool = False
    """Appendix C: 9 log-spaced alphas per value-aware method, times the seeds"""
    alpha_from: str | None = None
    """run root of an alpha sweep: its selected alpha (highest mean final return) replaces Table 1's for the
    (env, method) pairs it swept"""
    root: str = "runs"
    """run root"""
    cpus: int | None = None
    """CPUs of the local Ray started for the sweep, one trial each (None: all of this machine's)"""
    address: str | None = None
    """an existing Ray cluster (host:port or ray://host:port) instead of a local Ray"""
    wait: bool = False
    """wait for runs another process is working in, instead of stopping"""
    dry_run: bool = False
    """print the runs only"""

    def __post_init__(self):
        if self.cpus is not None:
            check_int("cpus", self.cpus, 1)


_SWEEP_OWN = frozenset({"env", "method", "seed", "steps", "alpha", "lam"})


def run_sweep(values: dict) -> int:
    """Many deep runs as Ray Tune trials, finished ones skipped, one step budget (stage) at a time.

    modeladv sweep --envs pendulum-mbbl cartpole-mbbl acrobot-mbbl --seeds 5 --stages 50000 200000 --cpus 2
    modeladv sweep --envs pendulum-mbbl --methods ma_l1 ma_vaml --alpha-sweep --steps 50000   # Appendix C
    modeladv sweep --address head-node:6379 ...                                 # on an existing Ray cluster

    Trials run through Ray Tune (the sweep extra); a killed sweep rerun skips finished runs and resumes the rest.
    """
    from deep.sweep import plan, run_plan

    o = SweepOptions(**values_for(SweepOptions, values))
    over = values_for(RunConfig, values, skip=_SWEEP_OWN)
    alphas = None
    if o.alpha_from:
        from deep.plot import alpha_table

        if not Path(o.alpha_from).is_dir():
            raise ValueError(f"--alpha-from {o.alpha_from} does not exist")
        alphas = {(r["env"], r["method"]): r["alpha"] for r in alpha_table(o.alpha_from) if r["selected"]}
        if not alphas:
            raise ValueError(f"--alpha-from {o.alpha_from} holds no alpha-sweep runs")
        print("alpha from the sweep: " + ", ".join(f"{e} {m} {a:g}" for (e, m), a in sorted(alphas.items())))
    cfgs = plan(o.envs, o.methods, o.seeds, o.stages or (o.steps,), o.alpha_sweep, o.first_seed, alphas, **over)
    if o.dry_run:
        for c in cfgs:
            print(f"{c.env} {c.method} seed {c.seed} steps {c.steps} alpha {c.alpha:g} lam {c.lam:g}")
        return 0
    root = check_output_dir(o.root)
    check_memory(max(c.memory_bytes() for c in cfgs), o.cpus or os.cpu_count() or 1, "the sweep's largest run")
    _import_torch("sweep")
    from deep.algorithm import resolve_device

    for device in sorted({c.device for c in cfgs}):
        resolve_device(device)  # refused here, not in every trial
    run_plan(cfgs, root, o.cpus, o.address, o.wait)
    if o.alpha_sweep:
        from deep.plot import alpha_table, format_alpha_table, plot_alpha_sweep

        print(format_alpha_table(alpha_table(root)))
        print(f"figure: {plot_alpha_sweep(root, default_figure(root, 'alpha_sweep'))}")
    return 0


# ---- plot -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlotOptions:
    experiment: str = "gridworld"
    """which experiment's figures: gridworld, deep (return curves) or alpha (an Appendix C sweep)"""
    root: str = "runs"
    """run root holding <experiment>/"""
    figure: str | None = None
    """figure path (None: <root>/figures/gridworld_<sizes>.png, deep_<envs>.png or alpha_sweep.png, so committed
    figures are never overwritten by default)"""


def run_plot(values: dict) -> int:
    """Figures from run logs (config.json + metrics.csv) only; written under <root>/figures/ unless --figure.

    modeladv plot --experiment gridworld --root runs
    modeladv plot --experiment deep --root results --figure /tmp/fig2.png
    """
    from lab.config import check_choice

    o = PlotOptions(**values_for(PlotOptions, values))
    check_choice("experiment", o.experiment, ("gridworld", "deep", "alpha"))
    root = Path(o.root)
    if not root.is_dir():
        raise ValueError(f"run root {root} does not exist")
    from lab.rundir import find_runs

    keys = {"gridworld": "size", "deep": "env", "alpha": None}[o.experiment]
    found = {cfg[keys] for cfg, _ in find_runs(root, "gridworld" if keys == "size" else "deep")} if keys else ()
    name = "alpha_sweep" if o.experiment == "alpha" else o.experiment
    figure = check_figure_path(o.figure or default_figure(root, name, found))
    if o.experiment == "gridworld":
        from gridworld.report import collect, format_table, plot_diagnostics, plot_returns, summarize

        runs = collect(root)
        if not runs:
            raise ValueError(f"no gridworld runs with metrics under {root}")
        print(format_table(summarize(runs)))
        print(f"figure: {plot_returns(runs, figure)}")
        print(f"figure: {plot_diagnostics(runs, figure.with_name(figure.stem + '_diagnostics' + figure.suffix))}")
    elif o.experiment == "alpha":
        from deep.plot import alpha_table, format_alpha_table, plot_alpha_sweep

        rows = alpha_table(root)
        if not any(r["selected"] for r in rows):
            raise ValueError(f"no alpha sweep under {root}: every (env, method) there ran a single alpha")
        print(format_alpha_table(rows))
        print(f"figure: {plot_alpha_sweep(root, figure)}")
    else:
        from deep.plot import plot_runs

        print(f"figure: {plot_runs(root, figure)}")
    return 0


# ---- explain --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplainOptions:
    env: str = "frozenlake"
    """frozenlake, frozenlake8x8, cliffwalking, taxi (Gymnasium toy text) or gridworld"""
    policy: str = "optimal"
    """optimal (in the true model), uniform, run (the --run's final policy) or a .npy (S, A) file"""
    noise: float = 0.1
    """second model = the true one perturbed at this level (each row mixed with a Dirichlet(1) draw), in [0, 1]"""
    run: str | None = None
    """a finished gridworld run directory: its learned model is the second model (with --env gridworld)"""
    size: int = 8
    """gridworld size, walls included (without --run)"""
    gamma: float = 0.95
    """discount of the tabular models (a --run uses its own)"""
    seed: int = 0
    """seed of the perturbation"""
    top: int = 10
    """how many leading transitions to print"""
    figure: str | None = None
    """figure path (None: runs/figures/explain_<env>.png)"""

    def __post_init__(self):
        from gridworld.layout import GridLayout

        from .explain import ENVS

        check_choice("env", self.env, tuple(ENVS))
        check_float("noise", self.noise, 0.0, 1.0)
        check_float("gamma", self.gamma, 0.0, 1.0, high_open=True)
        check_int("seed", self.seed, 0)
        check_int("top", self.top, 0)
        GridLayout(self.size)


def run_explain(values: dict) -> int:
    """Lemma 1 state by state: where J_M - J_M2 comes from, for a small MDP, a policy and a second model.

    modeladv explain                                                  # FrozenLake, optimal policy, noise 0.1
    modeladv explain --env cliffwalking --policy uniform --noise 0.3
    modeladv explain --env gridworld --run runs/gridworld/<hash>/seed0 --policy run   # a learned model

    Prints Lemma 1's two sides, its residual and the leading transitions; writes one figure.
    """
    from tabular.explain import explain

    from .explain import load_problem, plot_explanation

    o = ExplainOptions(**values_for(ExplainOptions, values))
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


def _cmd(name: str, help_: str, run, *flags: tuple[type, frozenset]) -> Command:
    import inspect

    return Command(name, help_, inspect.getdoc(run) or help_, tuple(flags), run)


NONE: frozenset = frozenset()

#: name -> Command, in ``modeladv --help`` order
COMMANDS: dict[str, Command] = {c.name: c for c in (
    _cmd("verify", "check Lemma 1 / Corollary 2 numerically and show the printed errata failing", run_verify,
         (VerifyOptions, NONE)),
    _cmd("gridworld", "run the Figure-1 gridworld experiment (tabular MBRL with A2C)", run_gridworld,
         (GridworldOptions, NONE), (GridConfig, _GRID_OWN)),
    _cmd("train", "train one deep value-aware MBRL run (Algorithm 2 with TRPO)", run_train,
         (TrainOptions, NONE), (RunConfig, NONE)),
    _cmd("sweep", "run many deep runs as Ray Tune trials (the Appendix C protocol)", run_sweep,
         (SweepOptions, NONE), (RunConfig, _SWEEP_OWN)),
    _cmd("plot", "draw figures from run logs", run_plot, (PlotOptions, NONE)),
    _cmd("explain", "draw Lemma 1 state by state for a toy-text MDP or the gridworld and a second model",
         run_explain, (ExplainOptions, NONE)),
)}
