"""modeladv gridworld: the Figure-1 experiment (Sec. 4.1): runner, resume, summary table and figures.

    modeladv gridworld                                       # quick 8x8: 5 methods x 5 seeds, 500 real steps
    modeladv gridworld --size 8 16 --seeds 5 --out results   # the full Figure 1 (then figures/make_fig1.py)
    modeladv gridworld --methods mle ma_upper_l1 --value exact --set gamma=0.9

Each (size, method, seed) is one run of :func:`tabular.mbrl.run` in ``<out>/gridworld/<config-hash>/seed<k>/``;
runs execute in parallel processes (``--workers``), finished runs (``DONE``) are skipped and interrupted ones
resume from their checkpoint. At the end a summary table is printed and a figure written (its path printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .gridworld import GridLayout
from .mbrl import METHOD_LABELS, METHODS, Config, validate_config
from .runs import config_hash, find_runs, is_done, read_metrics, run_dir

__all__ = [
    "EXPERIMENT",
    "default_budget",
    "make_configs",
    "run_all",
    "collect",
    "summarize",
    "format_table",
    "plot_returns",
    "plot_diagnostics",
    "plot_final_cells",
    "configure",
    "run",
]

EXPERIMENT = "gridworld"
COLORS = {"mle": "tab:gray", "ma_direct_l1": "tab:orange", "ma_direct_l2": "tab:red",
          "ma_upper_l1": "tab:blue", "ma_vaml_l2": "tab:green"}


def default_budget(size: int) -> dict:
    """Real-data budget per size: 8x8 (and smaller) 50 iterations x 10 steps; larger 100 x 60."""
    return {"iterations": 50, "steps_per_iter": 10} if size <= 8 else {"iterations": 100, "steps_per_iter": 60}


def _parse_methods(methods: Iterable[str]) -> list[str]:
    names = [m for item in methods for m in str(item).replace(",", " ").split()]
    if not names:
        raise ValueError(f"no method given; choose from all, {', '.join(METHODS)}")
    if "all" in names:
        return list(METHODS)
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r}; choose from all, {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def _coerce(field: dataclasses.Field, text: str):
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    if text.lower() == "none" and "None" in kind:
        return None
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise ValueError(f"--set {field.name}: expected {kind}; got {text!r}") from None
    return text


def _overrides(items: Sequence[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ValueError(f"--set expects KEY=VALUE with KEY one of {', '.join(sorted(fields))}; got {item!r}")
        if key in ("size", "method", "seed"):
            raise ValueError(f"use --size/--methods/--seeds instead of --set {key}=...")
        out[key] = _coerce(fields[key], value.strip())
    return out


def make_configs(sizes: Sequence[int], methods: Iterable[str], seeds: int, iterations: int | None = None,
                 steps_per_iter: int | None = None, **overrides) -> list[Config]:
    """All run configs (size x method x seed), validated; ``ValueError`` on any bad input."""
    if isinstance(seeds, bool) or int(seeds) != seeds or seeds < 1:
        raise ValueError(f"seeds must be a positive integer; got {seeds!r}")
    sizes = list(sizes)
    if not sizes:
        raise ValueError("give at least one --size")
    methods = _parse_methods(methods)
    cfgs = []
    for size in sizes:
        size = GridLayout(size).size  # ValueError for size < 4 or a non-integer
        budget = default_budget(size)
        if iterations is not None:
            budget["iterations"] = iterations
        if steps_per_iter is not None:
            budget["steps_per_iter"] = steps_per_iter
        for method in methods:
            for seed in range(int(seeds)):
                cfgs.append(validate_config(Config(size=size, method=method, seed=seed,
                                                   **{**budget, **overrides})))
    return cfgs


def _one(cfg: Config, root: str, stop_after: int | None, progress: bool) -> tuple[Config, str, float]:
    from .mbrl import run as run_one

    t0 = time.perf_counter()
    path = run_one(cfg, run_dir(root, EXPERIMENT, cfg, cfg.seed), stop_after=stop_after, progress=progress)
    return cfg, str(path), time.perf_counter() - t0


def run_all(cfgs: Sequence[Config], root: str | os.PathLike, workers: int = 1, stop_after: int | None = None,
            progress: bool = True) -> list[Path]:
    """Run every config (skipping finished runs) with ``workers`` processes; returns the run directories."""
    from tqdm.auto import tqdm

    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer; got {workers!r}")
    root = str(root)
    paths = [run_dir(root, EXPERIMENT, c, c.seed) for c in cfgs]
    todo = [c for c, p in zip(cfgs, paths) if not is_done(p)]
    if len(todo) < len(cfgs):
        print(f"skipping {len(cfgs) - len(todo)} finished run(s) under {root}/{EXPERIMENT}/", file=sys.stderr)
    bar = tqdm(total=len(todo), desc="gridworld runs", unit="run", disable=not progress or not todo)
    if workers == 1 or len(todo) <= 1:
        for c in todo:
            bar.set_postfix_str(f"{c.method} {c.size}x{c.size} seed {c.seed}")
            _one(c, root, stop_after, progress)
            bar.update()
    else:
        import multiprocessing as mp

        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # one core per worker process (inherited by the spawned children)
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_one, c, root, stop_after, False) for c in todo]
            for f in as_completed(futures):
                c, _, secs = f.result()
                bar.set_postfix_str(f"{c.method} {c.size}x{c.size} seed {c.seed} ({secs:.0f}s)")
                bar.update()
    bar.close()
    return paths


# ---- reading logs -------------------------------------------------------------------------------------
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
            if (Path(p) / "metrics.csv").exists():
                found.append((json.loads((Path(p) / "config.json").read_text()), Path(p)))
    groups: dict[tuple, dict[str, list]] = {}
    for cfg, p in found:
        if not (p / "metrics.csv").exists():
            continue
        m = read_metrics(p)
        if len(m.get("steps", ())) == 0:
            continue
        m["_path"] = p
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
        best = GridLayout(size).best_return
        for method, seeds in by_method.items():
            first, first_near, auc, final = [], [], [], []
            censored = censored_near = 0
            for m in seeds:
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
                             optimum=best, first=ms(first), censored=censored, first_near=ms(first_near),
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

        lines.append([f"{r['size']}x{r['size']}", METHOD_LABELS.get(r["method"], r["method"]), str(r["n"]),
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
    return {METHOD_LABELS[m]: [(r["steps"], f(r[key])) for r in seeds] for m, seeds in by_method.items()}


def _colors() -> dict:
    return {METHOD_LABELS[m]: c for m, c in COLORS.items()}


def plot_returns(runs: Mapping[int, Mapping[str, list[dict]]], out: str | os.PathLike, render: bool = True,
                 key: str = "return", title: str | None = None) -> Path:
    """Figure 1: (left) the rendered 8x8 environment, then return vs real steps per grid size, mean ± s.e.m.
    over seeds; the dashed line at 1 separates reaching the goal (above) from not (below)."""
    from .gridworld import render_layout
    from .plot import plot_learning_curves, save_figure, pyplot

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
    from .plot import plot_learning_curves, save_figure, pyplot

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
    from .mbrl import FINAL_CELLS
    from .plot import plot_grid_heatmap, save_figure, pyplot

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
        plot_grid_heatmap(axes[0, j], c["d"], title=f"{METHOD_LABELS[method]}\nd(s) of final π", cmap="magma")
        plot_grid_heatmap(axes[1, j], c["ma"], title="E_P* A_Mφ(s, ·)", cmap="coolwarm", vmin=-lim, vmax=lim)
    fig.suptitle(f"{size}x{size}, seed {seed_index}: where the final policy goes, and the model's value errors there",
                 fontsize=9)
    return save_figure(fig, out)


# ---- CLI ----------------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n".join(__doc__.split("\n\n")[1:2])
    parser.add_argument("--size", type=int, nargs="+", default=[8], help="grid size(s), walls included (default 8)")
    parser.add_argument("--methods", nargs="+", default=["all"],
                        help=f"'all' or any of: {', '.join(METHODS)} (default all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 per method (default 5)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="outer iterations (default: 50 for size <= 8, else 100)")
    parser.add_argument("--steps-per-iter", type=int, default=None,
                        help="real steps per iteration (default: 10 for size <= 8, else 60)")
    parser.add_argument("--value", choices=("learned", "exact"), default="learned",
                        help="value for the objectives and A2C: learned tabular critic or exact V^pi in the model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other tabular.mbrl.Config field, e.g. --set gamma=0.9 (repeatable)")
    parser.add_argument("--out", default="runs", help="run root (default runs/)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--figure", default=None,
                        help="figure path (default figures/gridworld_<sizes>.png)")
    parser.add_argument("--no-figure", action="store_true", help="skip the figure")
    parser.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)  # tests: interrupt runs


def run(args: argparse.Namespace) -> int:
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be a positive integer; got {args.stop_after}")
    cfgs = make_configs(args.size, args.methods, args.seeds, args.iterations, args.steps_per_iter,
                        value=args.value, **_overrides(args.overrides))
    t0 = time.perf_counter()
    paths = run_all(cfgs, args.out, workers=args.workers, stop_after=args.stop_after)
    wall = time.perf_counter() - t0
    runs = collect(args.out, paths)
    print(format_table(summarize(runs)))
    print(f"{len(cfgs)} run(s) in {wall:.0f} s; logs under {Path(args.out) / EXPERIMENT}/")
    if not args.no_figure and runs:
        fig = args.figure or f"figures/gridworld_{'_'.join(str(s) for s in sorted(set(args.size)))}.png"
        print(f"figure: {plot_returns(runs, fig)}")
    return 0
