"""``modeladv plot``: figures from run logs (config.json + metrics.csv) only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lab.guards import check_figure_path

from .commands import default_figure

__all__ = ["Args", "run", "report_alpha_sweep"]


@dataclass(frozen=True)
class Args:
    """Figures from run logs (config.json + metrics.csv) only; written under <root>/figures/ unless --figure.

    For example:

        modeladv plot --experiment gridworld --root runs
        modeladv plot --experiment deep --root results --figure /tmp/fig2.png
    """

    experiment: Literal["gridworld", "deep", "alpha"] = "gridworld"
    """which experiment's figures: gridworld, deep (return curves) or alpha (an Appendix C sweep)"""
    root: str = "runs"
    """run root holding <experiment>/"""
    figure: str | None = None
    """figure path (None: <root>/figures/gridworld_<sizes>.png, deep_<envs>.png or alpha_sweep.png, so committed
    figures are never overwritten by default)"""


def report_alpha_sweep(root: str | Path, figure: str | Path) -> None:
    """Print the Appendix C table of an alpha sweep under ``root`` and draw its figure."""
    from deep.plot import alpha_table, format_alpha_table, plot_alpha_sweep

    rows = alpha_table(root)
    if not any(r["selected"] for r in rows):
        raise ValueError(f"no alpha sweep under {root}: every (env, method) there ran a single alpha")
    print(format_alpha_table(rows))
    print(f"figure: {plot_alpha_sweep(root, figure)}")


def run(o: Args) -> int:
    from lab.rundir import find_runs

    root = Path(o.root)
    if not root.is_dir():
        raise ValueError(f"run root {root} does not exist")
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
        report_alpha_sweep(root, figure)
    else:
        from deep.plot import plot_runs

        print(f"figure: {plot_runs(root, figure)}")
    return 0
