"""Plotting shared by every experiment: learning curves with mean ± standard error over seeds.

Matplotlib is imported inside the functions so ``import tabular`` stays fast.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["mean_sem_on_grid", "plot_learning_curves"]


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
    """Draw mean ± s.e.m. over seeds for each label: ``curves[label] = [(x_seed0, y_seed0), ...]``."""
    for label, runs in curves.items():
        if not runs:
            continue
        grid, mean, sem, n = mean_sem_on_grid(runs)
        color = None if colors is None else colors.get(label)
        line, = ax.plot(grid, mean, label=f"{label} (n={n})", color=color)
        ax.fill_between(grid, mean - sem, mean + sem, alpha=0.25, color=line.get_color(), linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
