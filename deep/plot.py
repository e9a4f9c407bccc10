"""Figure 2 (classic-control row) from run logs: return vs real steps, mean ± s.e.m. over seeds.

Reads only ``config.json`` and ``metrics.csv`` files (no torch). ``plot_runs(run_root, out_path)`` draws one
panel per environment and one curve per method; ``modeladv plot --experiment deep`` calls it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deep.config import ENV_NAMES, METHOD_NAMES, RunConfig
from modeladv.plot import color, label, plot_learning_curves, pyplot, save_figure
from modeladv.rundir import find_runs, read_metrics

__all__ = ["run_label", "collect_curves", "final_returns", "plot_runs"]

ENV_ORDER = ENV_NAMES
METHOD_ORDER = METHOD_NAMES


_MIN_STD_DEFAULT = RunConfig.value_norm_min_std


def run_label(cfg: dict) -> str:
    """Curve label of a run: its method, plus the ablation options it switched on (``deep.config``)."""
    label = cfg["method"]
    if cfg.get("value_norm"):
        label += "+vnorm"
        if cfg.get("value_norm_min_std", _MIN_STD_DEFAULT) != _MIN_STD_DEFAULT:
            label += f"(σ≥{cfg['value_norm_min_std']:g})"
    if cfg.get("mle_weight"):
        label += f"+mle{cfg['mle_weight']:g}"
    return label


def collect_curves(run_root: str | Path, key: str = "return") -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """``curves[env][label] = [(steps, metric) per seed]`` for every deep run under ``run_root``; the metric
    is the ``key`` column of ``metrics.csv`` (default: the real-episode return); ``label`` is ``run_label``.

    ``run_root`` may be the directory holding ``deep/`` or the ``deep`` directory itself. Runs with no
    finite value yet are skipped.
    """
    root = Path(run_root)
    base = root / "deep" if (root / "deep").is_dir() else root
    curves: dict[str, dict[str, list]] = {}
    for cfg, path in find_runs(base):
        if not (path / "metrics.csv").exists() or "env" not in cfg or "method" not in cfg:
            continue
        m = read_metrics(path)
        if "step" not in m or key not in m:
            continue
        x, y = m["step"], m[key]
        ok = np.isfinite(y)
        if ok.sum() == 0:
            continue
        curves.setdefault(cfg["env"], {}).setdefault(run_label(cfg), []).append((x[ok], y[ok]))
    return curves


def final_returns(curves, at_step: float | None = None, window: int = 5):
    """``{(env, method): (mean, sem, n_seeds, step)}``: each seed's mean return over its last ``window``
    logged points at or before ``at_step`` (default: the largest step every seed reached)."""
    out = {}
    for env, by_method in curves.items():
        for method, runs in by_method.items():
            reach = min(float(x[-1]) for x, _ in runs)
            step = reach if at_step is None else min(at_step, reach)
            finals = []
            for x, y in runs:
                keep = x <= step
                finals.append(float(np.mean(y[keep][-window:])))
            f = np.array(finals)
            sem = f.std(ddof=1) / np.sqrt(len(f)) if len(f) > 1 else 0.0
            out[(env, method)] = (float(f.mean()), float(sem), len(f), step)
    return out


def plot_runs(run_root: str | Path, out_path: str | Path, title: str | None = None) -> Path:
    """Draw the classic-control row of Figure 2 from the logs under ``run_root`` into ``out_path``; curves are
    labelled with the paper's names (:data:`modeladv.plot.METHOD_LABELS`) and their ablation options."""
    plt = pyplot()
    curves = collect_curves(run_root)
    if not curves:
        raise ValueError(f"no deep runs with logged returns under {run_root}")
    envs = [e for e in ENV_ORDER if e in curves] + sorted(set(curves) - set(ENV_ORDER))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        keys = [m for m in METHOD_ORDER if m in curves[env]] + sorted(set(curves[env]) - set(METHOD_ORDER))
        colors, spare, ordered = {}, iter(("tab:brown", "tab:pink", "tab:red", "tab:orange", "black")), {}
        for m in keys:  # an ablation keeps its method's colour unless the panel already uses it
            method, _, options = m.partition("+")
            name = label(method) + (f" +{options}" if options else "")
            ordered[name] = curves[env][m]
            c = color(method)
            colors[name] = c if c not in colors.values() else next(spare, None)
        plot_learning_curves(ax, ordered, title=env, colors=colors)
        ax.legend(fontsize=7)
    if title:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, 45 * len(envs))), fontsize=9)
    return save_figure(fig, out_path, dpi=120)
