"""The ``modeladv`` command line: one dispatcher, flags generated from the config dataclasses.

Every field of a command's dataclasses is a flag ``--field-name`` whose help is the field's docstring and whose
default is the field's default (booleans: ``--name/--no-name``; tuples: several values). The commands and
their dataclasses are registered in :mod:`modeladv.commands`. Errors are one line and exit code 2; Ctrl-C
(or SIGTERM) prints one line and exits 130 (143): rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import sys
import textwrap
import types
import typing
from typing import Any, Callable, Iterable, Sequence

__all__ = ["Command", "field_docs", "add_flags", "values_for", "build_parser", "main"]


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: ``run(values)`` gets every flag's value by field name and returns an exit code.

    Attributes:
        name: the subcommand. help: one line for ``modeladv --help``. description: the subcommand's own help.
        flags: ``(dataclass, fields to leave out)`` pairs; their fields become flags, in order.
        run: the implementation.
    """

    name: str
    help: str
    description: str
    flags: tuple[tuple[type, frozenset], ...]
    run: Callable[[dict], int]


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (the attribute-docstring convention)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _none_or(conv: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str):
        return None if text.lower() == "none" else conv(text)

    parse.__name__ = conv.__name__
    return parse


def _kind(tp: Any) -> tuple[Any, bool, bool]:
    """``(scalar type, optional, tuple)`` of a field annotation."""
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is tuple:
        return typing.get_args(tp)[0], optional, True
    return tp, optional, False


def add_flags(parser: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> list[str]:
    """Add a flag for every field of the dataclass ``cls`` not in ``skip``; returns the field names."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(f"{cls.__name__} ({cls.__module__})")
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        scalar, optional, many = _kind(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        shown = " ".join(map(str, default)) if many and default else default
        help_ = f"{docs.get(f.name, '')} (default: {shown})".strip()
        if scalar is bool and not many:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help_)
        else:
            conv = _none_or(scalar) if optional else scalar
            group.add_argument(flag, dest=f.name, type=conv, default=default, nargs="+" if many else None,
                               metavar=f.name.upper(), help=help_)
        names.append(f.name)
    return names


def values_for(cls: type, values: dict, skip: Iterable[str] = ()) -> dict:
    """The entries of ``values`` that are fields of ``cls`` (tuples restored), for ``cls(**...)``."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in values and f.name not in set(skip):
            v = values[f.name]
            out[f.name] = tuple(v) if isinstance(v, list) else v
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of usage + error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = _Parser(prog="modeladv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for c in commands:
        p = sub.add_parser(c.name, help=c.help, description=c.description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for cls, skip in c.flags:
            add_flags(p, cls, skip)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand and return its exit code: 0 success, 2 bad
    input (one line on stderr), 128 + signal number when interrupted."""
    from .commands import COMMANDS
    from lab.pool import INTERRUPTED_MESSAGE, Interrupted, interruptible

    parser = build_parser(list(COMMANDS.values()))
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help (0) or a malformed flag (2, its one line already printed)
        return int(e.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    values = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        with interruptible():
            return int(COMMANDS[args.command].run(values) or 0)
    except ValueError as e:  # bad input, a locked or corrupt run: one clear line, no traceback
        print(f"modeladv {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
