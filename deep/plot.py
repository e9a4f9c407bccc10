"""Figure 2 (classic-control row) from run logs: return vs real steps, mean ± s.e.m. over seeds.

Reads only ``config.json``, ``metrics.csv`` and ``evaluation.csv`` files (no torch). ``plot_runs(run_root,
out_path)`` draws one panel per environment and one curve per method; ``modeladv plot --experiment deep`` calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from deep.config import ENV_NAMES, METHOD_NAMES, TABLE1, RunConfig, find_deep_runs, reward_term_applies
from lab.plot import color, label, plot_learning_curves, pyplot, save_figure
from lab.rundir import read_metrics

__all__ = ["run_label", "collect_curves", "seed_finals", "eval_finals", "final_returns", "summary", "plot_runs",
           "EVAL_KEY",
           "alpha_table", "format_alpha_table", "plot_alpha_sweep"]

ENV_ORDER = ENV_NAMES
#: the ``key`` of :func:`collect_curves` that reads the recorded evaluations instead of a ``metrics.csv`` column
EVAL_KEY = "eval_return"
METHOD_ORDER = METHOD_NAMES


_MIN_STD_DEFAULT = RunConfig.value_norm_min_std


def run_label(cfg: dict, show_alpha: bool = False) -> str:
    """Curve label of a run: its method, plus the ablation options it switched on (``deep.config``) and, with
    ``show_alpha``, its alpha when that is not Table 1's."""
    label = cfg["method"]
    table1 = TABLE1.get((cfg.get("env", "").removesuffix("-mbbl"), label), (1.0, 0.0))[0]
    if show_alpha and "alpha" in cfg and cfg["alpha"] != table1:
        label += f"+α={cfg['alpha']:g}"
    if cfg.get("value_norm"):
        label += "+vnorm"
        if cfg.get("value_norm_min_std", _MIN_STD_DEFAULT) != _MIN_STD_DEFAULT:
            label += f"(σ≥{cfg['value_norm_min_std']:g})"
    if cfg.get("mle_weight"):
        label += f"+mle{cfg['mle_weight']:g}"
    if reward_term_applies(cfg.get("env", ""), cfg["method"]) and not cfg.get("reward_term"):
        label += "+V-only"  # the value gap without the known reward's (RunConfig.reward_term)
    return label


def curve_name(key: str) -> str:
    """Display name of a curve (a :func:`run_label`): the paper's name of its method, then its options."""
    method, _, options = key.partition("+")
    return label(method) + (f" +{options}" if options else "")


def curve_order(key: str) -> tuple:
    """Sort key of a curve (a :func:`run_label`): the paper's method order, then its options."""
    method = key.partition("+")[0]
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), key)


def collect_curves(run_root: str | Path | Sequence[str | Path], key: str = "return", envs: Sequence[str] | None = None,
                   ) -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """``curves[env][label] = [(steps, metric) per seed]`` for every deep run under ``run_root`` (of ``envs``
    only, when given); the metric is the ``key`` column of ``metrics.csv`` (default: the real-episode return), or
    with ``key = "eval_return"`` the evaluations recorded in ``evaluation.csv`` (the authors' sizes, by step);
    ``label`` is ``run_label``.

    ``run_root`` may be the directory holding ``deep/`` or the ``deep`` directory itself, or a list of them
    (an ablation kept under its own root drawn beside the main runs). Runs with no finite value yet are skipped.
    """
    from deep.runner import recorded_evaluations

    curves: dict[str, dict[str, list]] = {}
    for cfg, path, name in _labelled_runs(run_root, envs):
        if key == EVAL_KEY:
            recorded = sorted(recorded_evaluations(path).items())
            x, y = np.array([s for s, _ in recorded], float), np.array([v for _, v in recorded], float)
        else:
            m = read_metrics(path)
            if "step" not in m or key not in m:
                continue
            x, y = m["step"], m[key]
        ok = np.isfinite(y)
        if ok.sum() == 0:
            continue
        curves.setdefault(cfg["env"], {}).setdefault(name, []).append((x[ok], y[ok]))
    return curves


def _labelled_runs(run_root, envs):
    """``(cfg, path, curve label)`` of every deep run with metrics under ``run_root`` (of ``envs`` only)."""
    roots = [run_root] if isinstance(run_root, (str, Path)) else list(run_root)
    runs = []
    for root in map(Path, roots):
        runs += [(cfg, path) for cfg, path in find_deep_runs(root)
                 if (path / "metrics.csv").exists() and "env" in cfg and "method" in cfg
                 and (envs is None or cfg["env"] in envs)]
    alphas: dict[tuple, set] = {}
    for cfg, _ in runs:  # alpha goes into a label only where runs of one curve would otherwise differ in it
        alphas.setdefault((cfg["env"], run_label(cfg)), set()).add(cfg.get("alpha"))
    return [(cfg, path, run_label(cfg, show_alpha=len(alphas[(cfg["env"], run_label(cfg))]) > 1))
            for cfg, path in runs]


