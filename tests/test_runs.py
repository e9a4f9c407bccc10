"""tabular.runs (run layout, resume) and tabular.plot.mean_sem_on_grid against hand-computed values."""

import dataclasses
import json

import numpy as np
import pytest

from tabular.plot import mean_sem_on_grid
from tabular.runs import (MetricsWriter, config_hash, find_runs, is_done, mark_done, read_metrics, run_dir,
                          write_config)


@dataclasses.dataclass(frozen=True)
class Cfg:
    size: int = 8
    method: str = "mle"
    seed: int = 0


def test_config_hash_ignores_seed_and_is_order_independent():
    assert config_hash(Cfg(seed=0)) == config_hash(Cfg(seed=3))
    assert config_hash(Cfg(method="mle")) != config_hash(Cfg(method="ma_upper_l1"))
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="dataclass instance or a mapping"):
        config_hash([1, 2])


def test_run_dir_layout(tmp_path):
    d = run_dir(tmp_path, "gridworld", Cfg(), seed=4)
    assert d == tmp_path / "gridworld" / config_hash(Cfg()) / "seed4"


def test_metrics_resume_truncates_and_never_duplicates(tmp_path):
    path = tmp_path / "r" / "metrics.csv"
    w = MetricsWriter(path)
    for step in (10, 20, 30):
        w.write({"step": step, "ret": step / 10})
    # resume from a checkpoint taken at step 20: the row logged at 30 must go
    w2 = MetricsWriter(path, truncate_after=20)
    w2.write({"step": 30, "ret": 3.5})
    m = read_metrics(path)
    np.testing.assert_array_equal(m["step"], [10, 20, 30])
    np.testing.assert_array_equal(m["ret"], [1.0, 2.0, 3.5])
    with pytest.raises(ValueError, match="differ from the header"):
        w2.write({"step": 40})


def test_done_marker_and_find_runs(tmp_path):
    d = run_dir(tmp_path, "exp", Cfg(), 0)
    write_config(d, Cfg())
    assert not is_done(d)
    mark_done(d)
    assert is_done(d)
    (cfg, path), = find_runs(tmp_path, "exp")
    assert cfg == dataclasses.asdict(Cfg()) and path == d
    assert json.loads((d / "config.json").read_text())["size"] == 8
    with pytest.raises(ValueError, match="no metrics file"):
        read_metrics(d)


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
