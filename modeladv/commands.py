"""The commands of ``modeladv``, in ``modeladv --help`` order: each is a module of :mod:`modeladv` holding
``Args`` (the dataclass whose fields are its flags) and ``run(args) -> int``.

A command's module is imported only when it runs (``modeladv verify`` never imports torch). The same option
means the same everywhere: ``--root`` a run root, ``--figure`` a figure path, ``--workers`` processes, ``--seeds``
a count of seeds ``first_seed .. first_seed + K - 1``, ``--wait`` waiting for runs another process holds.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["Command", "COMMANDS", "default_figure", "suppressed"]


def default_figure(root: str | Path, experiment: str, keys=()) -> Path:
    """``<root>/figures/<experiment>[_<keys>].png``: the one name every command gives an experiment's figure
    (keys: the gridworld sizes or the deep environments it shows)."""
    tail = "_".join(map(str, sorted(set(keys))))
    return Path(root) / "figures" / (f"{experiment}_{tail}.png" if tail else f"{experiment}.png")


@functools.lru_cache(maxsize=None)
def suppressed(cls: type) -> frozenset:
    """Fields of ``cls`` that are no flags (``tyro.conf.Suppress``: the command sets them itself)."""
    import tyro

    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(n for n, t in hints.items()
                     if typing.get_origin(t) is typing.Annotated and any(
                         m is tyro.conf.Suppress or m == tyro.conf.Suppress for m in t.__metadata__))


@dataclass(frozen=True)
class Command:
    """A subcommand: ``modeladv.<module>`` holds ``Args`` and ``run``; ``help`` is its line in ``modeladv --help``."""

    name: str
    help: str

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"modeladv.{self.name}")

    @property
    def args(self) -> type:
        return self.module.Args

    def run(self, args) -> int:
        return self.module.run(args)

    @property
    def flags(self) -> tuple[tuple[type, frozenset], ...]:
        """``(dataclass, fields that are no flags)`` pairs: ``Args`` and, for a nested run config (its fields flags
        without a prefix), the experiment's config class it stands for."""
        hints = typing.get_type_hints(self.args)
        nested = {n: t for n, t in hints.items() if dataclasses.is_dataclass(t)}
        out = [(self.args, frozenset(nested))]
        for t in nested.values():
            out.append((t.__mro__[1], suppressed(t)))
        return tuple(out)


#: name -> Command, in ``modeladv --help`` order
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("verify", "check Lemma 1 / Corollary 2 numerically and show the printed errata failing"),
    Command("gridworld", "run the Figure-1 gridworld experiment (tabular MBRL with A2C)"),
    Command("train", "train one deep value-aware MBRL run (Algorithm 2 with TRPO)"),
    Command("sweep", "run many deep runs as Ray Tune trials (the Appendix C protocol)"),
    Command("evaluate", "evaluate the policies in deep runs' checkpoints as the authors do (no exploration noise)"),
    Command("plot", "draw figures from run logs"),
    Command("explain", "draw Lemma 1 state by state for a toy-text MDP or the gridworld and a second model"),
)}
