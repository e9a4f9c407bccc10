"""lab.rundir: layout, whole-row metrics, torn-row repair, DONE records, locks and the execute protocol."""

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lab.rundir import CorruptRun, RunDir, RunLocked, config_hash, execute, find_runs, read_metrics


@dataclasses.dataclass(frozen=True)
class Cfg:
    size: int = 8
    method: str = "mle"
    seed: int = 0


class Counter:
    """A toy trainer: one random number per iteration from a generator it checkpoints."""

    def __init__(self, seed=0):
        self.position, self.rng = 0, np.random.default_rng(seed)

    def iterate(self):
        self.position += 1
        return {"it": self.position, "x": float(self.rng.random())}

    def dumps(self):
        return json.dumps({"position": self.position, "rng": self.rng.bit_generator.state}).encode()

    def loads(self, data):
        d = json.loads(data)
        self.position = d["position"]
        self.rng.bit_generator.state = d["rng"]


def _run(path, target=6, **kw):
    return execute(RunDir(path), Cfg(), Counter, target, first_row=lambda t: {"it": 0, "x": -1.0}, **kw)


def test_config_hash_ignores_seed_and_is_order_independent():
    assert config_hash(Cfg(seed=0)) == config_hash(Cfg(seed=3))
    assert config_hash(Cfg(method="mle")) != config_hash(Cfg(method="ma_l1"))
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="dataclass instance or a mapping"):
        config_hash([1, 2])


def test_layout_and_find_runs(tmp_path):
    rd = RunDir.for_config(tmp_path, "exp", dataclasses.asdict(Cfg()), seed=4)
    assert rd.path == tmp_path / "exp" / config_hash(Cfg()) / "seed4"
    assert not rd.path.exists()  # nothing is written until asked
    _run(rd.path)
    (cfg, path), = find_runs(tmp_path, "exp")
    assert cfg == dataclasses.asdict(Cfg()) and path == rd.path
    with pytest.raises(ValueError, match="no metrics file"):
        read_metrics(tmp_path)


