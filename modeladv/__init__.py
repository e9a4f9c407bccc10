"""The run layer and the ``modeladv`` command line shared by every experiment of model-advantage.

* :mod:`modeladv.rundir` -- a run directory (config, metrics, checkpoint, lock, DONE) and the one protocol that
  executes, resumes or skips a run;
* :mod:`modeladv.pool` -- worker processes that stop with their parent, and signals as one exception;
* :mod:`modeladv.config` -- field checks for the experiments' frozen config dataclasses;
* :mod:`modeladv.plot` -- mean +- s.e.m. learning curves and grid heatmaps;
* :mod:`modeladv.cli` -- the dispatcher; flags generated from the config dataclasses;
* :mod:`modeladv.guards` -- output paths and memory estimates checked before any run starts.

Arrows point down: this package imports :mod:`tabular` and :mod:`deep` only inside the commands that run them;
the exact core never imports this package.
"""

__version__ = "0.2.0"
