"""Comparisons of two methods over seeds: effect size, a bootstrap interval and a two-sided Welch test."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """``a`` vs ``b`` over seeds. ``diff = mean(a) - mean(b)``; ``ci`` a 95% percentile-bootstrap interval of
    ``diff`` (seeds resampled within each group); ``p`` the two-sided Welch t-test p-value (NaN with fewer than
    two seeds in a group)."""

    diff: float
    ci: tuple[float, float]
    p: float
    n_a: int
    n_b: int

    def verdict(self, alpha: float = 0.05) -> str:
        if not np.isfinite(self.p):
            return "too few seeds to test"
        if self.p >= alpha:
            return "no significant difference"
        return "higher" if self.diff > 0 else "lower"

    def __str__(self) -> str:
        p = f"p = {self.p:.2g}" if np.isfinite(self.p) else "p n/a"
        return f"{self.diff:+.1f} [95% CI {self.ci[0]:+.1f}, {self.ci[1]:+.1f}], Welch {p} (n = {self.n_a} vs {self.n_b})"


def compare(a, b, n_boot: int = 10_000, seed: int = 0) -> Comparison:
    """Compare per-seed values ``a`` and ``b`` (1-D, finite); ``ValueError`` if either is empty."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError(f"need two non-empty 1-D samples; got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("samples must be finite")
    rng = np.random.default_rng(seed)
    boot = (rng.choice(a, (n_boot, len(a))).mean(1) - rng.choice(b, (n_boot, len(b))).mean(1))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    with warnings.catch_warnings():  # identical samples (e.g. every seed censored at the budget): p is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if len(a) > 1 and len(b) > 1 else float("nan")
    return Comparison(float(a.mean() - b.mean()), (float(lo), float(hi)), p, len(a), len(b))
