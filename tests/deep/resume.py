"""A run interrupted and resumed logs exactly what an uninterrupted one does (shared by the deep tests)."""

from pathlib import Path

import numpy as np

from deep.algorithm import train_run
from lab.rundir import RunDir, read_metrics


def assert_resumes_exactly(cfg, root: Path, stop_after: int) -> tuple[Path, Path]:
    """Run ``cfg`` whole under ``root/a`` and, under ``root/b``, stopped after ``stop_after`` iterations then
    resumed; every logged column but the wall time must agree exactly. Returns both run directories."""
    full = train_run(cfg, root=root / "a", progress=False)
    part = train_run(cfg, root=root / "b", progress=False, max_iterations=stop_after)
    assert not RunDir(part).is_done()
    part = train_run(cfg, root=root / "b", progress=False)
    ma, mb = read_metrics(full), read_metrics(part)
    for key in ma:
        if key != "wall_s":
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=key)
    return full, part
