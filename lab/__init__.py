"""The run layer every experiment of model-advantage shares (imports numpy, matplotlib and the standard library).

* :mod:`lab.rundir` -- a run directory (config, metrics, checkpoint, lock, DONE) and the one protocol that
  executes, resumes or skips a run;
* :mod:`lab.pool` -- worker processes that stop with their parent, and signals as one exception;
* :mod:`lab.config` -- field checks for the experiments' frozen config dataclasses;
* :mod:`lab.plot` -- mean +- s.e.m. learning curves and grid heatmaps;
* :mod:`lab.stats` -- small-n statistics (Welch, Holm);
* :mod:`lab.guards` -- output paths and memory estimates checked before any run starts.

Arrows point down: the experiments (:mod:`gridworld`, :mod:`deep`) import this package; it imports none of them.
"""
