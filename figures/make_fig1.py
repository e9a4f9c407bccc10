"""Regenerate Figure 1 (Sec. 4.1) and its diagnostics from the committed logs only (no training).

    python figures/make_fig1.py                     # reads results/gridworld/, writes figures/fig1_*.png
    python figures/make_fig1.py --root runs --out-dir /tmp/figs

The logs come from the full run at the selected settings (259 s on two cores, see docs/gridworld_results.md):

    modeladv gridworld --size 8 16 --seeds 10 --root results --figure figures/fig1_gridworld.png

and, when present, the controls under ``results/ablation_*/`` get their table and a ``fig1_ablation_*.png``.

Writes ``fig1_gridworld.png`` (left: the rendered 8x8 environment; middle/right: return vs real steps on 8x8
and 16x16, five methods, mean ± s.e.m. over seeds), ``fig1_diagnostics.png`` (exact gap, expected model
advantage and model error vs steps) and ``fig1_cells.png`` (per-cell heatmaps of the final 16x16 policies), and
prints the results table and the paper's claims over seeds (``claims_table``) in markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gridworld.report import (claims_table, collect, format_table, plot_diagnostics, plot_final_cells,
                                     plot_returns, summarize)

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "results"), help="log root holding gridworld/")
    parser.add_argument("--out-dir", default=str(REPO / "figures"), help="where the figures go")
    args = parser.parse_args(argv)
    runs = collect(Path(args.root) / "gridworld") if (Path(args.root) / "gridworld").is_dir() else {}
    if not runs:
        parser.error(f"no gridworld logs under {args.root}")
    out = Path(args.out_dir)
    print(format_table(summarize(runs), markdown=True))
    print("\nThe paper's Figure-1 claims over seeds (bootstrap intervals, Welch tests):\n")
    print(claims_table(runs))
    for path in (plot_returns(runs, out / "fig1_gridworld.png"), plot_diagnostics(runs, out / "fig1_diagnostics.png"),
                 plot_final_cells(runs, out / "fig1_cells.png")):
        print(f"wrote {path}")
    for ablation in sorted(Path(args.root).glob("ablation_*")):  # controls run beside Figure 1, if present
        abl = collect(ablation)
        print(f"\n{ablation.name}\n{format_table(summarize(abl), markdown=True)}")
        title = ablation.name.replace("ablation_", "control: ").replace("_", " ")
        print(f"wrote {plot_returns(abl, out / f'fig1_{ablation.name}.png', render=False, title=title)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
