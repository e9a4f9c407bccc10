"""Moved to :mod:`modeladv.rundir`; this alias of the first release's path goes in the next one."""
import importlib as _importlib
import sys as _sys

_sys.modules[__name__] = _importlib.import_module("modeladv.rundir")
