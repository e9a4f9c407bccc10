"""Moved: the runs to :mod:`tabular.gridworld.runner`, tables and figures to :mod:`tabular.gridworld.report`;
this alias of the first release's path goes in the next one."""
from .gridworld.report import *  # noqa: F401,F403
from .gridworld.runner import *  # noqa: F401,F403
