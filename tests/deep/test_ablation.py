"""deep.ablation and the ablation's cells (deep.protocol.SWITCHES): which config is which cell, the switches'
values, and the table's statistics on hand-made logs."""

import json

import numpy as np
import pytest
from scipy import stats

from deep.ablation import cell_of, markdown, plot, seed_finals, table
from deep.config import HASH_EXCLUDE, RunConfig
from deep.protocol import AUTHORS, CELLS, SWITCHES, cell_overrides, ours_defaults
from deep.sweep import plan

#: each switch's fields, written out from the authors' values in tests/deep/test_protocol.py's READ
EXPECTED = {
    "rollouts": {"refresh_samples": 4000, "policy_samples": 4000, "rollout_envs": 4, "refresh_after": True},
    "reward_term": {"reward_term": False},
    "exploration": {"ou_sigma": 0.3, "ou_theta": 0.15, "entropy_coef": 0.005, "entropy_steps": 500_000},
    "update_ratio": {"n_real": 10_000, "rounds": 20, "k_model": 2000, "k_policy": 800, "value_refresh_every": 20},
    "small": {"model_init_std": 1e-5, "value_max_grad_norm": 2.0, "horizon": 2, "slbo_mean_over_h": True},
}


def test_switches_hold_the_authors_values():
    assert tuple(SWITCHES) == tuple(EXPECTED)
    for name, fields in EXPECTED.items():
        assert cell_overrides(name) == fields
    assert cell_overrides("ours") == {}
    with pytest.raises(ValueError, match="unknown ablation cell 'fast'"):
        cell_overrides("fast")


def test_row_cells_follow_their_switch_and_stand_alone():
    assert CELLS[0] == "ours" and CELLS[-1] == "authors"
    assert CELLS.index("ou_noise") == CELLS.index("exploration") + 1
    assert cell_overrides("ou_noise") == {"ou_sigma": 0.3, "ou_theta": 0.15}
    assert cell_overrides("entropy_bonus") == {"entropy_coef": 0.005, "entropy_steps": 500_000}
    assert "n_iters" not in CELLS  # 20 rounds alone do not divide today's 10 TRPO updates
    for cell in CELLS:
        RunConfig(**cell_overrides(cell))  # each is a valid config


def test_every_mapped_divergence_is_in_exactly_one_switch():
    keys = [k for rows in SWITCHES.values() for k in rows]
    assert len(keys) == len(set(keys)) and set(keys) <= {s.key for s in AUTHORS}
    d = ours_defaults()
    # rows that change a run's numbers (evaluate_every changes none: it is not part of a run's identity)
    assert "evaluate_every" in HASH_EXCLUDE
    differing = {s.key for s in AUTHORS if any(d[k] != v for k, v in s.config.items() if k != "evaluate_every")}
    assert differing <= set(keys), differing - set(keys)
    assert "evaluation" not in differing and cell_overrides("authors")["evaluate_every"] == 1
    # together the switches are the authors' protocol (the rows whose values are ours already aside)
    together = {k: v for name in SWITCHES for k, v in cell_overrides(name).items()}
    assert all(cell_overrides("authors")[k] == v for k, v in together.items())
    assert {k for k, v in cell_overrides("authors").items() if d[k] != v and k != "evaluate_every"} <= set(together)


@pytest.mark.parametrize("env", ["hopper-slbo", "hopper"])
def test_cell_of_finds_every_cell(env):
    for cell in CELLS:
        cfg = RunConfig(env=env, method="ma_l1", seed=3, steps=50_000, **cell_overrides(cell))
        expect = "ours" if cell == "reward_term" and env == "hopper-slbo" else cell
        assert cell_of(cfg) == expect and cell_of(cfg.to_dict()) == expect
    assert cell_of(RunConfig(env=env, method="mle", reward_term=False)) == "ours"  # MLE has no value gap
    assert cell_of(RunConfig(env=env, method="ma_l1", ou_sigma=0.3)) == "ou_noise"  # one row of a switch
    assert cell_of(RunConfig(env=env, method="ma_l1", ou_sigma=0.3, entropy_coef=0.001)) is None  # not theirs
    assert cell_of(RunConfig(env=env, method="ma_l1", alpha=0.5)) is None  # not Table 1's alpha


