"""Plotting shared by every experiment: learning curves with mean ± standard error over seeds, grid heatmaps,
and the one display label and colour of each model-learning objective.

Matplotlib is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["METHOD_LABELS", "METHOD_COLORS", "label", "color", "mean_sem_on_grid", "plot_learning_curves",
           "plot_seed_finals", "plot_grid_heatmap", "pyplot", "save_figure"]

#: Every objective's name (the same in tabular, deep and on the command line) -> the paper's legend name.
#: ``ma_l1`` is Eq. 10, the paper's "MA Upper Bound L1" of Figure 1 and "MA-L1" of Figures 2-3.
METHOD_LABELS = {"mle": "MLE", "slbo": "SLBO", "ma_direct_l1": "MA Direct L1", "ma_direct_l2": "MA Direct L2",
                 "ma_l1": "MA-L1", "ma_l1_vps": "MA-L1 + VPS", "ma_vaml": "MA-VAML", "ma_vaml_vps": "MA-VAML + VPS"}
METHOD_COLORS = {"mle": "tab:gray", "slbo": "tab:purple", "ma_direct_l1": "tab:orange", "ma_direct_l2": "tab:red",
                 "ma_l1": "tab:blue", "ma_l1_vps": "tab:cyan", "ma_vaml": "tab:green", "ma_vaml_vps": "tab:olive"}


def label(method: str) -> str:
    """The display label of an objective (its name when it has none)."""
    return METHOD_LABELS.get(method, method)


def color(method: str) -> str | None:
    return METHOD_COLORS.get(method)


def pyplot():
    """``matplotlib.pyplot``; on the non-interactive Agg backend unless pyplot is already in use (a notebook keeps
    its own backend). The figure functions only ever write files."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out, dpi: int = 120):
    """``tight_layout``, write ``fig`` to ``out`` (parent folders created), close it; returns the ``Path``."""
    from pathlib import Path

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def mean_sem_on_grid(runs: Sequence[tuple[np.ndarray, np.ndarray]], n_points: int = 200):
    """Interpolate each seed's curve ``(x, y)`` onto a common grid and return ``(grid, mean, sem, n)``.

    The grid spans the x-range that *every* seed covers, so the mean never mixes in missing seeds.
    The standard error is ``std(ddof=1)/sqrt(n)`` (zero for one seed).

    Raises:
        ValueError: no runs, or a run with no points.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    for i, (x, y) in enumerate(runs):
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"run {i} has {len(x)} x-values and {len(y)} y-values")
    lo = max(float(np.min(x)) for x, _ in runs)
    hi = min(float(np.max(x)) for x, _ in runs)
    grid = np.linspace(lo, hi, n_points) if hi > lo else np.array([lo])
    Y = np.stack([np.interp(grid, np.asarray(x, float), np.asarray(y, float)) for x, y in runs])
    n = Y.shape[0]
    sem = Y.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(grid))
    return grid, Y.mean(axis=0), sem, n


def plot_learning_curves(ax, curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
                         xlabel: str = "real environment steps", ylabel: str = "return",
                         title: str | None = None, colors: Mapping[str, str] | None = None) -> None:
    """Draw mean ± s.e.m. over seeds for each label: ``curves[label] = [(x_seed0, y_seed0), ...]``.

    A curve ends where its shortest seed ends; where some seeds go further, their mean goes on as a dashed line
    without a band, labelled with how many seeds it holds."""
    for label, runs in curves.items():
        if not runs:
            continue
        grid, mean, sem, n = mean_sem_on_grid(runs)
        color = None if colors is None else colors.get(label)
        line, = ax.plot(grid, mean, label=f"{label} (n={n})", color=color)
        ax.fill_between(grid, mean - sem, mean + sem, alpha=0.25, color=line.get_color(), linewidth=0)
        end = grid[-1]
        longer = [(x, y) for x, y in runs if float(np.max(x)) > end]
        if longer:
            g2, m2, _, k = mean_sem_on_grid(longer)
            keep = g2 >= end
            ax.plot(g2[keep], m2[keep], linestyle="--", linewidth=1, color=line.get_color(),
                    label=f"{label} (n={k} beyond {end:,.0f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    from matplotlib.ticker import EngFormatter

    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200000 -> 200k: long step counts do not overlap


def plot_seed_finals(ax, finals: Mapping[str, Sequence[float]], ylabel: str = "final return",
                     title: str | None = None, colors: Mapping[str, str] | None = None) -> None:
    """One column per label: each seed's value as a dot, the mean ± s.e.m. over seeds as a bar (none for one
    seed), the seed count under the label: ``finals[label] = [value per seed]``."""
    names = [k for k, v in finals.items() if len(v)]
    for x, name in enumerate(names):
        v = np.asarray(finals[name], float)
        c = None if colors is None else colors.get(name)
        sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
        bar = ax.errorbar([x], [v.mean()], yerr=[sem], fmt="_", markersize=18, capsize=4, color=c)
        ax.scatter(x + (np.linspace(-0.12, 0.12, len(v)) if len(v) > 1 else np.zeros(1)), v, s=14, alpha=0.6,
                   color=bar.lines[0].get_color())
    # "MA-VAML + VPS" beside five others overlaps its neighbours on one line
    ax.set_xticks(range(len(names)), [f"{n.replace(' + ', chr(10) + '+ ')}\n(n={len(finals[n])})" for n in names])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")


def plot_grid_heatmap(ax, values, width: int | None = None, title: str | None = None, cmap: str = "viridis",
                      colorbar: bool = True, annotate: bool = False, marks: dict | None = None, **imshow_kw):
    """Draw per-cell values of a square grid, e.g. ``V``, ``d`` or a row of ``A(s, s')``, as a heatmap.

    Args:
        ax: matplotlib axes.
        values: ``(C,)`` with cells row-major (``cell = row * width + col``; the gridworld's interior cells,
            see :class:`gridworld.layout.GridLayout`), or already ``(width, width)``.
        width: grid side; inferred as ``sqrt(C)`` when omitted.
        annotate: write each value in its cell (small grids).
        marks: ``{letter: cell}`` written on those cells, e.g. ``{"S": start, "G": goal}``.

    Returns:
        The ``AxesImage``.

    Raises:
        ValueError: ``values`` cannot be laid out as ``width x width``.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        w = int(round(np.sqrt(v.size))) if width is None else int(width)
        if w * w != v.size:
            raise ValueError(f"{v.size} values do not fill a {w}x{w} grid")
        v = v.reshape(w, w)
    elif v.ndim != 2 or v.shape[0] != v.shape[1]:
        raise ValueError(f"values must be (C,) or (W, W); got shape {v.shape}")
    im = ax.imshow(v, cmap=cmap, origin="upper", **imshow_kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if annotate:
        for (i, j), x in np.ndenumerate(v):
            ax.text(j, i, f"{x:.2g}", ha="center", va="center", fontsize=6, color="w")
    for key, cell in (marks or {}).items():
        i, j = divmod(int(cell), v.shape[1])
        ax.text(j, i, key, ha="center", va="center", fontsize=8, weight="bold", color="k",
                bbox=dict(boxstyle="round,pad=0.1", fc="w", ec="none", alpha=0.7))
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im