def eval_finals(run_root: str | Path | Sequence[str | Path], step: float, envs: Sequence[str] | None = None,
                window: float = 0.0) -> tuple[dict, list[str]]:
    """``({(env, label): (finals (n_seeds,), step)}, missing)``: each run's mean of the evaluations it recorded at
    steps in ``(step - window, step]`` (``--evaluate-every`` or ``modeladv evaluate``, the authors' measure: 4
    environments x 2500 steps, no exploration noise), in the form of :func:`seed_finals`, and a line per run left
    out: one with no evaluation at ``step`` itself (never extrapolated), or with fewer evaluations in the window
    than another seed of its curve (seeds of one curve average as many). ``window = 0`` takes the one at ``step``;
    a window averages out the swings a single evaluation shows between iterations."""
    from deep.runner import recorded_evaluations

    if not window >= 0:
        raise ValueError(f"window must be >= 0 real steps, got {window}")
    inside: dict[tuple[str, str], list[tuple[dict, Path, list[float]]]] = {}
    missing = []
    for cfg, path, name in _labelled_runs(run_root, envs):
        recorded = recorded_evaluations(path)
        if step not in recorded:
            missing.append(f"{cfg['env']} {name} seed {cfg.get('seed')}: no evaluation at {int(step)} steps ({path})")
        else:
            values = [v for s, v in recorded.items() if s == step or step - window < s <= step]
            inside.setdefault((cfg["env"], name), []).append((cfg, path, values))
    found = {}
    for key, runs in inside.items():
        most = max(len(values) for *_, values in runs)
        for cfg, path, values in runs:
            if len(values) < most:
                missing.append(f"{key[0]} {key[1]} seed {cfg.get('seed')}: {len(values)} evaluations in the window, "
                               f"another seed has {most} ({path})")
        found[key] = (np.array([np.mean(v) for *_, v in runs if len(v) == most]), float(step))
    return found, missing


def seed_finals(curves, at_step: float | None = None, window: int = 5) -> dict:
    """``{(env, method): (finals (n_seeds,), step)}``: each seed's mean return over its last ``window`` logged
    points at or before ``at_step`` (default: the largest step every seed reached)."""
    out = {}
    for env, by_method in curves.items():
        for method, runs in by_method.items():
            reach = min(float(x[-1]) for x, _ in runs)
            step = reach if at_step is None else min(at_step, reach)
            out[(env, method)] = (np.array([float(np.mean(y[x <= step][-window:])) for x, y in runs]), step)
    return out


def final_returns(curves, at_step: float | None = None, window: int = 5):
    """``{(env, method): (mean, sem, n_seeds, step)}`` of :func:`seed_finals`."""
    return summary(seed_finals(curves, at_step, window))


def summary(finals: dict) -> dict:
    """``{(env, method): (mean, sem, n_seeds, step)}`` of ``finals`` in the form of :func:`seed_finals`."""
    out = {}
    for key, (f, step) in finals.items():
        sem = f.std(ddof=1) / np.sqrt(len(f)) if len(f) > 1 else 0.0
        out[key] = (float(f.mean()), float(sem), len(f), step)
    return out


def plot_runs(run_root: str | Path | Sequence[str | Path], out_path: str | Path, title: str | None = None,
              envs: Sequence[str] | None = None, key: str = "return") -> Path:
    """Draw a row of Figure 2 (or Figure 3) from the logs under ``run_root`` (of ``envs`` only, when given) into
    ``out_path``; curves are labelled with the paper's names (:data:`lab.plot.METHOD_LABELS`) and their
    ablation options; ``key`` as in :func:`collect_curves` (``EVAL_KEY``: the recorded evaluations)."""
    plt = pyplot()
    curves = collect_curves(run_root, key=key, envs=envs)
    if not curves:
        raise ValueError(f"no deep runs with logged {'evaluations' if key == EVAL_KEY else key} under {run_root}")
    envs = [e for e in ENV_ORDER if e in curves] + sorted(set(curves) - set(ENV_ORDER))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        keys = [m for m in METHOD_ORDER if m in curves[env]] + sorted(set(curves[env]) - set(METHOD_ORDER))
        colors, spare, ordered = {}, iter(("tab:brown", "tab:pink", "tab:red", "tab:orange", "black")), {}
        for m in keys:  # an ablation keeps its method's colour unless the panel already uses it
            name = curve_name(m)
            ordered[name] = curves[env][m]
            c = color(m.partition("+")[0])
            colors[name] = c if c not in colors.values() else next(spare, None)
        plot_learning_curves(ax, ordered, title=env, colors=colors,
                             ylabel="evaluation return (no exploration noise)" if key == EVAL_KEY else key)
        ax.legend(fontsize=7)
    if title:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, 45 * len(envs))), fontsize=9)
    return save_figure(fig, out_path, dpi=120)