def test_sweep_plans_each_cell_once_per_run():
    cfgs = plan(["hopper-slbo", "hopper"], ["mle", "slbo", "ma_l1"], 2, [100_000], cells=CELLS)
    per = {}
    for c in cfgs:
        per.setdefault((c.env, c.method), []).append(cell_of(c))
    # every run planned once per seed, and only in the cells that change what it computes: reward_term changes
    # only value-aware runs on Gymnasium's tasks; MLE and SLBO refit no value on model rollouts (refresh_timing,
    # refresh_interval); the mean over h is SLBO's (slbo_loss)
    no_refit = {"refresh_timing", "refresh_interval"}
    skipped = {("hopper", "ma_l1"): {"slbo_loss"}, ("hopper-slbo", "ma_l1"): {"reward_term", "slbo_loss"},
               ("hopper", "slbo"): {"reward_term"} | no_refit, ("hopper-slbo", "slbo"): {"reward_term"} | no_refit,
               ("hopper", "mle"): {"reward_term", "slbo_loss"} | no_refit,
               ("hopper-slbo", "mle"): {"reward_term", "slbo_loss"} | no_refit}
    for key, skip in skipped.items():
        assert per[key] == 2 * [c for c in CELLS if c not in skip], key
    with pytest.raises(ValueError, match="cell 'update_ratio' sets k_model"):
        plan(["hopper"], ["mle"], 1, [1000], cells=["update_ratio"], k_model=7)


def _write_run(root, name, cfg: RunConfig, steps, returns):
    d = root / "deep" / name / f"seed{cfg.seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    rows = ["step,return"] + [f"{int(s)},{float(r)!r}" for s, r in zip(steps, returns)]
    (d / "metrics.csv").write_text("\n".join(rows) + "\n")


def _grid(every):
    return np.arange(every, 100_001, every)


def test_table_on_hand_made_logs(tmp_path):
    """ours: MLE 100/110/120, MA-L1 50/60/70 (gap -50); exploration: both 100/110/120 (gap 0, change +50).
    ours logs every 2K steps, the update_ratio cell every 10K: each seed's final is its last 10K steps."""
    env = "hopper-slbo"
    for seed, base in enumerate((100.0, 110.0, 120.0)):
        for cell, mle, ma in (("ours", base, base - 50), ("exploration", base, base)):
            over = cell_overrides(cell)
            x = _grid(2000)
            # the last 5 logged points (the last 10K steps) average to the value; earlier ones are far off
            tail = lambda v: np.where(x > 90_000, v + np.array([-2.0, -1.0, 0.0, 1.0, 2.0] * 10)[:len(x)], -999.0)
            _write_run(tmp_path, f"{cell}-mle", RunConfig(env=env, method="mle", seed=seed, **over), x, tail(mle))
            _write_run(tmp_path, f"{cell}-ma", RunConfig(env=env, method="ma_l1", seed=seed, **over), x, tail(ma))
        over = cell_overrides("update_ratio")
        x = _grid(10_000)
        _write_run(tmp_path, "ur-mle", RunConfig(env=env, method="mle", seed=seed, **over), x,
                   np.where(x == 100_000, base, -999.0))
    # a run short of the budget is named and left out
    _write_run(tmp_path, "ur-ma", RunConfig(env=env, method="ma_l1", seed=0, **over), _grid(10_000)[:5],
               np.zeros(5))
    finals, short = seed_finals(tmp_path, 100_000)
    assert finals[(env, "ours", "mle")] == pytest.approx({0: 100.0, 1: 110.0, 2: 120.0})
    assert finals[(env, "update_ratio", "mle")] == pytest.approx({0: 100.0, 1: 110.0, 2: 120.0})
    assert (env, "update_ratio", "ma_l1") not in finals
    assert len(short) == 1 and "update_ratio ma_l1 seed 0: 50000 of 100000" in short[0]
    rows = table(finals)
    assert [r.cell for r in rows] == ["ours", "exploration"]  # update_ratio lacks MA-L1
    ours, expl = rows
    assert ours.gap.diff == pytest.approx(-50.0) and expl.gap.diff == pytest.approx(0.0)
    # change: +50; four groups of variance 100 over n = 3: se^2 = 4 * 100 / 3, df = (4v)^2 / (4 v^2 / 2) = 8
    se = np.sqrt(4 * 100 / 3)
    assert expl.change.diff == pytest.approx(50.0)
    assert expl.change.p == pytest.approx(2 * stats.t.sf(50 / se, 8), rel=1e-9)
    assert expl.change.ci == pytest.approx((50 - stats.t.ppf(0.975, 8) * se, 50 + stats.t.ppf(0.975, 8) * se))
    # Holm over the three tests of the table (two gaps, one change); the gap of 0 has p = 1
    # Holm over each column: the two gaps (sorted ascending: 2p, then max(2p, p)); the one change alone
    lo, hi = sorted([ours.gap.p, expl.gap.p])
    assert sorted([ours.gap.p_holm, expl.gap.p_holm]) == pytest.approx([min(1, 2 * lo), max(min(1, 2 * lo), hi)])
    assert expl.change.p_holm == pytest.approx(expl.change.p)
    text = markdown(rows)
    assert "| hopper-slbo | exploration | 110 ± 6 (n = 3) | 110 ± 6 (n = 3) | +0 " in text
    assert plot(rows, tmp_path / "fig.png", step=100_000).stat().st_size > 0


