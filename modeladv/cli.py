"""The ``modeladv`` command line: ``modeladv COMMAND [FLAGS]``, one module per command (:mod:`modeladv.commands`).

Each command's flags are the fields of its dataclasses, read by tyro: the help of a flag is the docstring under
its field, its default the field's default, names of methods and environments are choices (``typing.Literal``).
Bad input is one line on stderr and exit code 2 (tyro's own parse errors included); Ctrl-C (or SIGTERM) prints
one line and exits 130 (143): rerunning the same command resumes.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import inspect
import io
import os
import re
import sys
import textwrap
import typing
import warnings
from typing import Any, Sequence

__all__ = ["field_docs", "parse", "config_of", "main"]

_BOX = " │┃╭╮╰╯─━"


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass and its bases (what tyro shows as a flag's help)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def config_of(flags: Any, cls: type) -> Any:
    """The ``cls`` (a validated config dataclass) holding the values of ``flags``, an instance of a subclass of
    ``cls`` that a command parses without validating; its ``ValueError`` reaches :func:`main`'s handler."""
    return cls(**{f.name: getattr(flags, f.name) for f in dataclasses.fields(cls) if f.init})


class BadInput(ValueError):
    """A command line tyro refused, as one line."""


def _plural_field(classes: Sequence[type], name: str) -> bool:
    for cls in classes:
        hints = typing.get_type_hints(cls, include_extras=False)
        if name in hints:
            return typing.get_origin(hints[name]) is tuple
    return False


def _one_line(text: str, classes: Sequence[type]) -> str:
    """tyro's error box as the one line argparse would print (``argument --x: invalid float value: 'abc'``; a
    name outside a ``Literal``: ``unknown env 'pong'; choose from ...``, as the configs' own checks say)."""
    lines = [ln.strip(_BOX) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    message, started = [], False
    for ln in lines[1:]:  # lines[0]: the box's title
        if set(ln) <= set(_BOX + "-"):
            if started:
                break
            continue
        started = True
        message.append(ln)
    msg = " ".join(message) or (lines[0] if lines else "invalid command line")
    m = re.match(r"Error parsing (--[\w.-]+): (?:invalid literal for (int)\(\) with base 10|could not convert string "
                 r"to (float)): (.*)$", msg)
    if m:
        return f"argument {m[1]}: invalid {m[2] or m[3]} value: {m[4]}"
    m = re.match(r"invalid choice (.*) for argument '(--[\w.-]+)'\. Expected one of \((.*)\)\.?$", msg)
    if m:
        name = m[2].lstrip("-").replace("-", "_")
        if _plural_field(classes, name) and name.endswith("s"):
            name = name[:-1]
        choices = ast.literal_eval(f"({m[3]},)")
        return f"unknown {name} {m[1]}; choose from {', '.join(map(str, choices))}"
    m = re.match(r"Unrecognized options: (.*)$", msg)
    if m:
        return f"unrecognized arguments: {' '.join(m[1].split(', '))}"
    m = re.match(r"Error parsing (--[\w.-]+): (.*)$", msg)
    if m:
        return f"argument {m[1]}: {m[2]}"
    return re.sub(r"^Error parsing [\w.\[\]]+: ", "", msg)


def parse(cls: type, args: Sequence[str], prog: str) -> Any:
    """``cls`` from the flags ``args`` (tyro). ``--help`` prints the help and raises ``SystemExit(0)``; bad flags
    raise :class:`BadInput` with one line."""
    import tyro

    # tyro imports torch when the name is in sys.modules; a blocked import (None there) must stay blocked
    blocked = "torch" in sys.modules and sys.modules["torch"] is None
    if blocked:
        del sys.modules["torch"]
    try:
        return _parse(tyro, cls, args, prog)
    finally:
        if blocked:
            sys.modules["torch"] = None


def _parse(tyro, cls: type, args: Sequence[str], prog: str) -> Any:
    if any(a in ("-h", "--help") for a in args):
        return tyro.cli(cls, args=list(args), prog=prog)
    err = io.StringIO()
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100000"  # tyro wraps its error box to the terminal: one line per message line
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            return tyro.cli(cls, args=list(args), prog=prog)
    except SystemExit as e:
        if e.code in (0, None):
            raise
        classes = [cls, *(t for t in _nested_classes(cls))]
        raise BadInput(_one_line(err.getvalue(), classes)) from None
    finally:
        if width is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = width


def _nested_classes(cls: type) -> list[type]:
    hints = typing.get_type_hints(cls, include_extras=False)
    return [t for t in hints.values() if dataclasses.is_dataclass(t)]


def _usage(commands) -> str:
    width = max(map(len, commands))
    rows = "\n".join(f"  {name:<{width}}  {c.help}" for name, c in commands.items())
    return (f"usage: modeladv COMMAND [FLAGS]   (modeladv COMMAND --help: the command's flags)\n\n"
            f"model-advantage: exact tabular checks, the gridworld and deep experiments, their figures\n\n"
            f"commands:\n{rows}\n")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command and return its exit code: 0 success, 2 bad
    input (one line on stderr), 128 + signal number when interrupted."""
    from lab.pool import INTERRUPTED_MESSAGE, Interrupted, interruptible

    from .commands import COMMANDS

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(COMMANDS), end="")
        return 0 if argv else 2
    name, flags = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"modeladv: error: argument COMMAND: invalid choice: {name!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    command = COMMANDS[name]
    try:
        with interruptible(), _one_line_warnings(f"modeladv {name}"):
            args = parse(command.args, flags, f"modeladv {name}")
            return int(command.run(args) or 0)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except ValueError as e:  # bad input, a locked or corrupt run: one clear line, no traceback
        print(f"modeladv {name}: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return 130


@contextlib.contextmanager
def _one_line_warnings(prog: str):
    """Warnings as one line each, ``PROG: warning: message``, as errors are (the format only: a caller that records
    warnings, as pytest does, still records them)."""
    before = warnings.formatwarning
    warnings.formatwarning = lambda message, *_a, **_k: f"{prog}: warning: {' '.join(str(message).split())}\n"
    try:
        yield
    finally:
        warnings.formatwarning = before


if __name__ == "__main__":
    raise SystemExit(main())