def _final(y: np.ndarray, window: int = 5) -> float:
    return float(np.mean(y[np.isfinite(y)][-window:]))


def alpha_table(run_root: str | Path, window: int = 5) -> list[dict]:
    """Appendix C's selection from the logs: per (env, method) and alpha, each seed's mean return over its last
    ``window`` logged iterations at the budget every run of that (env, method) reached; mean ± s.e.m. over
    seeds; ``selected`` marks the alpha with the highest mean (the rule stated in advance) where more than one
    alpha was run."""
    groups: dict[tuple, dict[float, list]] = {}
    for cfg, path in find_deep_runs(run_root):
        if not (path / "metrics.csv").exists():
            continue
        m = read_metrics(path)
        if len(m.get("step", ())) and np.isfinite(m["return"]).any():
            key = (cfg["env"], run_label(cfg))
            groups.setdefault(key, {}).setdefault(float(cfg["alpha"]), []).append(m)
    rows = []
    for (env, method), by_alpha in sorted(groups.items()):
        budget = min(float(m["step"][-1]) for ms in by_alpha.values() for m in ms)
        mine = []
        for alpha, ms in sorted(by_alpha.items()):
            f = np.array([_final(m["return"][m["step"] <= budget], window) for m in ms])
            sem = float(f.std(ddof=1) / np.sqrt(len(f))) if len(f) > 1 else 0.0
            mine.append(dict(env=env, method=method, alpha=alpha, mean=float(f.mean()), sem=sem, n=len(f),
                             step=budget, table1=TABLE1.get((env.removesuffix("-mbbl"), method.split("+")[0]),
                                                            (1.0, 0.0))[0], selected=False))
        if len(mine) > 1:  # one alpha is a plain run, not a sweep: nothing was selected
            max(mine, key=lambda r: r["mean"])["selected"] = True
        rows += mine
    return rows


def format_alpha_table(rows: list[dict]) -> str:
    """Markdown: one line per (env, method, alpha), the selected alpha in bold, Table 1's alpha beside it."""
    lines = ["| env | method | alpha | final return (mean ± s.e.m.) | seeds | steps | Table 1 alpha |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        a = f"**{r['alpha']:g}** (selected)" if r["selected"] else f"{r['alpha']:g}"
        lines.append(f"| {r['env']} | {label(r['method'])} | {a} | {r['mean']:.1f} ± {r['sem']:.1f} | {r['n']} | "
                     f"{r['step'] / 1000:.0f}K | {r['table1']:g} |")
    return "\n".join(lines)


def plot_alpha_sweep(run_root: str | Path, out_path: str | Path) -> Path:
    """Final return vs alpha (log axis), mean ± s.e.m. over seeds, one panel per env, one curve per method;
    the selected alpha circled, Table 1's dashed."""
    rows = alpha_table(run_root)
    if not rows:
        raise ValueError(f"no alpha-sweep runs with logged returns under {run_root}")
    plt = pyplot()
    envs = sorted({r["env"] for r in rows})
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for method in sorted({r["method"] for r in rows if r["env"] == env}):
            rs = [r for r in rows if r["env"] == env and r["method"] == method]
            x = np.array([r["alpha"] for r in rs])
            y, e = np.array([r["mean"] for r in rs]), np.array([r["sem"] for r in rs])
            n = sorted({r["n"] for r in rs})
            line, = ax.plot(x, y, "o-", color=color(method.split("+")[0]),
                            label=f"{label(method.split('+')[0])} (n={'/'.join(map(str, n))})")
            ax.fill_between(x, y - e, y + e, alpha=0.2, color=line.get_color(), linewidth=0)
            best = next(r for r in rs if r["selected"])
            ax.plot([best["alpha"]], [best["mean"]], "o", ms=12, mfc="none", color=line.get_color())
            ax.axvline(rs[0]["table1"], ls="--", lw=0.8, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("alpha (log scale)")
        ax.set_ylabel(f"final return at {rows[0]['step'] / 1000:.0f}K steps")
        ax.set_title(f"{env}, Appendix C sweep\n(circled: selected; dashed: Table 1's alpha)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, out_path, dpi=120)

