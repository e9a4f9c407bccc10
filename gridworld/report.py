"""The Figure-1 experiment's report from its logs alone (``config.json`` + ``metrics.csv``): the summary table
(steps to return > 1 and to 95 % of the optimum, AUC, final return; mean ± s.e.m. over seeds) and the figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lab.plot import color, label
from lab.rundir import RunDir, config_hash, find_runs, read_metrics

from .config import METHODS
from .layout import GridLayout
from .mbrl import EXPERIMENT, FINAL_CELLS

__all__ = ["collect", "auc", "seed_stats", "summarize", "CLAIMS", "claims_table", "format_table", "plot_returns", "plot_diagnostics", "plot_final_cells"]


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


def auc(steps: np.ndarray, y: np.ndarray) -> float:
    """Normalized area under ``y`` over ``steps`` (trapezoid / span): the mean of ``y`` over the budget (the last
    value when the curve has a single step)."""
    return float(np.trapezoid(y, steps) / (steps[-1] - steps[0])) if steps[-1] > steps[0] else float(y[-1])


def _first_above(steps: np.ndarray, y: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(y > level)
    return float(steps[hit[0]]) if len(hit) else float("inf")


def seed_stats(runs: Mapping[int, Mapping[str, list[dict]]], key: str = "return_exact", level: float = 1.0,
               near: float = 0.95) -> dict[tuple[int, str], dict[str, np.ndarray]]:
    """Per (size, method), one value per seed (arrays) of: ``first`` (real steps until ``key`` first exceeds
    ``level``; the budget when never, flagged in ``censored``), ``first_near`` / ``censored_near`` (the same for
    ``near`` x the run's optimal return), ``auc`` (trapezoid of ``key`` over steps / total steps: the mean return
    over the budget), ``final`` and ``best`` (each run's optimal return, from its own time limit)."""
    out = {}
    for size, by_method in runs.items():
        for method, seeds in by_method.items():
            cols: dict[str, list] = {k: [] for k in ("first", "censored", "first_near", "censored_near", "auc",
                                                     "final", "best")}
            for m in seeds:
                best = GridLayout(size, m.get("_max_steps")).best_return  # the optimum depends on the time limit
                x, y = m["steps"], m[key]
                f, g = _first_above(x, y, level), _first_above(x, y, near * best)
                cols["censored"].append(not np.isfinite(f))
                cols["censored_near"].append(not np.isfinite(g))
                cols["first"].append(f if np.isfinite(f) else float(x[-1]))
                cols["first_near"].append(g if np.isfinite(g) else float(x[-1]))
                cols["auc"].append(auc(x, y))
                cols["final"].append(float(y[-1]))
                cols["best"].append(best)
            out[(size, method)] = {k: np.asarray(v) for k, v in cols.items()}
            out[(size, method)]["budget"] = np.asarray([float(m["steps"][-1]) for m in seeds])
    return out


def summarize(runs: Mapping[int, Mapping[str, list[dict]]], key: str = "return_exact", level: float = 1.0,
              near: float = 0.95) -> list[dict]:
    """Per (size, method), mean ± s.e.m. over seeds of :func:`seed_stats`: steps until ``key`` first exceeds
    ``level`` (``first``) and ``near`` x the optimal return (``first_near``) — a seed that never does counts as
    its budget and is counted in ``censored``/``censored_near`` —, the AUC and the final value.

    ``key="return_exact"`` is the exact expectation of the evaluation-episode mean ``"return"`` (no noise)."""
    def ms(v):
        v = np.asarray(v, float)
        return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)

    rows = []
    for (size, method), st in seed_stats(runs, key, level, near).items():
        rows.append(dict(size=size, method=method, n=len(st["auc"]), budget=float(st["budget"].min()),
                         optimum=float(st["best"].mean()), first=ms(st["first"]), censored=int(st["censored"].sum()),
                         first_near=ms(st["first_near"]), censored_near=int(st["censored_near"].sum()),
                         auc=ms(st["auc"]), final=ms(st["final"])))
    return rows


