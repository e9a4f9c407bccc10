"""modeladv plot: regenerate figures from run logs only (config.json + metrics.csv).

    modeladv plot --experiment gridworld --root runs --out figures/gridworld.png
    modeladv plot --experiment deep --root runs --out figures/fig2_classic.png

The deep figures come from ``deep.plot.main(args)`` (imported lazily; it never imports torch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["configure", "run", "EXPERIMENTS"]


def _gridworld(args: argparse.Namespace) -> int:
    from .experiment import collect, format_table, plot_diagnostics, plot_returns, summarize

    runs = collect(args.root)
    if not runs:
        raise ValueError(f"no gridworld runs with metrics under {args.root}")
    out = Path(args.out or "figures/gridworld.png")
    print(format_table(summarize(runs)))
    print(f"figure: {plot_returns(runs, out)}")
    print(f"figure: {plot_diagnostics(runs, out.with_name(out.stem + '_diagnostics' + out.suffix))}")
    return 0


def _deep(args: argparse.Namespace) -> int:
    from deep.plot import main

    return int(main(args) or 0)


#: experiment -> function(args) -> exit code
EXPERIMENTS = {"gridworld": _gridworld, "deep": _deep}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), default="gridworld",
                        help="which experiment's figures (default gridworld)")
    parser.add_argument("--root", default="runs", help="run root holding <experiment>/ (default runs/)")
    parser.add_argument("--out", default=None, help="figure path (default per experiment)")


def run(args: argparse.Namespace) -> int:
    if not Path(args.root).exists():
        raise ValueError(f"run root {args.root} does not exist")
    return EXPERIMENTS[args.experiment](args)
