"""Select the gridworld's model learning rate and initial model per (method, size) on seeds 100-102.

    python figures/select_fig1.py                 # run what is missing (2 workers), table, figure
    python figures/select_fig1.py --no-run        # table and figure from the committed logs only

Runs go to ``results/gridworld_select/gridworld/``; the rule is stated in :mod:`gridworld.selection`.
Writes ``figures/fig1_selection.png`` (AUC of the exact return vs model_lr, log axis, mean ± s.e.m. over the
three selection seeds, one panel per size, solid N(0, 1) and dashed uniform initial model) and prints the table
with the selected settings next to :data:`gridworld.config.SELECTED`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "results" / "gridworld_select"))
    parser.add_argument("--figure", default=str(REPO / "figures" / "fig1_selection.png"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--no-run", dest="run", action="store_false", help="only read the logs")
    args = parser.parse_args(argv)

    from lab.plot import color, label
    from gridworld.config import SELECTED
    from gridworld.runner import run_all
    from gridworld.selection import INIT_GRID, LR_GRID, score_table, select, selection_configs

    if args.run:
        run_all(selection_configs(args.sizes), args.root, workers=args.workers)
    rows = score_table(args.root)
    if not rows:
        parser.error(f"no selection runs under {args.root}")
    chosen = select(rows)
    print("| grid | method | " + " | ".join(f"lr {lr:g} N(0,1) / uniform" for lr in LR_GRID) + " | selected | in SELECTED |")
    print("|" + "---|" * (len(LR_GRID) + 4))
    for (size, method), best in chosen.items():
        cells = []
        for lr in LR_GRID:
            v = [next((r for r in rows if (r["size"], r["method"], r["model_lr"], r["model_init_scale"])
                       == (size, method, lr, i)), None) for i in INIT_GRID]
            cells.append(" / ".join(f"{r['auc']:.3f}" if r else "-" for r in v))
        init = "N(0,1)" if best[1] else "uniform"
        ok = "yes" if SELECTED.get((size, method)) == best else f"NO: {SELECTED.get((size, method))}"
        print(f"| {size}x{size} | {label(method)} | " + " | ".join(cells) + f" | lr {best[0]:g}, {init} | {ok} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 3.8), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for method in dict.fromkeys(r["method"] for r in rows):
            for init, ls in zip(INIT_GRID, ("-", "--")):
                sel = sorted((r for r in rows if (r["size"], r["method"], r["model_init_scale"]) == (size, method, init)),
                             key=lambda r: r["model_lr"])
                if not sel:
                    continue
                x = [r["model_lr"] for r in sel]
                y = [r["auc"] for r in sel]
                e = [r["sem"] for r in sel]
                n = min(r["n"] for r in sel)
                ax.errorbar(x, y, yerr=e, ls=ls, marker="o", ms=3, capsize=2, color=color(method),
                            label=f"{label(method)}, {'N(0,1)' if init else 'uniform'} init (n={n})")
            if (size, method) in chosen:
                lr, init = chosen[(size, method)]
                r = next(r for r in rows if (r["size"], r["method"], r["model_lr"], r["model_init_scale"])
                         == (size, method, lr, init))
                ax.plot([lr], [r["auc"]], marker="*", ms=13, color=color(method), mec="k", zorder=5)
        ax.set_xscale("log")
        ax.set_xlabel("model learning rate")
        ax.set_ylabel("AUC of exact return (mean return over budget)")
        ax.set_title(f"{size}x{size}: selection seeds 100-102 (star: selected)")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=130)
    print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
