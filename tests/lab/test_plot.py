"""lab.plot: mean ± s.e.m. against hand-computed values, one label per objective."""

import numpy as np
import pytest

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
    assert 0.0 <= c.ci[0] <= c.diff <= c.ci[1] <= 3.0  # bootstrap means of a lie in [1, 3]
    assert c.verdict() == "no significant difference"
    far = compare(np.arange(10.0) + 100, np.arange(10.0))
    assert far.verdict() == "higher" and far.p < 1e-10 and far.ci[0] > 90
    assert compare([5.0], [1.0, 2.0]).verdict() == "too few seeds to test"
    with pytest.raises(ValueError, match="non-empty"):
        compare([], [1.0])
