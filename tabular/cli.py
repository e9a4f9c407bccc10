"""The ``modeladv`` command line: one entry point, subcommands registered by name.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``; the
module is imported lazily so that ``modeladv verify`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

#: subcommand -> (module, one-line help). The module provides configure(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("tabular.verify", "check Lemma 1 / Corollary 2 numerically and show the printed errata failing"),
    "gridworld": ("tabular.experiment", "run the Figure-1 gridworld experiment (tabular MBRL with A2C)"),
    "train": ("deep.cli", "train one deep value-aware MBRL run (Algorithm 2 with TRPO)"),
    "sweep": ("deep.sweep", "run many `train` runs (Appendix C sweep protocol)"),
    "plot": ("tabular.plotcli", "regenerate figures from run logs"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modeladv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = argv[0] if argv and not argv[0].startswith("-") else None
    for name, (module, help_) in _available().items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:  # only the chosen subcommand's module is imported
            importlib.import_module(module).configure(p)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except ValueError as e:  # bad input: one clear line, no traceback
        parser.exit(2, f"modeladv {args.command}: error: {e}\n")


if __name__ == "__main__":
    raise SystemExit(main())
