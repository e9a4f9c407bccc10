"""lab.plot: mean ± s.e.m. against hand-computed values, one label per objective."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deep.config import METHOD_NAMES
from lab.plot import METHOD_COLORS, METHOD_LABELS, label, mean_sem_on_grid
from tabular import OBJECTIVE_NAMES


def test_mean_sem_hand_computed():
    # two seeds on the same x: y = (1, 3) and (3, 5) -> mean (2, 4); sd (ddof=1) = sqrt(2) -> sem = 1
    runs = [(np.array([0.0, 1.0]), np.array([1.0, 3.0])), (np.array([0.0, 1.0]), np.array([3.0, 5.0]))]
    grid, mean, sem, n = mean_sem_on_grid(runs, n_points=2)
    np.testing.assert_allclose(grid, [0, 1])
    np.testing.assert_allclose(mean, [2, 4])
    np.testing.assert_allclose(sem, [1, 1])
    assert n == 2


def test_mean_sem_common_range_and_errors():
    runs = [(np.array([0.0, 10.0]), np.array([0.0, 10.0])), (np.array([0.0, 5.0]), np.array([0.0, 5.0]))]
    grid, mean, _, _ = mean_sem_on_grid(runs, n_points=3)
    np.testing.assert_allclose(grid, [0, 2.5, 5])  # only the range both seeds cover
    np.testing.assert_allclose(mean, [0, 2.5, 5])
    with pytest.raises(ValueError, match="no runs"):
        mean_sem_on_grid([])
    with pytest.raises(ValueError, match="run 0"):
        mean_sem_on_grid([(np.array([]), np.array([]))])


def test_every_objective_has_one_name_one_label_and_one_colour():
    names = set(OBJECTIVE_NAMES) | set(METHOD_NAMES)
    assert names == set(METHOD_LABELS) == set(METHOD_COLORS)
    assert {"mle", "ma_l1", "ma_vaml"} <= set(OBJECTIVE_NAMES) & set(METHOD_NAMES)  # shared spellings
    assert len(set(METHOD_LABELS.values())) == len(METHOD_LABELS)
    assert label("ma_l1") == "MA-L1" and label("unknown") == "unknown"


def test_compare_hand_computed_and_against_welch():
    from lab.stats import compare

    c = compare([1.0, 3.0], [0.0, 0.0, 0.0])
    assert c.diff == 2.0 and (c.n_a, c.n_b) == (2, 3)
    # Welch by hand: s_a^2 = 2, s_b^2 = 0 -> t = 2 / sqrt(2/2) = 2, df = 1 (Cauchy) -> p = 1 - 2 atan(2) / pi
    assert abs(c.p - 0.29516723530086) < 1e-9
    # n <= 5: Welch's t interval, 2 ± t_{0.975, df=1} * se with se = 1; t_{0.975,1} = tan(0.475 pi) = 12.7062...
    t = np.tan(0.475 * np.pi)
    assert c.interval == "welch" and np.allclose(c.ci, (2 - t, 2 + t), rtol=1e-9)
    assert c.verdict() == "no significant difference"
    far = compare(np.arange(10.0) + 100, np.arange(10.0))  # n = 10: the percentile bootstrap
    assert far.interval == "bootstrap" and far.verdict() == "higher" and far.p < 1e-10 and far.ci[0] > 90
    assert 90 < far.ci[0] <= far.diff <= far.ci[1] < 110  # bootstrap means lie within the samples' ranges
    assert compare([5.0], [1.0, 2.0]).verdict() == "too few seeds to test"
    with pytest.raises(ValueError, match="non-empty"):
        compare([], [1.0])


def test_welch_contrast_hand_computed_difference_of_differences():
    from lab.stats import welch_contrast

    # gap a - b is 2 - 0 in condition 1 and 0 - 1 in condition 0: change 3; variances 2, 0, 0, 2 over n = 2:
    # se^2 = 2/2 + 2/2 = 2, df = 2^2 / (1^2/1 + 1^2/1) = 2. With 2 df the t law is closed-form:
    # sf(t) = (1 - t / sqrt(t^2 + 2)) / 2 and t_{0.975} = 0.95 / sqrt(2 * 0.975 * 0.025)
    est, (lo, hi), p = welch_contrast([[1.0, 3.0], [0.0, 0.0], [0.0, 0.0], [0.0, 2.0]], [1, -1, -1, 1])
    t = 3 / np.sqrt(2)
    assert est == 3.0 and np.isclose(p, 1 - t / np.sqrt(t ** 2 + 2), rtol=1e-9)
    half = 0.95 / np.sqrt(2 * 0.975 * 0.025) * np.sqrt(2)
    assert np.allclose((lo, hi), (3 - half, 3 + half), rtol=1e-9)
    with pytest.raises(ValueError, match="one weight per group"):
        welch_contrast([[1.0, 2.0]], [1, -1])
    with pytest.raises(ValueError, match="two values in each group"):
        welch_contrast([[1.0, 2.0], [1.0]], [1, -1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=6), st.lists(st.floats(-100, 100), min_size=2, max_size=6))
def test_welch_contrast_of_two_groups_is_welchs_test(a, b):
    from scipy import stats

    from lab.stats import welch_contrast

    assume(np.std(a) + np.std(b) > 1e-6)
    est, _, p = welch_contrast([a, b], [1, -1])
    assert np.isclose(est, np.mean(a) - np.mean(b), atol=1e-9)
    assert np.isclose(p, stats.ttest_ind(a, b, equal_var=False).pvalue, rtol=1e-7, atol=1e-12)


def test_holm_hand_computed():
    from lab.stats import Comparison, holm, with_holm

    # sorted 0.01, 0.03, 0.04 of m = 3 tests: 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan], rtol=1e-12)
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    a, b = (Comparison(1.0, (0.5, 1.5), p, 3, 3) for p in (0.02, 0.03))
    a2, b2 = with_holm([a, b])
    assert (a2.p_holm, b2.p_holm) == (0.04, 0.04) and a2.verdict() == "higher"
    assert Comparison(1.0, (0.5, 1.5), 0.03, 3, 3, p_holm=0.09).verdict() == "no significant difference"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=5), st.lists(st.floats(-100, 100), min_size=2, max_size=5))
def test_welch_interval_excludes_zero_exactly_when_welch_rejects(a, b):
    """The t interval and the t test are the same statistic: 0 lies outside the 95% interval iff p < 0.05."""
    from lab.stats import compare

    c = compare(a, b)
    assume(np.isfinite(c.p) and np.std(a) + np.std(b) > 1e-6 and abs(c.p - 0.05) > 1e-9)
    assert c.ci[0] <= c.diff <= c.ci[1]
    assert (c.ci[0] > 0 or c.ci[1] < 0) == (c.p < 0.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=12))
def test_holm_is_monotone_bounded_and_no_smaller_than_p(p):
    from lab.stats import holm

    p = np.array(p)
    q = holm(p)
    ok = np.isfinite(p)
    assert np.array_equal(np.isfinite(q), ok)
    assert np.all(q[ok] >= p[ok] - 1e-15) and np.all(q[ok] <= 1.0)
    order = np.argsort(p[ok], kind="stable")
    assert np.all(np.diff(q[ok][order]) >= -1e-15)  # the adjusted values keep the raw order


def test_a_curve_ends_with_its_shortest_seed_and_the_longer_seeds_go_on_dashed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.plot import plot_learning_curves

    x_short, x_long = np.array([0.0, 100.0]), np.array([0.0, 100.0, 200.0, 300.0])
    fig, ax = plt.subplots()
    plot_learning_curves(ax, {"MA-L1": [(x_short, x_short), (x_long, 2 * x_long), (x_long, 4 * x_long)]})
    solid, dashed = ax.get_lines()
    assert solid.get_label() == "MA-L1 (n=3)" and solid.get_xdata().max() == 100.0
    assert np.isclose(solid.get_ydata()[-1], (100 + 200 + 400) / 3)  # every seed at the shortest seed's end
    assert dashed.get_linestyle() == "--" and dashed.get_label() == "MA-L1 (n=2 beyond 100)"
    assert dashed.get_xdata().min() >= 100.0 and dashed.get_xdata().max() == 300.0
    assert np.isclose(dashed.get_ydata()[-1], 3 * 300.0)  # the mean of the two longer seeds only
    plt.close(fig)


def test_plot_seed_finals_draws_every_seed_and_the_mean_with_its_sem():
    from lab.plot import plot_seed_finals, pyplot

    plt = pyplot()
    fig, ax = plt.subplots()
    plot_seed_finals(ax, {"MLE": [1.0, 3.0, 5.0], "MA-L1 + VPS": [2.0], "none": []})
    from matplotlib.collections import PathCollection

    dots = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(np.concatenate([d[:, 1] for d in dots]).tolist()) == [1.0, 2.0, 3.0, 5.0]
    means = sorted(float(c.lines[0].get_ydata()[0]) for c in ax.containers)
    assert means == [2.0, 3.0]
    # the bar of MLE spans mean ± std(ddof=1)/sqrt(3) = 3 ± 2/sqrt(3); MA-L1 (one seed) has none
    segs = [s for c in ax.collections if hasattr(c, "get_segments") for s in c.get_segments() if len(s) == 2]
    spans = sorted((float(s[0][1]), float(s[1][1])) for s in segs if s[0][1] != s[1][1])
    assert len(spans) == 1 and np.allclose(spans[0], (3 - 2 / np.sqrt(3), 3 + 2 / np.sqrt(3)))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MLE\n(n=3)", "MA-L1\n+ VPS\n(n=1)"]
    plt.close(fig)