def test_a_cell_that_leaves_mle_alone_compares_ma_l1_with_its_ours_runs(tmp_path):
    """reward_term changes MA-L1 only: its row reads MLE from ours, and the change of the gap is MA-L1's own
    change (a two-group Welch test: the shared MLE runs are not counted twice)."""
    x = _grid(2000)
    for seed, v in enumerate((0.0, 10.0, 20.0)):
        _write_run(tmp_path, "mle", RunConfig(env="hopper", method="mle", seed=seed), x, np.full(50, 100 + v))
        _write_run(tmp_path, "ma", RunConfig(env="hopper", method="ma_l1", seed=seed), x, np.full(50, 50 + v))
        _write_run(tmp_path, "ma-rt", RunConfig(env="hopper", method="ma_l1", seed=seed, reward_term=False), x,
                   np.full(50, 90 + 2 * v))
    ours, rt = table(seed_finals(tmp_path, 100_000)[0])
    assert rt.cell == "reward_term" and list(rt.finals["mle"]) == [100.0, 110.0, 120.0]
    assert rt.gap.diff == pytest.approx(0.0) and rt.change.diff == pytest.approx(50.0)
    expect = stats.ttest_ind([90.0, 110.0, 130.0], [50.0, 60.0, 70.0], equal_var=False).pvalue
    assert rt.change.p == pytest.approx(expect, rel=1e-9)


def test_a_cell_of_fields_mle_never_reads_is_its_ours_run(tmp_path):
    """refresh_timing moves the value refits, which MLE does not do: MLE's row reads its ours runs (a run logged
    under the cell's config is left unread), and the change of the gap is MA-L1's own change."""
    x = _grid(2000)
    over = cell_overrides("refresh_timing")
    for seed, v in enumerate((0.0, 10.0, 20.0)):
        _write_run(tmp_path, "mle", RunConfig(env="hopper-slbo", method="mle", seed=seed), x, np.full(50, 100 + v))
        _write_run(tmp_path, "mle-rt", RunConfig(env="hopper-slbo", method="mle", seed=seed, **over), x,
                   np.full(50, 500.0))
        _write_run(tmp_path, "ma", RunConfig(env="hopper-slbo", method="ma_l1", seed=seed), x, np.full(50, 50 + v))
        _write_run(tmp_path, "ma-rt", RunConfig(env="hopper-slbo", method="ma_l1", seed=seed, **over), x,
                   np.full(50, 30 + 2 * v))
    ours, rt = table(seed_finals(tmp_path, 100_000)[0])
    assert rt.cell == "refresh_timing" and list(rt.finals["mle"]) == [100.0, 110.0, 120.0]
    assert rt.gap.diff == pytest.approx(-60.0) and rt.change.diff == pytest.approx(-10.0)
    expect = stats.ttest_ind([30.0, 50.0, 70.0], [50.0, 60.0, 70.0], equal_var=False).pvalue
    assert rt.change.p == pytest.approx(expect, rel=1e-9)


def test_eval_finals_read_the_evaluation_at_the_step(tmp_path):
    cfg = RunConfig(env="hopper", method="mle", seed=4)
    _write_run(tmp_path, "x", cfg, _grid(2000), np.ones(50))
    d = tmp_path / "deep" / "x" / "seed4"
    finals, short = seed_finals(tmp_path, 100_000, measure="eval")
    assert finals == {} and "no evaluation at 100000 steps" in short[0]
    (d / "evaluation.csv").write_text("step,eval_return,eval_episodes,n_envs,steps_per_env\n"
                                      "50000,3.0,9,4,2500\n100000,7.5,8,4,2500\n100000,1.0,2,1,100\n")
    finals, short = seed_finals(tmp_path, 100_000, measure="eval")
    assert finals == {("hopper", "ours", "mle"): {4: 7.5}} and short == []
    assert seed_finals(tmp_path, 100_000, measure="return")[0] == {("hopper", "ours", "mle"): {4: 1.0}}
    with pytest.raises(ValueError, match="measure must be"):
        seed_finals(tmp_path, 100_000, measure="best")