#: the paper's Sec. 4.1 claims about Figure 1, as (claim, method a, method b): "a beats b"
CLAIMS = (
    ("value-aware beats MLE", "ma_l1", "mle"),
    ("value-aware beats MLE", "ma_vaml", "mle"),
    ("value-aware beats MLE", "ma_direct_l1", "mle"),
    ("value-aware beats MLE", "ma_direct_l2", "mle"),
    ("upper bound beats direct", "ma_l1", "ma_direct_l1"),
    ("upper bound beats direct", "ma_vaml", "ma_direct_l2"),
)


def _did_boot(groups: Sequence[np.ndarray], n_boot: int = 10_000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """``(a8 - a16) - (b8 - b16)`` of four independent groups of per-seed values and its 95% bootstrap interval
    (seeds resampled within each group)."""
    rng = np.random.default_rng(seed)
    means = [rng.choice(g, (n_boot, len(g))).mean(1) for g in groups]
    boot = (means[0] - means[1]) - (means[2] - means[3])
    est = (groups[0].mean() - groups[1].mean()) - (groups[2].mean() - groups[3].mean())
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(est), (float(lo), float(hi))


def claims_table(runs: Mapping[int, Mapping[str, list[dict]]]) -> str:
    """Markdown table of the paper's three Figure-1 claims over seeds, per grid size.

    * "a beats b" (value-aware vs MLE; upper bound vs direct): AUC difference ``a - b`` and the difference in
      steps to return > 1 (``b - a``, positive when ``a`` is faster; a censored seed counts as its budget), each
      with a 95% interval and a two-sided Welch p (:func:`lab.stats.compare`), and the AUC test's p after
      Holm's correction over every AUC test of the table. Verdict "holds" when the AUC interval lies above 0 and
      the Holm-corrected p is below 0.05, "reversed" likewise below 0, else "not shown".
    * "MLE degrades with size more than value-aware": the drop of AUC / optimum from the smallest to the largest
      size, MLE's drop minus the value-aware method's, with a bootstrap interval over the four groups of seeds.
    """
    from lab.plot import label
    from lab.stats import compare, with_holm

    st = seed_stats(runs)
    pairs = [(size, claim, a, b) for size in sorted(runs) for claim, a, b in CLAIMS
             if (size, a) in st and (size, b) in st]
    aucs = with_holm([compare(st[(size, a)]["auc"], st[(size, b)]["auc"]) for size, _, a, b in pairs])
    lines = [f"| claim | grid | a vs b | AUC a − b [95% CI], Welch p, Holm p (over {len(pairs)}) | "
             "steps to return > 1, b − a [95% CI] | verdict |", "|---|---|---|---|---|---|"]
    for (size, claim, a, b), c in zip(pairs, aucs):
        f = compare(st[(size, b)]["first"], st[(size, a)]["first"])
        significant = np.isfinite(c.p_holm) and c.p_holm < 0.05
        verdict = ("holds" if c.ci[0] > 0 else "reversed" if c.ci[1] < 0 else "not shown") if significant \
            else "not shown"
        lines.append(f"| {claim} | {size}x{size} | {label(a)} vs {label(b)} (n = {c.n_a}, {c.n_b}) | "
                     f"{c.diff:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}], p = {c.p:.2g}, Holm {c.p_holm:.2g} | "
                     f"{f.diff:+.0f} [{f.ci[0]:+.0f}, {f.ci[1]:+.0f}] | {verdict} |")
    sizes = sorted(runs)
    if len(sizes) >= 2:
        s0, s1 = sizes[0], sizes[-1]
        for a in ("ma_l1", "ma_vaml", "ma_direct_l1", "ma_direct_l2"):
            keys = [(s0, "mle"), (s1, "mle"), (s0, a), (s1, a)]
            if not all(k in st for k in keys):
                continue
            g = [st[k]["auc"] / st[k]["best"] for k in keys]
            est, (lo, hi) = _did_boot(g)
            verdict = "holds" if lo > 0 else "reversed" if hi < 0 else "not shown"
            lines.append(f"| MLE degrades with size more | {s0}x{s0} → {s1}x{s1} | MLE vs {label(a)} | "
                         f"drop of AUC/optimum, MLE − {label(a)}: {est:+.3f} [{lo:+.3f}, {hi:+.3f}] | | {verdict} |")
    return "\n".join(lines)


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
    from lab.plot import plot_learning_curves, pyplot, save_figure

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
    from lab.plot import plot_learning_curves, pyplot, save_figure

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
    from lab.plot import plot_grid_heatmap, pyplot, save_figure

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
