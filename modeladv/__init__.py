"""The ``modeladv`` command line: one module per subcommand over the experiments' config dataclasses.

Arrows point down: this package imports :mod:`gridworld`, :mod:`deep`, :mod:`lab` and :mod:`tabular`, each only
inside the command that runs it; nothing imports this package.
"""

__version__ = "0.2.0"
