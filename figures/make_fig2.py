"""Figure 2 (a row of it) or Figure 3 from the committed logs of deep runs (default: results/deep/).

Reads only ``config.json``, ``metrics.csv`` and ``evaluation.csv`` files; draws return vs real steps, mean ± s.e.m.
over seeds, and prints a markdown table of final returns, stating seeds and step budgets as measured: with
``--measure return`` (default) mean ± s.e.m. of each seed's last 5 logged iterations (the training episodes, with
the run's exploration noise) at the largest step every seed of that (env, method) reached; with ``--measure eval``
the curves are the recorded evaluations and the table holds the evaluation each run recorded at ``--at-step``, or
its mean over ``(at-step - eval-window, at-step]`` (``--evaluate-every`` or ``modeladv evaluate``: the authors'
measure, no noise).

Usage: ``python figures/make_fig2.py [--root results/deep] [--figure figures/fig2_classic.png] [--envs E ...]
[--measure eval --at-step 200000 [--eval-window 50000]]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from deep.plot import (ENV_ORDER, EVAL_KEY, collect_curves, curve_name, curve_order, eval_finals, plot_runs,
                       seed_finals, summary)
from lab.plot import label
from lab.stats import compare, with_holm

#: the paper's Sec. 4.2 claims as (claim, method a, method b): "a beats / matches b"
CLAIMS = (("MA-L1 beats MA-VAML", "ma_l1", "ma_vaml"), ("VPS helps MA-L1", "ma_l1_vps", "ma_l1"),
          ("MA-L1 comparable to SLBO (the paper's baseline)", "ma_l1", "slbo"),
          ("MA-L1 comparable to MLE", "ma_l1", "mle"))

HERE = Path(__file__).resolve().parent


def table(finals, fmt: str = "{:.0f} ± {:.0f}") -> str:
    """Markdown table env x method (curve label) of ``finals`` (:func:`seed_finals` or :func:`eval_finals`;
    mean ± s.e.m. over seeds, the seed count and the step)."""
    fin = summary(finals)
    labels = {m for _, m in finals}
    cols = sorted(labels, key=curve_order)
    names = [curve_name(m) for m in cols]
    lines = ["| env | " + " | ".join(names) + " |", "|---" * (len(cols) + 1) + "|"]
    for env in [e for e in ENV_ORDER if any(k[0] == e for k in finals)]:
        cells = []
        for m in cols:
            if (env, m) in fin:
                mean, sem, n, step = fin[(env, m)]
                cells.append(fmt.format(mean, sem) + f" (n={n}, {step / 1000:g}K)")
            else:
                cells.append("not run")
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims(fin) -> str:
    """Markdown table: per paper claim and env, the difference of final returns (a - b; ``fin`` as
    :func:`seed_finals` of the return or :func:`eval_finals`) over seeds with its 95% interval (Welch's t with 5
    seeds or fewer), the two-sided Welch p-value, and that p after Holm's correction over every test in the table,
    on which the verdict rests."""
    shown = [e for e in ENV_ORDER if any(k[0] == e for k in fin)]
    rows = [(text, env, a, compare(fin[(env, a)][0], fin[(env, b)][0]))
            for text, a, b in CLAIMS for env in shown if (env, a) in fin and (env, b) in fin]
    tested = with_holm([c for *_, c in rows])
    n_tests = int(sum(np.isfinite(c.p) for c in tested))
    lines = [f"| claim | env | a − b (final return) | verdict (Holm over the {n_tests} test{'s' * (n_tests != 1)} "
             "of this table) |", "|---|---|---|---|"]
    for (text, env, a, _), c in zip(rows, tested):
        lines.append(f"| {text} | {env} | {c} | {label(a)} {c.verdict()} |")
    return "\n".join(lines)


def plot_finals(fin, out, ylabel: str, window: float = 0.0):
    """One panel per env of ``fin`` (:func:`seed_finals` or :func:`eval_finals`): each method's seeds and mean ±
    s.e.m. (:func:`lab.plot.plot_seed_finals`); ``window`` > 0 titles each panel with the span of real steps its
    finals average (``--eval-window``)."""
    from lab.plot import color, plot_seed_finals, pyplot, save_figure

    envs = [e for e in ENV_ORDER if any(k[0] == e for k in fin)]
    most = max(sum(e == env for e, _ in fin) for env in envs)  # columns of the widest panel
    fig, axes = pyplot().subplots(1, len(envs), figsize=(max(4.2, 0.9 * most + 0.9) * len(envs), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs):
        keys = sorted((m for e, m in fin if e == env), key=curve_order)
        step = max(fin[(env, m)][1] for m in keys)
        when = (f"mean over ({(step - window) / 1000:g}K, {step / 1000:g}K]" if window > 0
                else f"at {step / 1000:g}K")
        plot_seed_finals(ax, {curve_name(m): fin[(env, m)][0] for m in keys}, ylabel=ylabel,
                         title=f"{env}\n{when} real steps",
                         colors={curve_name(m): color(m.partition("+")[0]) for m in keys})
    return save_figure(fig, out)


def speed_table(curves) -> str:
    """Markdown table env x method of the logged wall time (``curves`` of the runs' own ``wall_s``, summed over
    resumes) per 10K real steps, mean over seeds, and the minutes that makes per 200K."""
    lines = ["| env | method | seeds | s per 10K real steps | min per 200K |", "|---|---|---|---|---|"]
    for env in [e for e in ENV_ORDER if e in curves]:
        for m in sorted(curves[env], key=curve_order):
            per10k = [float(y[-1]) / float(x[-1]) * 1e4 for x, y in curves[env][m]]
            mean = sum(per10k) / len(per10k)
            lines.append(f"| {env} | {curve_name(m)} | {len(per10k)} | {mean:.1f} | {mean * 20 / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", nargs="+", default=[str(HERE.parent / "results" / "deep")],
                   help="run root(s); several are drawn together")
    p.add_argument("--figure", default=str(HERE / "fig2_classic.png"), help="figure path")
    p.add_argument("--at-step", type=float, default=None, help="tables at this step (default: the last common)")
    p.add_argument("--envs", nargs="+", default=None, help="these environments only (default: all logged)")
    p.add_argument("--finals-figure", default=None,
                   help="also draw the final returns of the table (seeds as dots, mean ± s.e.m.) to this path")
    p.add_argument("--measure", choices=("return", "eval"), default="return",
                   help="final returns: the training episodes' (return) or the recorded evaluation at --at-step (eval)")
    p.add_argument("--eval-window", type=float, default=0.0, metavar="STEPS",
                   help="with --measure eval: each run's mean of its evaluations in (at-step - STEPS, at-step] "
                        "(default 0: the one at --at-step)")
    args = p.parse_args(argv)
    if args.measure == "eval" and args.at_step is None:
        p.error("--measure eval needs --at-step (the step of the evaluations to compare)")
    if not args.eval_window >= 0:
        p.error(f"--eval-window must be >= 0 real steps, got {args.eval_window:g}")
    if args.measure == "eval":
        fin, missing = eval_finals(args.root, args.at_step, envs=args.envs, window=args.eval_window)
        for line in missing:
            print(f"left out: {line}", file=sys.stderr)
        if not fin:
            p.error(f"no evaluation at {args.at_step:g} steps under {' '.join(args.root)} (modeladv evaluate, or "
                    "--evaluate-every, records them)")
    key = EVAL_KEY if args.measure == "eval" else "return"
    curves = collect_curves(args.root, key=key, envs=args.envs)  # the title counts what the figure draws
    n_seeds = sorted({len(r) for by_m in curves.values() for r in by_m.values()})
    budget = sorted({int(max(x[-1] for x, _ in r)) for by_m in curves.values() for r in by_m.values()})
    from deep.config import SLBO_ENV_NAMES
    from deep.envs import _MUJOCO

    mujoco = bool(set(curves) & (set(_MUJOCO) | set(SLBO_ENV_NAMES)))
    title = (f"{'MuJoCo' if mujoco else 'Classic control'} (ours): seeds per curve {n_seeds}, real steps reached "
             f"{budget} (paper: 5 seeds, {'800K' if mujoco else '200K'})")
    print(plot_runs(args.root, args.figure, title=title, envs=args.envs, key=key))
    if args.measure == "eval":
        over = (f"each run's mean of its evaluations after {(args.at_step - args.eval_window) / 1000:g}K up to "
                if args.eval_window > 0 else "")
        print(f"\nEvaluation ({over}{args.at_step / 1000:g}K real steps; 4 environments x 2500 steps, no exploration "
              "noise):\n")
    else:
        fin = seed_finals(curves, at_step=args.at_step)
        print("\nTraining return (each seed's last 5 logged iterations):\n")
    print(table(fin))
    if args.finals_figure:
        print(plot_finals(fin, args.finals_figure, "evaluation return (no exploration noise)"
                          if args.measure == "eval" else "training return (last 5 iterations)",
                          window=args.eval_window if args.measure == "eval" else 0.0))
    print("\nThe paper's claims (a - b over seeds; Welch interval and test, Holm over the table):\n")
    print(claims(fin))
    print("\nOne-step prediction error (mean squared normalized delta error per dimension, latest 1000 real steps):\n")
    print(table(seed_finals(collect_curves(args.root, "one_step_error", args.envs), at_step=args.at_step),
                "{:.2g} ± {:.1g}"))
    print("\nWall time logged by the runs (one torch thread each, two runs sharing two cores):\n")
    print(speed_table(collect_curves(args.root, "wall_s", args.envs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
