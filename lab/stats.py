"""Comparisons of two methods over seeds: effect size, an interval, a two-sided Welch test, and Holm's
correction over the claims of one table.

The interval follows one rule stated in advance: with 5 seeds or fewer in either group, Welch's t interval (the
percentile bootstrap of a mean of 3 values is far too narrow: it cannot reach beyond the observed extremes);
otherwise the 95% percentile bootstrap with seeds resampled within each group.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Comparison", "compare", "welch_contrast", "welch_interval", "holm", "with_holm", "SMALL_N"]

#: groups this small get Welch's t interval instead of the bootstrap
SMALL_N = 5


@dataclass(frozen=True)
class Comparison:
    """``a`` vs ``b`` over seeds. ``diff = mean(a) - mean(b)``; ``ci`` its 95% interval (``interval`` says which:
    ``"welch"`` or ``"bootstrap"``); ``p`` the two-sided Welch t-test p-value (NaN with fewer than two seeds in a
    group); ``p_holm`` the p-value after Holm's correction over the comparisons of its table (NaN until
    :func:`with_holm` sets it)."""

    diff: float
    ci: tuple[float, float]
    p: float
    n_a: int
    n_b: int
    interval: str = "welch"
    p_holm: float = float("nan")

    def verdict(self, alpha: float = 0.05) -> str:
        """On the Holm-adjusted p where it is set, else on ``p``."""
        p = self.p_holm if np.isfinite(self.p_holm) else self.p
        if not np.isfinite(p):
            return "too few seeds to test"
        if p >= alpha:
            return "no significant difference"
        return "higher" if self.diff > 0 else "lower"

    def __str__(self) -> str:
        if not np.isfinite(self.p):
            return f"{self.diff:+.1f} (n = {self.n_a} vs {self.n_b}: too few seeds for an interval)"
        p = f"Welch p = {self.p:.2g}" + (f", Holm {self.p_holm:.2g}" if np.isfinite(self.p_holm) else "")
        return (f"{self.diff:+.1f} [95% {self.interval} CI {self.ci[0]:+.1f}, {self.ci[1]:+.1f}], {p} "
                f"(n = {self.n_a} vs {self.n_b})")


def welch_contrast(groups, weights, level: float = 0.95) -> tuple[float, tuple[float, float], float]:
    """A linear contrast ``c = sum_i w_i mean(g_i)`` of independent groups with unequal variances: its value,
    Welch's t interval ``c ± t_{df, (1+level)/2} · se`` and the two-sided p of ``c = 0``, where
    ``se² = sum_i w_i² s_i²/n_i`` and ``df = se⁴ / sum_i (w_i² s_i²/n_i)² / (n_i - 1)`` (Welch–Satterthwaite).

    Weights (1, -1) give Welch's two-sample interval; (1, -1, -1, 1) over (a1, b1, a0, b0) the change of the gap
    ``a - b`` between two conditions (a difference of differences). Needs two values in each group; with
    ``se = 0`` the interval is the point and p is NaN.
    """
    from scipy import stats

    groups = [np.asarray(g, float) for g in groups]
    w = np.asarray(weights, float)
    if len(groups) != len(w) or not len(w):
        raise ValueError(f"one weight per group; got {len(w)} weights for {len(groups)} groups")
    if any(len(g) < 2 for g in groups):
        raise ValueError(f"Welch's interval needs two values in each group; got {[len(g) for g in groups]}")
    v = np.array([wi ** 2 * g.var(ddof=1) / len(g) for wi, g in zip(w, groups)])
    est = float(sum(wi * g.mean() for wi, g in zip(w, groups)))
    se = float(np.sqrt(v.sum()))
    if se == 0.0:
        return est, (est, est), float("nan")
    u = v / v.max()  # df is scale-free; scaled, tiny variances do not underflow to 0 / 0
    df = u.sum() ** 2 / sum(ui ** 2 / (len(g) - 1) for ui, g in zip(u, groups))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(est) / se, df))
    return est, (est - half, est + half), p


def welch_interval(a, b, level: float = 0.95) -> tuple[float, float]:
    """Welch's t interval of ``mean(a) - mean(b)``: ``diff ± t_{df, (1+level)/2} · se`` with
    ``se² = s_a²/n_a + s_b²/n_b`` and the Welch–Satterthwaite ``df``; needs two values in each group."""
    return welch_contrast([a, b], [1.0, -1.0], level)[1]


def compare(a, b, n_boot: int = 10_000, seed: int = 0) -> Comparison:
    """Compare per-seed values ``a`` and ``b`` (1-D, finite); ``ValueError`` if either is empty."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError(f"need two non-empty 1-D samples; got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("samples must be finite")
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff, (float("nan"), float("nan")), float("nan"), len(a), len(b), "none")
    with warnings.catch_warnings():  # identical samples (e.g. every seed censored at the budget): p is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if min(len(a), len(b)) <= SMALL_N:
        return Comparison(diff, welch_interval(a, b), p, len(a), len(b), "welch")
    rng = np.random.default_rng(seed)
    boot = (rng.choice(a, (n_boot, len(a))).mean(1) - rng.choice(b, (n_boot, len(b))).mean(1))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Comparison(diff, (float(lo), float(hi)), p, len(a), len(b), "bootstrap")


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values of ``m`` tests (NaN entries are not tests and stay NaN):
    ``p_(i)`` sorted ascending becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def with_holm(comparisons: list[Comparison]) -> list[Comparison]:
    """The comparisons of one table with ``p_holm`` set (Holm over those that have a p-value)."""
    adj = holm([c.p for c in comparisons])
    return [replace(c, p_holm=float(q)) for c, q in zip(comparisons, adj)]
