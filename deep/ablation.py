"""Which divergence from the authors' loop decides MA-L1 vs MLE (issue 20): one switch at a time, from logs.

A run belongs to the ablation cell (:data:`deep.protocol.CELLS`) whose config it has: ``ours`` (today's loop),
one of :data:`deep.protocol.SWITCHES` (that group of the authors' values, every other field ours), or
``authors`` (all of them). Runs are found by their config alone, so the cells may live under several run roots
(the ``authors`` cell's 200K runs under their own root are read at the ablation's step budget).

Per (env, cell) the table gives each method's final return, the gap ``MA-L1 - MLE`` with Welch's t interval, and
the change of that gap from ``ours`` (a difference of differences, Welch–Satterthwaite interval); Holm's
correction runs over each column's tests (the gaps; the changes, which are the ablation's question). A seed's
final return is either the evaluation of its policy at the budget (``modeladv evaluate``, the authors'
measure) or the mean logged return of its training episodes over the last ``window`` real steps before the
budget, so a loop that logs every 10K steps and one that logs every 2K are compared over the same real
experience. Reads ``config.json``, ``metrics.csv`` and ``evaluation.csv`` only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from deep.config import RunConfig, find_deep_runs
from deep.protocol import CELLS, cell_overrides, changes_run
from deep.runner import recorded_evaluation
from lab.rundir import config_hash, read_metrics
from lab.stats import Comparison, compare, holm, welch_contrast

__all__ = ["cell_of", "cell_changes", "seed_finals", "curves", "Row", "table", "markdown", "plot", "plot_curves"]

#: real steps over which a seed's final return is averaged (the authors log once per 10K-step stage)
WINDOW = 10_000


def _identity(cfg: RunConfig) -> str:
    return config_hash(cfg.identity())  # the run directory's name: two configs with it are one run


def cell_of(cfg: dict | RunConfig) -> str | None:
    """The ablation cell whose config ``cfg`` has (seed and step budget aside; Table 1's alpha), or None.

    ``reward_term`` on an SLBO task or with MLE is the ``ours`` run (the switch changes nothing there).

    >>> from deep.config import RunConfig
    >>> cell_of(RunConfig(env="hopper-slbo", method="mle", ou_sigma=0.3, entropy_coef=0.005))
    'exploration'
    >>> cell_of(RunConfig(env="hopper", method="ma_l1", protocol="authors"))
    'authors'
    >>> cell_of(RunConfig(env="hopper", method="ma_l1", k_model=50)) is None
    True
    """
    run = cfg if isinstance(cfg, RunConfig) else RunConfig.from_dict(cfg)
    ident = _identity(run)
    for cell in CELLS:
        if _identity(RunConfig(env=run.env, method=run.method, **cell_overrides(cell))) == ident:
            return cell
    return None


def cell_changes(env: str, method: str, cell: str) -> bool:
    """Whether ``cell`` gives ``method`` on ``env`` another computation than ``ours`` (``deep.protocol.changes_run``:
    ``reward_term`` does not on the SLBO tasks or with MLE, nor ``refresh_timing`` with MLE or SLBO, which refit
    no value on model rollouts); where it does not, the method's row reads its ``ours`` runs."""
    return cell == "ours" or changes_run(env, method, cell_overrides(cell))


def _final(x: np.ndarray, y: np.ndarray, step: float, window: float) -> float:
    sel = (x > step - window) & (x <= step) & np.isfinite(y)
    return float(np.mean(y[sel])) if sel.any() else float("nan")


def _runs(roots, envs, methods):
    """``(env, cell, method, seed, steps, returns, path)`` of every ablation run under ``roots``."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    for root in map(Path, roots):
        for cfg, path in find_deep_runs(root):
            if cfg.get("method") not in methods or (envs is not None and cfg.get("env") not in envs):
                continue
            cell = cell_of(cfg)
            if cell is None or not (path / "metrics.csv").exists():
                continue
            m = read_metrics(path)
            x, y = m.get("step", np.array([])), m.get("return", np.array([]))
            yield cfg["env"], cell, cfg["method"], int(cfg["seed"]), x, y, path


def seed_finals(roots: str | Path | Sequence[str | Path], step: float, envs: Sequence[str] | None = None,
                methods: Sequence[str] = ("mle", "ma_l1"), window: float = WINDOW, measure: str = "return"
                ) -> tuple[dict[tuple[str, str, str], dict[int, float]], list[str]]:
    """``finals[(env, cell, method)] = {seed: final return}`` over the runs under ``roots`` that reached
    ``step``, and a line for each ablation run that has not (it is left out, never extrapolated).

    ``measure``: ``return``, the mean logged return of the training episodes over the last ``window`` real steps
    (with the run's exploration noise, if any); ``eval``, the evaluation of the policy at ``step`` recorded by
    ``modeladv evaluate`` (the authors' measure: no exploration noise). A seed found twice (the same config
    under two roots) is an error: which log counts would be a choice."""
    if measure not in ("return", "eval"):
        raise ValueError(f"measure must be 'return' or 'eval'; got {measure!r}")
    finals: dict[tuple[str, str, str], dict[int, float]] = {}
    short: list[str] = []
    for env, cell, method, seed, x, y, path in _runs(roots, envs, methods):
        key = (env, cell, method)
        if not len(x) or x[-1] < step:
            short.append(f"{env} {cell} {method} seed {seed}: {int(x[-1]) if len(x) else 0} of "
                         f"{int(step)} steps ({path})")
            continue
        value = _final(x, y, step, window) if measure == "return" else recorded_evaluation(path, step)
        if value is None:
            short.append(f"{env} {cell} {method} seed {seed}: no evaluation at {int(step)} steps ({path})")
            continue
        if seed in finals.get(key, {}):
            raise ValueError(f"{env} {cell} {method} seed {seed} is logged twice (second: {path})")
        finals.setdefault(key, {})[seed] = value
    return finals, short


def curves(roots: str | Path | Sequence[str | Path], step: float, envs: Sequence[str] | None = None,
           methods: Sequence[str] = ("mle", "ma_l1")) -> dict[tuple[str, str], dict[str, list]]:
    """``curves[(env, cell)][method] = [(steps, returns) per seed]``, each cut at ``step``."""
    out: dict[tuple[str, str], dict[str, list]] = {}
    for env, cell, method, _, x, y, _ in _runs(roots, envs, methods):
        keep = (x <= step) & np.isfinite(y)
        if keep.any():
            out.setdefault((env, cell), {}).setdefault(method, []).append((x[keep], y[keep]))
    return out


def plot_curves(cell_curves: dict[tuple[str, str], dict[str, list]], out_path: str | Path,
                envs: Sequence[str] | None = None) -> Path:
    """Return vs real steps, one row per env and one panel per cell (mean ± s.e.m. over seeds, counts in the
    legend; :func:`lab.plot.plot_learning_curves`)."""
    from lab.plot import color, label, plot_learning_curves, pyplot, save_figure

    plt = pyplot()
    envs = list(envs or dict.fromkeys(e for e, _ in cell_curves))
    cells = [c for c in CELLS if any((e, c) in cell_curves for e in envs)]
    if not envs or not cells:
        raise ValueError("no ablation runs to draw")
    fig, axes = plt.subplots(len(envs), len(cells), figsize=(3.3 * len(cells), 2.9 * len(envs)), squeeze=False,
                             sharey="row")
    for i, env in enumerate(envs):
        for j, cell in enumerate(cells):
            ax = axes[i, j]
            by_method = cell_curves.get((env, cell), {})
            if not by_method:
                ax.set_title(f"{env}: {cell.replace('_', ' ')}")
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="0.5")
                ax.set_xticks([])
                continue
            named = {label(m): r for m, r in sorted(by_method.items())}
            plot_learning_curves(ax, named, title=f"{env}: {cell.replace('_', ' ')}",
                                 colors={label(m): color(m) for m in by_method},
                                 xlabel="real steps" if i == len(envs) - 1 else "", ylabel="return" if j == 0 else "")
            if named:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_path)


@dataclass(frozen=True)
class Row:
    """One (env, cell) of the ablation: per-method finals, the gap ``a - b`` and its change from ``ours``."""

    env: str
    cell: str
    finals: dict[str, np.ndarray]
    gap: Comparison | None
    change: Comparison | None  # the gap here minus the gap in "ours" (None for "ours" itself)


def _change(a1, b1, a0, b0) -> Comparison:
    est, ci, p = welch_contrast([a1, b1, a0, b0], [1, -1, -1, 1])
    return Comparison(est, ci, p, min(len(a1), len(b1)), min(len(a0), len(b0)), "welch")


def table(finals: dict[tuple[str, str, str], dict[int, float]], a: str = "ma_l1", b: str = "mle",
          ) -> list[Row]:
    """The ablation's rows (envs in order of appearance, cells in :data:`CELLS` order). Holm's correction runs
    over each column of the table: over the gap tests, and over the change tests. A gap needs two seeds of each
    method; a change needs them in ``ours`` too."""
    envs = list(dict.fromkeys(env for env, _, _ in finals))
    rows, tests = [], []
    for env in envs:
        base = {m: np.array(list(finals.get((env, "ours", m), {}).values())) for m in (a, b)}
        for cell in CELLS:
            # a method the cell does not change (reward_term with MLE) is its ours run
            f = {m: np.array(list(finals.get((env, cell if cell_changes(env, m, cell) else "ours", m), {}).values()))
                 for m in (a, b)}
            if not any(cell_changes(env, m, cell) for m in (a, b)) and cell != "ours":
                continue
            if not all(len(v) for v in f.values()):
                continue
            gap = compare(f[a], f[b])
            change = None
            if cell != "ours" and all(len(v) >= 2 for v in (*f.values(), *base.values())):
                if not cell_changes(env, b, cell):  # b's runs are ours': the change is a's alone
                    change = compare(f[a], base[a])
                elif not cell_changes(env, a, cell):
                    change = compare(base[b], f[b])
                else:
                    change = _change(f[a], f[b], base[a], base[b])
            rows.append(Row(env, cell, f, gap, change))
            tests += [gap, change]
    # two families, each Holm-corrected: the gaps (MA-L1 vs MLE within a loop) and the changes (does switching
    # a divergence move the gap: the ablation's question)
    gaps = holm([t.p if t is not None else np.nan for t in tests[0::2]])
    changes = holm([t.p if t is not None else np.nan for t in tests[1::2]])
    out = []
    for r, g, c in zip(rows, gaps, changes):
        out.append(replace(r, gap=replace(r.gap, p_holm=float(g)) if r.gap else None,
                           change=replace(r.change, p_holm=float(c)) if r.change else None))
    return out


def _mean_sem(v: np.ndarray) -> str:
    if len(v) < 2:
        return f"{v.mean():.0f} (n = {len(v)})"
    return f"{v.mean():.0f} ± {v.std(ddof=1) / np.sqrt(len(v)):.0f} (n = {len(v)})"


def _cmp(c: Comparison | None) -> str:
    if c is None:
        return "—"
    if not np.isfinite(c.p):
        return f"{c.diff:+.0f} (too few seeds)"
    return f"{c.diff:+.0f} [{c.ci[0]:+.0f}, {c.ci[1]:+.0f}], p = {c.p:.2g}, Holm {c.p_holm:.2g}"


def markdown(rows: Sequence[Row], a: str = "ma_l1", b: str = "mle") -> str:
    """The table as markdown: per (env, cell) each method's final return (mean ± s.e.m. over seeds), the gap
    ``a - b`` and its change from ``ours``, each with its 95% Welch interval, raw and Holm-adjusted p."""
    out = [f"| env | cell | {b} | {a} | gap {a} − {b} | change of the gap from ours |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.env} | {r.cell} | {_mean_sem(r.finals[b])} | {_mean_sem(r.finals[a])} | {_cmp(r.gap)} | "
                   f"{_cmp(r.change)} |")
    return "\n".join(out)


def plot(rows: Sequence[Row], out_path: str | Path, a: str = "ma_l1", b: str = "mle", step: float | None = None
         ) -> Path:
    """One column per env: top, each method's final return per cell (mean ± s.e.m., seeds as dots, seed counts
    in the legend); bottom, the gap ``a - b`` per cell with its 95% Welch interval."""
    from lab.plot import color, label, pyplot, save_figure

    plt = pyplot()
    envs = list(dict.fromkeys(r.env for r in rows))
    if not envs:
        raise ValueError("no ablation cell has runs of both methods")
    fig, axes = plt.subplots(2, len(envs), figsize=(5.2 * len(envs), 6.4), squeeze=False, sharex="col")
    for j, env in enumerate(envs):
        mine = [r for r in rows if r.env == env]
        xs = np.arange(len(mine))
        top, bottom = axes[0, j], axes[1, j]
        for k, m in enumerate((b, a)):
            dx = (k - 0.5) * 0.25
            ns = sorted({len(r.finals[m]) for r in mine})
            means = [r.finals[m].mean() for r in mine]
            sems = [r.finals[m].std(ddof=1) / np.sqrt(len(r.finals[m])) if len(r.finals[m]) > 1 else 0.0
                    for r in mine]
            top.errorbar(xs + dx, means, yerr=sems, fmt="o", color=color(m), capsize=3,
                         label=f"{label(m)} (n={'/'.join(map(str, ns))})")
            for x, r in zip(xs, mine):
                top.scatter(np.full(len(r.finals[m]), x + dx), r.finals[m], s=9, color=color(m), alpha=0.35)
        top.set_title(env + (f" at {step / 1000:.0f}K real steps" if step else ""))
        top.set_ylabel("final return")
        top.legend(fontsize=8)
        for x, r in zip(xs, mine):
            if r.gap is None or not np.isfinite(r.gap.p):
                continue
            bottom.errorbar([x], [r.gap.diff], yerr=[[r.gap.diff - r.gap.ci[0]], [r.gap.ci[1] - r.gap.diff]],
                            fmt="s", color="k" if r.cell == "ours" else "tab:purple", capsize=3)
        bottom.axhline(0.0, color="0.6", lw=0.8)
        bottom.set_ylabel(f"{label(a)} − {label(b)} (95% Welch CI)")
        bottom.set_xticks(xs, [r.cell.replace("_", " ") for r in mine], rotation=30, ha="right")
    fig.tight_layout()
    return save_figure(fig, out_path)
