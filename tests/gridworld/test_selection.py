"""The gridworld's selected model settings: recomputed from the committed selection logs by the stated rule,
they are the defaults of ``RunConfig`` (and so of ``modeladv gridworld``)."""

from pathlib import Path

import numpy as np
import pytest

from gridworld.config import METHODS, SELECTED, RunConfig, selected_setting
from gridworld.selection import INIT_GRID, LR_GRID, SELECTION_SEEDS, auc, score_table, select, selection_configs

LOGS = Path(__file__).resolve().parents[2] / "results" / "gridworld_select"


def test_selected_defaults_are_what_the_committed_selection_logs_select():
    rows = score_table(LOGS)
    assert {r["n"] for r in rows} == {len(SELECTION_SEEDS)}
    assert len(rows) == 2 * len(METHODS) * len(LR_GRID) * len(INIT_GRID)  # the whole grid, both sizes
    assert select(rows) == SELECTED


def test_config_defaults_follow_the_selection_per_size_and_method():
    for (size, method), (lr, init) in SELECTED.items():
        c = RunConfig(size=size, method=method)
        assert (c.model_lr, c.model_init_scale) == (lr, init)
    assert selected_setting(10, "mle") == SELECTED[(8, "mle")]
    assert selected_setting(20, "mle") == SELECTED[(16, "mle")]
    c = RunConfig(size=16, method="ma_l1", model_lr=0.5)  # an explicit value wins, the other field is still selected
    assert c.model_lr == 0.5 and c.model_init_scale == SELECTED[(16, "ma_l1")][1]


def test_selection_seeds_are_disjoint_from_the_reported_ones():
    assert min(SELECTION_SEEDS) >= 100  # reported Figure-1 runs use seeds 0..K-1 with K <= 100
    cfgs = selection_configs([8])
    assert {c.seed for c in cfgs} == set(SELECTION_SEEDS)
    assert len(cfgs) == len(METHODS) * len(LR_GRID) * len(INIT_GRID) * len(SELECTION_SEEDS)


def test_rule_picks_the_highest_mean_auc_and_breaks_ties_by_the_larger_lr():
    rows = [dict(size=8, method=m, model_lr=lr, model_init_scale=i, n=3, auc=0.0, sem=0.0)
            for m in METHODS for lr in LR_GRID for i in INIT_GRID]
    for r in rows:
        if r["method"] == "mle" and r["model_lr"] == 0.03 and r["model_init_scale"] == 0.0:
            r["auc"] = 1.0
    chosen = select(rows)
    assert chosen[(8, "mle")] == (0.03, 0.0)
    assert chosen[(8, "ma_l1")] == (max(LR_GRID), 1.0)  # all tied: larger lr, then N(0, 1)
    with pytest.raises(ValueError, match="no complete selection runs"):
        select([r for r in rows if not (r["method"] == "ma_vaml" and r["model_lr"] == 0.01)])


def test_auc_is_the_mean_of_a_curve_over_its_budget():
    steps = np.array([0.0, 10.0, 20.0])
    assert auc(steps, np.array([0.0, 1.0, 1.0])) == pytest.approx(0.75)
    assert auc(steps, np.full(3, 2.0)) == pytest.approx(2.0)