def test_execute_logs_every_iteration_once_and_resumes_exactly(tmp_path):
    whole = _run(tmp_path / "whole")
    part = tmp_path / "part"
    _run(part, max_iterations=2)
    assert not RunDir(part).is_done() and read_metrics(part)["it"].tolist() == [0, 1, 2]
    _run(part, max_iterations=1)
    _run(part)
    a, b = read_metrics(whole.path), read_metrics(part)
    assert a["it"].tolist() == b["it"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(a["x"], b["x"])  # the same numbers as one uninterrupted run
    assert RunDir(part).done_position() == 6
    mtime = (part / "metrics.csv").stat().st_mtime_ns
    _run(part)  # finished: skipped
    assert (part / "metrics.csv").stat().st_mtime_ns == mtime


def test_rows_after_the_checkpoint_and_a_torn_row_are_repaired(tmp_path):
    whole = _run(tmp_path / "whole").path
    path = tmp_path / "r"
    _run(path, max_iterations=2, checkpoint_every=2)
    with open(path / "metrics.csv", "a") as f:
        f.write("3,0.5\n4,0.2")  # a row logged after the checkpoint, then one torn mid-write
    assert read_metrics(path)["it"].tolist() == [0, 1, 2, 3]  # readers skip the torn row
    _run(path)
    assert (path / "metrics.csv").read_bytes() == (whole / "metrics.csv").read_bytes()


def test_log_shorter_than_its_checkpoint_is_an_error(tmp_path):
    path = tmp_path / "r"
    _run(path, max_iterations=3)
    lines = (path / "metrics.csv").read_text().splitlines(keepends=True)
    (path / "metrics.csv").write_text("".join(lines[:-1]))  # the row of the checkpointed iteration is lost
    with pytest.raises(CorruptRun, match=r"ends at position 2 but the checkpoint is at 3; delete the run directory"):
        _run(path)


def test_a_done_run_whose_log_changed_is_not_trusted(tmp_path):
    path = _run(tmp_path / "r").path
    with open(path / "metrics.csv", "a") as f:
        f.write("7,0.1\n")
    with pytest.raises(CorruptRun, match="does not match the run's DONE record"):
        _run(path)
    (path / "DONE").write_text("{not json")
    with pytest.raises(CorruptRun, match="DONE is unreadable; delete the run directory"):
        RunDir(path).is_done()


def test_legacy_empty_done_marker_is_checked_against_the_log(tmp_path):
    path = _run(tmp_path / "r").path
    (path / "DONE").write_text("")
    assert RunDir(path).done_position() == 6
    (path / "metrics.csv").unlink()
    with pytest.raises(CorruptRun, match="no metrics"):
        RunDir(path).done_position()


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated", b"\x00" * 10])
def test_corrupt_checkpoint_or_config_names_the_file(tmp_path, damage):
    path = tmp_path / "r"
    _run(path, max_iterations=2)
    (path / "checkpoint").write_bytes(damage)
    with pytest.raises(CorruptRun) as e:
        _run(path)
    msg = str(e.value)
    assert str(path / "checkpoint") in msg and "delete the run directory" in msg and "weights_only" not in msg
    (path / "config.json").write_bytes(damage)
    with pytest.raises(CorruptRun, match="config.json is unreadable"):
        _run(path)


def test_a_run_with_another_config_is_refused(tmp_path):
    path = tmp_path / "r"
    _run(path, max_iterations=1)
    with pytest.raises(CorruptRun, match=r"describes another run \(differs in size\)"):
        execute(RunDir(path), Cfg(size=9), Counter, 6)


def test_lock_names_its_holder_and_writes_nothing(tmp_path):
    holder = RunDir(tmp_path / "r")
    holder.acquire()
    try:
        other = RunDir(tmp_path / "r")
        with pytest.raises(RunLocked, match=f"in use by process {os.getpid()}; wait for it, or pass --wait"):
            _run(other.path)
        assert sorted(p.name for p in other.path.iterdir()) == ["lock"]
    finally:
        holder.release()
    _run(holder.path)
    assert holder.is_done()


def test_lock_waits_for_its_holder(tmp_path):
    holder = RunDir(tmp_path / "r")
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    t0 = time.monotonic()
    _run(holder.path, wait=True)
    assert time.monotonic() - t0 >= 0.25 and RunDir(holder.path).is_done()


def test_rows_are_whole_lines_appended_per_iteration(tmp_path):
    path = tmp_path / "r"
    sizes = []
    execute(RunDir(path), Cfg(), Counter, 3, on_row=lambda row: sizes.append((path / "metrics.csv").stat().st_size))
    text = (path / "metrics.csv").read_text()
    assert text.endswith("\n") and len(sizes) == 3 and sizes == sorted(set(sizes))  # flushed row by row
    assert [len(line.split(",")) for line in text.splitlines()] == [2, 2, 2, 2]


def test_extending_a_finished_run_without_checkpoint_reruns_it_identically(tmp_path):
    path = _run(tmp_path / "r", target=3).path
    short = (path / "metrics.csv").read_text()
    (path / "checkpoint").unlink()  # as committed logs are: no checkpoint
    with pytest.warns(RuntimeWarning, match="no checkpoint to extend from 3 to 6: rerunning it from the start"):
        _run(path, target=6)
    assert (path / "metrics.csv").read_text().startswith(short)
    assert (path / "metrics.csv").read_bytes() == (_run(tmp_path / "whole").path / "metrics.csv").read_bytes()
    assert not (path / "extending.json").exists()  # every row agreed: the saved log is dropped


class Changed(Counter):
    """The toy trainer after a code change: the same rows up to iteration 2, other numbers from then on, and a
    wall-time column that differs from run to run."""

    def iterate(self):
        row = super().iterate()
        return {**row, "x": row["x"] + (self.position >= 2), "wall_s": time.perf_counter()}


def _finished_without_checkpoint(path, trainer=Counter):
    execute(RunDir(path), Cfg(), trainer, 3, first_row=lambda t: {"it": 0, "x": -1.0, "wall_s": 0.0}
            if trainer is Changed else {"it": 0, "x": -1.0})
    (path / "checkpoint").unlink()  # as committed logs are
    (path / "checkpoint.rows").unlink()
    (path / "evaluation.csv").write_text("step,eval\n3,1.5\n")  # a file another layer keeps beside the log
    return {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"}


def test_extending_a_run_the_code_no_longer_reproduces_is_refused_and_its_files_put_back(tmp_path):
    path = tmp_path / "r"
    before = _finished_without_checkpoint(path)
    with pytest.warns(RuntimeWarning, match="each row checked against its log"), \
            pytest.raises(CorruptRun, match=r"logs x = 1\.\d+ at position 2, where its log has 0\.\d+.*another root"):
        execute(RunDir(path), Cfg(), Changed, 6, first_row=lambda t: {"it": 0, "x": -1.0, "wall_s": 0.0})
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"} == before  # no checkpoint either
    assert RunDir(path).done_position() == 3


def test_a_wall_time_column_is_not_compared_and_a_killed_extension_still_checks_on_resume(tmp_path):
    path = tmp_path / "r"
    _finished_without_checkpoint(path)
    with pytest.warns(RuntimeWarning):  # kill after the first row: the saved files stay, a checkpoint at 1
        execute(RunDir(path), Cfg(), Counter, 6, first_row=lambda t: {"it": 0, "x": -1.0}, max_iterations=1)
    assert (path / "extending.json").exists() and not (path / "DONE").exists()
    (path / "evaluation.csv").write_text("step,eval\n0,9.0\n")  # what the rerun's other layer wrote
    with pytest.raises(CorruptRun, match="at position 2"):  # resumed from 1; iteration 2 differs
        execute(RunDir(path), Cfg(), Changed, 6)
    assert (path / "evaluation.csv").read_text() == "step,eval\n3,1.5\n" and RunDir(path).done_position() == 3

    other = tmp_path / "w"  # a log with a wall-time column: reruns differ only there, and extend
    _finished_without_checkpoint(other, Changed)
    with pytest.warns(RuntimeWarning):
        execute(RunDir(other), Cfg(), Changed, 6, first_row=lambda t: {"it": 0, "x": -1.0, "wall_s": 0.0})
    assert RunDir(other).done_position() == 6 and not (other / "extending.json").exists()


def test_a_kill_while_the_files_are_put_back_or_a_shorter_target_leaves_the_finished_run(tmp_path, monkeypatch):
    import lab.rundir as rundir

    path = tmp_path / "r"
    before = _finished_without_checkpoint(path)
    write = rundir.atomic_write_bytes

    def killed_at_the_log(p, data):  # the kill lands while restore_previous writes the old log back
        if Path(p).name == "metrics.csv":
            raise KeyboardInterrupt
        write(p, data)

    monkeypatch.setattr(rundir, "atomic_write_bytes", killed_at_the_log)
    with pytest.warns(RuntimeWarning), pytest.raises(KeyboardInterrupt):
        execute(RunDir(path), Cfg(), Changed, 6, first_row=lambda t: {"it": 0, "x": -1.0, "wall_s": 0.0})
    monkeypatch.setattr(rundir, "atomic_write_bytes", write)
    assert not (path / "DONE").exists() and (path / "extending.json").exists()  # DONE is put back last
    execute(RunDir(path), Cfg(), Counter, 3)  # the old target: the saved finished run is the run
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"} == before

    with pytest.warns(RuntimeWarning):  # an extension stopped after one iteration, then a shorter target
        execute(RunDir(path), Cfg(), Counter, 6, first_row=lambda t: {"it": 0, "x": -1.0}, max_iterations=1)
    execute(RunDir(path), Cfg(), Counter, 2)
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"} == before


def test_a_rerun_that_no_longer_logs_a_column_is_refused(tmp_path):
    path = tmp_path / "r"
    before = _finished_without_checkpoint(path)
    with pytest.warns(RuntimeWarning), pytest.raises(CorruptRun, match="no column x at position 0, where its log has"):
        execute(RunDir(path), Cfg(), Counter, 6, first_row=lambda t: {"it": 0})
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != "lock"} == before
