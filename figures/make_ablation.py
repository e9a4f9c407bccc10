"""Issue 20's ablation from committed logs: which divergence from the authors' loop decides MA-L1 vs MLE.

Reads only ``config.json``, ``metrics.csv`` and ``evaluation.csv``: every run under the roots whose config is
an ablation cell (``deep.ablation.cell_of``), read at ``--step``: a seed's final return is the evaluation of its
policy there (``modeladv evaluate``; the figure) and its training episodes' mean return over the last 10K real
steps. Writes the figure, beside it ``<figure>_curves.png`` (return vs real steps per cell), and prints the
markdown tables (Welch intervals, Holm over each column) and the runs left out.

Usage: ``python figures/make_ablation.py [--root results/ablation_protocol results/mujoco_slbo] [--step 100000]
[--envs hopper-slbo hopper] [--figure figures/ablation_protocol.png] [--table results/ablation_protocol/ablation.md]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deep.ablation import curves, markdown, plot, plot_curves, seed_finals, table

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", nargs="+", default=[str(RESULTS / "ablation_protocol"), str(RESULTS / "mujoco_slbo")],
                   help="run roots (a seed may be in one of them only; the authors' cell runs on to 200K in "
                        "mujoco_slbo)")
    p.add_argument("--step", type=float, default=100_000, help="real-step budget the cells are read at")
    p.add_argument("--envs", nargs="+", default=["hopper-slbo", "hopper"], help="environments, in column order")
    p.add_argument("--figure", default=str(HERE / "ablation_protocol.png"), help="figure path")
    p.add_argument("--table", default=None, help="also write the markdown table (and the missing runs) here")
    args = p.parse_args(argv)
    missing = [r for r in args.root if not Path(r).is_dir()]
    if missing:
        p.exit(2, f"make_ablation: run root {missing[0]} does not exist\n")
    order = {e: i for i, e in enumerate(args.envs)}
    sections, figure_rows, found = [], None, set()
    for measure in ("eval", "return"):
        finals, short = seed_finals(args.root, args.step, envs=args.envs, measure=measure)
        finals = dict(sorted(finals.items(), key=lambda kv: order[kv[0][0]]))
        found |= {env for env, _, _ in finals}
        rows = table(finals)
        if figure_rows is None and rows:
            figure_rows = rows
        n_gap = sum(r.gap is not None and r.gap.p == r.gap.p for r in rows)  # NaN p: no test
        n_change = sum(r.change is not None and r.change.p == r.change.p for r in rows)
        what = (f"the evaluation at {args.step / 1000:.0f}K real steps (`modeladv evaluate`: the policy without "
                f"exploration noise on 4 fresh environments x 2500 steps, mean over finished episodes; the "
                f"authors' measure)" if measure == "eval" else
                f"the training episodes' return over the last 10K real steps before {args.step / 1000:.0f}K "
                f"(with the run's exploration noise, if any)")
        text = (f"### Final return: {what}\n\nMean ± s.e.m. over seeds. Gap and change: 95% Welch t intervals, "
                f"two-sided Welch p; Holm over each column: the {n_gap} gap tests, the {n_change} change tests."
                f"\n\n" + markdown(rows))
        if short:
            text += "\n\nLeft out (not at the step):\n\n" + "\n".join(f"- {s}" for s in short)
        sections.append(text)
    if not found:
        p.exit(2, f"make_ablation: no ablation runs of {', '.join(args.envs)} at {args.step:g} steps under "
                  f"{', '.join(args.root)}\n")
    text = "\n\n".join(sections)
    print(text)
    if figure_rows:
        print(plot(figure_rows, args.figure, step=args.step))
    figure = Path(args.figure)
    print(plot_curves(curves(args.root, args.step, envs=args.envs), figure.with_name(f"{figure.stem}_curves.png"),
                      envs=[e for e in args.envs if e in found]))
    if args.table:
        Path(args.table).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
