"""The Figure-1 experiment's report from its logs alone (``config.json`` + ``metrics.csv``): the summary table
(steps to return > 1 and to 95 % of the optimum, AUC, final return; mean ± s.e.m. over seeds) and the figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from modeladv.plot import color, label
from modeladv.rundir import RunDir, config_hash, find_runs, read_metrics

from .config import METHODS
from .layout import GridLayout
from .mbrl import EXPERIMENT, FINAL_CELLS

__all__ = ["collect", "summarize", "format_table", "plot_returns", "plot_diagnostics", "plot_final_cells"]


# ---- reading logs ---------------------------------------------------------------------------------------
def collect(root: str | os.PathLike, paths: Sequence[Path] | None = None) -> dict[int, dict[str, list[dict]]]:
    """``runs[size][method] = [metrics of each seed]`` from the logs (``config.json`` + ``metrics.csv``).

    ``root`` may hold ``gridworld/`` or be that directory. With ``paths``, only those run directories. When a
    (size, method) group holds runs of several configs, the config with the most seeds is kept.
    """
    root = Path(root)
    if paths is None:
        base = root / EXPERIMENT if (root / EXPERIMENT).is_dir() else root
        found = [(cfg, p) for cfg, p in find_runs(base) if "method" in cfg and "size" in cfg]
    else:
        found = []
        for p in paths:
            cfg = RunDir(p).read_config()
            if cfg is not None and (Path(p) / "metrics.csv").exists():
                found.append((cfg, Path(p)))
    groups: dict[tuple, dict[str, list]] = {}
    for cfg, p in found:
        if not (p / "metrics.csv").exists():
            continue
        m = read_metrics(p)
        if len(m.get("steps", ())) == 0:
            continue
        m["_path"] = p
        m["_max_steps"] = cfg.get("max_steps")
        groups.setdefault((int(cfg["size"]), cfg["method"]), {}).setdefault(config_hash(cfg), []).append(m)
    out: dict[int, dict[str, list[dict]]] = {}
    for (size, method), by_hash in sorted(groups.items()):
        out.setdefault(size, {})[method] = max(by_hash.values(), key=len)
    for size in out:  # plotting order
        out[size] = {m: out[size][m] for m in METHODS if m in out[size]}
    return out


def _first_above(steps: np.ndarray, y: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(y > level)
    return float(steps[hit[0]]) if len(hit) else float("inf")


def summarize(runs: Mapping[int, Mapping[str, list[dict]]], key: str = "return_exact", level: float = 1.0,
              near: float = 0.95) -> list[dict]:
    """Per (size, method), mean ± s.e.m. over seeds of: the real steps until ``key`` first exceeds ``level``
    (``first``) and ``near`` x the optimal return (``first_near``) — a seed that never does counts as its
    budget and is counted in ``censored``/``censored_near`` —, the normalized area under the curve (trapezoid
    of ``key`` over steps / total steps: the mean return over the budget) and the final value.

    ``key="return_exact"`` is the exact expectation of the evaluation-episode mean ``"return"`` (no noise)."""
    rows = []
    for size, by_method in runs.items():
        for method, seeds in by_method.items():
            first, first_near, auc, final = [], [], [], []
            censored = censored_near = 0
            # each run's own optimum: the best return depends on its time limit
            bests = [GridLayout(size, m.get("_max_steps")).best_return for m in seeds]
            for m, best in zip(seeds, bests):
                x, y = m["steps"], m[key]
                f, g = _first_above(x, y, level), _first_above(x, y, near * best)
                censored += not np.isfinite(f)
                censored_near += not np.isfinite(g)
                first.append(f if np.isfinite(f) else float(x[-1]))
                first_near.append(g if np.isfinite(g) else float(x[-1]))
                auc.append(float(np.trapezoid(y, x) / (x[-1] - x[0])) if x[-1] > x[0] else float(y[-1]))
                final.append(float(y[-1]))

            def ms(v):
                v = np.asarray(v, float)
                return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)

            rows.append(dict(size=size, method=method, n=len(seeds), budget=float(min(m["steps"][-1] for m in seeds)),
                             optimum=float(np.mean(bests)), first=ms(first), censored=censored, first_near=ms(first_near),
                             censored_near=censored_near, auc=ms(auc), final=ms(final)))
    return rows


def format_table(rows: Sequence[dict], markdown: bool = False) -> str:
    """The summary as a plain or markdown table."""
    head = ["grid", "method", "seeds", "steps to return > 1", "steps to 95% of optimum", "AUC (mean return)",
            "final return"]
    lines = []
    for r in rows:
        def steps(v, n):
            return f"{v[0]:.0f} ± {v[1]:.0f}" + (f" ({n} never)" if n else "")

        lines.append([f"{r['size']}x{r['size']}", label(r["method"]), str(r["n"]),
                      steps(r["first"], r["censored"]), steps(r["first_near"], r["censored_near"]),
                      f"{r['auc'][0]:.3f} ± {r['auc'][1]:.3f}", f"{r['final'][0]:.3f} ± {r['final'][1]:.3f}"])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(l) + " |" for l in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*l) for l in lines])


# ---- figures ------------------------------------------------------------------------------------------
def _curves(by_method: Mapping[str, list[dict]], key: str, transform=None) -> dict:
    f = transform or (lambda v: v)
    return {label(m): [(r["steps"], f(r[key])) for r in seeds] for m, seeds in by_method.items()}


def _colors() -> dict:
    return {label(m): color(m) for m in METHODS}


def plot_returns(runs: Mapping[int, Mapping[str, list[dict]]], out: str | os.PathLike, render: bool = True,
                 key: str = "return", title: str | None = None) -> Path:
    """Figure 1: (left) the rendered 8x8 environment, then return vs real steps per grid size, mean ± s.e.m.
    over seeds; the dashed line at 1 separates reaching the goal (above) from not (below)."""
    from modeladv.plot import plot_learning_curves, pyplot, save_figure

    from .layout import render_layout

    plt = pyplot()
    if not runs:
        raise ValueError("no gridworld runs with metrics to plot")
    sizes = sorted(runs)
    n = len(sizes) + bool(render)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    axes = list(axes[0])
    if render:
        ax = axes.pop(0)
        ax.imshow(render_layout(GridLayout(8)))  # the paper's left panel: the 8x8 environment
        ax.set_axis_off()
        ax.set_title("8x8 gridworld (MiniGrid renderer)")
    for ax, size in zip(axes, sizes):
        plot_learning_curves(ax, _curves(runs[size], key), ylabel="return (real env)", title=f"{size}x{size}",
                             colors=_colors())
        ax.axhline(1.0, color="k", ls="--", lw=0.8)
    axes[-1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out, dpi=130)


def plot_diagnostics(runs: Mapping[int, Mapping[str, list[dict]]], out: str | os.PathLike) -> Path:
    """Exact diagnostics vs real steps, one row per grid size: the true gap ``|J_M*(pi) - J_Mphi(pi)|``, the
    expected model advantage ``E_{d_M*} E_{P_M*}[A_Mphi]`` and the model's L1 error on the visited states."""
    from modeladv.plot import plot_learning_curves, pyplot, save_figure

    plt = pyplot()
    if not runs:
        raise ValueError("no gridworld runs with metrics to plot")
    sizes = sorted(runs)
    panels = [("gap", "|J_M*(π) − J_Mφ(π)|"), ("ema", "E[A_Mφ] (expected model advantage)"),
              ("model_l1", "E_d,π ||P_φ − P*||₁")]
    fig, axes = plt.subplots(len(sizes), len(panels), figsize=(4.3 * len(panels), 3.3 * len(sizes)), squeeze=False)
    for i, size in enumerate(sizes):
        for j, (key, label) in enumerate(panels):
            plot_learning_curves(axes[i, j], _curves(runs[size], key), ylabel=label, title=f"{size}x{size}",
                                 colors=_colors())
            if key == "ema":
                axes[i, j].axhline(0.0, color="k", lw=0.6)
    axes[0, -1].legend(fontsize=7)
    return save_figure(fig, out)