def test_eval_finals_average_the_evaluations_inside_the_window(tmp_path):
    """deep.plot.eval_finals: each run's mean of its evaluations in (step - window, step] with the authors' sizes
    (the open end and a later row are outside); a run with none at the step itself, or with fewer in the window
    than another seed, is left out and named; a negative or NaN window is refused. collect_curves reads the same
    rows as curves."""
    from deep.plot import EVAL_KEY, collect_curves, eval_finals

    rows = {0: "50000,3.0\n60000,5.0\n70000,9.0\n80000,1.0\n90000,50.0\n", 1: "50000,7.0\n60000,2.0\n70000,6.0\n"
            "80000,4.0\n", 2: "60000,8.0\n", 3: "60000,5.0\n80000,2.0\n"}
    for seed, body in rows.items():
        _write_run(tmp_path, "x", RunConfig(env="hopper", method="mle", seed=seed), _grid(2000), np.ones(50))
        lines = "".join(f"{line},9,4,2500\n" for line in body.split()) + "80000,100.0,2,1,100\n"
        (tmp_path / "deep" / "x" / f"seed{seed}" / "evaluation.csv").write_text(
            "step,eval_return,eval_episodes,n_envs,steps_per_env\n" + lines)
    finals, missing = eval_finals(tmp_path, 80_000, window=30_000)
    (label, (f, step)), = finals.items()
    assert label == ("hopper", "mle") and step == 80_000
    assert list(f) == [pytest.approx((5.0 + 9.0 + 1.0) / 3), pytest.approx(4.0)]  # 50000 is the open end
    assert len(missing) == 2 and "seed 2: no evaluation at 80000 steps" in missing[0]
    assert "seed 3: 2 evaluations in the window, another seed has 3" in missing[1]
    assert list(eval_finals(tmp_path, 80_000)[0][label][0]) == [1.0, 4.0, 2.0]  # no window: the one at the step
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="window must be >= 0"):
            eval_finals(tmp_path, 80_000, window=bad)
    curves = collect_curves(tmp_path, key=EVAL_KEY)["hopper"]["mle"]  # the evaluation curves, by step
    assert [list(x) for x, _ in curves] == [[50_000, 60_000, 70_000, 80_000, 90_000],
                                            [50_000, 60_000, 70_000, 80_000], [60_000], [60_000, 80_000]]
    assert [list(y) for _, y in curves][0] == [3.0, 5.0, 9.0, 1.0, 50.0]


def test_curves_are_cut_at_the_budget(tmp_path):
    from deep.ablation import curves

    _write_run(tmp_path, "x", RunConfig(env="hopper", method="mle", seed=0), _grid(2000), np.arange(50.0))
    (x, y), = curves(tmp_path, 10_000)[("hopper", "ours")]["mle"]
    assert list(x) == [2000, 4000, 6000, 8000, 10000] and list(y) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_seed_logged_twice_is_an_error(tmp_path):
    cfg = RunConfig(env="hopper", method="mle", seed=0)
    for root in ("a", "b"):
        _write_run(tmp_path / root, "x", cfg, _grid(2000), np.ones(50))
    with pytest.raises(ValueError, match="hopper ours mle seed 0 is logged twice"):
        seed_finals([tmp_path / "a", tmp_path / "b"], 100_000)


def test_the_figure_script_writes_table_and_figure_and_refuses_an_empty_root(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("make_ablation",
                                                  Path(__file__).parents[2] / "figures" / "make_ablation.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for seed in (0, 1):
        for method, value in (("mle", 10.0 * seed), ("ma_l1", 5.0 + seed)):
            _write_run(tmp_path, method, RunConfig(env="hopper", method=method, seed=seed), _grid(2000),
                       np.full(50, value))
    out = tmp_path / "t.md"
    assert script.main(["--root", str(tmp_path), "--envs", "hopper", "--figure", str(tmp_path / "f.png"),
                        "--table", str(out)]) == 0
    # MLE 0, 10; MA-L1 5, 6: gap +0.5, one test in the table
    text = out.read_text()
    assert "the 1 gap tests, the 0 change tests" in text
    assert "| hopper | ours | 5 ± 5 (n = 2) | 6 ± 0 (n = 2) | +0 " in text
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f_curves.png").stat().st_size > 0
    for bad in (["--root", str(tmp_path / "nowhere")], ["--root", str(tmp_path), "--envs", "ant"]):
        with pytest.raises(SystemExit) as e:
            script.main(bad + ["--figure", str(tmp_path / "g.png")])
        assert e.value.code == 2
    assert not (tmp_path / "g.png").exists()
