"""The gridworld experiment of Sec. 4.1 (Figure 1): environment, tabular Algorithm 2 with A2C, runner, report.

* :mod:`~gridworld.layout` -- the grid, its dynamics and reward, and its exact twins (no Gymnasium);
* :mod:`~gridworld.env` -- the Gymnasium environment (ids registered on import of this package);
* :mod:`~gridworld.config` -- :class:`RunConfig`, one validated frozen dataclass per run;
* :mod:`~gridworld.mbrl` -- the algorithm (:class:`Trainer`, :func:`run`);
* :mod:`~gridworld.runner` -- every (size, method, seed) run, in worker processes;
* :mod:`~gridworld.report` -- the summary table and figures, from logs only.
"""

from . import config as _config
from . import env as _env
from . import layout as _layout
from . import mbrl as _mbrl
from .config import *  # noqa: F401,F403
from .env import *  # noqa: F401,F403
from .layout import *  # noqa: F401,F403
from .mbrl import *  # noqa: F401,F403

register()

__all__ = sorted({*_config.__all__, *_env.__all__, *_layout.__all__, *_mbrl.__all__})