def plot_final_cells(runs: Mapping[int, Mapping[str, list[dict]]], out: str | os.PathLike, size: int | None = None,
                     seed_index: int = 0) -> Path:
    """Heatmaps over the grid of the final policy of one seed per method (``final_cells.csv``): top, its
    discounted occupancy ``d_{M*,pi}``; bottom, the per-state model advantage ``E_{P*} A_{M_phi}(s, .)`` —
    large where the learned model misjudges the value of where ``pi`` goes; only ``d``-weighted errors count."""
    from modeladv.plot import plot_grid_heatmap, pyplot, save_figure

    plt = pyplot()
    size = max(runs) if size is None else size
    cells = {}
    for method, seeds in runs.get(size, {}).items():
        if len(seeds) > seed_index and (Path(seeds[seed_index]["_path"]) / FINAL_CELLS).exists():
            cells[method] = read_metrics(Path(seeds[seed_index]["_path"]) / FINAL_CELLS)
    if not cells:
        raise ValueError(f"no finished {size}x{size} runs with {FINAL_CELLS}")
    fig, axes = plt.subplots(2, len(cells), figsize=(2.9 * len(cells), 5.4), squeeze=False)
    lim = max(float(np.abs(c["ma"]).max()) for c in cells.values()) or 1.0
    for j, (method, c) in enumerate(cells.items()):
        plot_grid_heatmap(axes[0, j], c["d"], title=f"{label(method)}\nd(s) of final π", cmap="magma")
        plot_grid_heatmap(axes[1, j], c["ma"], title="E_P* A_Mφ(s, ·)", cmap="coolwarm", vmin=-lim, vmax=lim)
    fig.suptitle(f"{size}x{size}, seed {seed_index}: where the final policy goes, and the model's value errors there",
                 fontsize=9)
    return save_figure(fig, out)
