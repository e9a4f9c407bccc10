"""Build the course site: ``python docs/site/build.py [OUT]`` (default ``docs/site/_build/html``).

Assembles a source folder from ``docs/site/*.md`` and ``conf.py``, the executed walkthrough notebooks of
``notebooks/``, the README's paper-to-code index (each name it cites linked into the API reference) and the
command line's ``--help`` texts, then runs Sphinx (myst-nb renders the notebooks with their stored outputs;
autodoc writes the API reference from the docstrings; MathJax is copied into the site, so it needs no network);
a warning fails the build. Needs the ``dev`` extra (autodoc imports every module, torch included). Exit
code 0 when the site was written; ``tests/test_site.py`` builds it in CI (no deploy).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PACKAGES = ("tabular", "gridworld", "deep", "lab", "modeladv")
HELP_COLUMNS = "100"  # argparse wraps --help to the terminal; a fixed width keeps the page the same everywhere


def resolve(name: str) -> tuple[str, object] | None:
    """``(documented path, object)`` of a dotted name under one of :data:`PACKAGES`, or None.

    A name re-exported by a package (``tabular.evaluate``) is documented where it is defined
    (``tabular.solve.evaluate``); data without a ``__module__`` keep the path they were reached by."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name) or name.split(".")[0] not in PACKAGES:
        return None
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        break
    else:
        return None
    if isinstance(obj, types.ModuleType):
        return obj.__name__, obj
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", "").split(".")[0] in PACKAGES:
        return f"{obj.__module__}.{obj.__qualname__}", obj
    return name, obj


def link_names(cell: str) -> str:
    """Code spans of a table cell as MyST cross-references into the API reference and the command-line page.

    ``tabular.x`` links to its documentation; a bare ``member`` after a linked module or class links to that
    member (``deep.algorithm.Trainer`` (``update_model``)); ``modeladv CMD ...`` links to CMD's section, and so
    does a bare command name after it (``modeladv train``/``sweep``). Other spans (``.d``, ``method="mle"``, file
    names) stay code."""
    from modeladv.commands import COMMANDS as commands

    context: object = None  # (path, object) of the last linked name, or "cli" after a command

    def one(m: re.Match) -> str:
        nonlocal context
        text = m.group(1)
        cmd = re.match(r"(?:modeladv )?(\w+)", text)
        if text.startswith("modeladv ") or (context == "cli" and text in commands):
            context = "cli"
            return f"[`{text}`](#cli-{cmd.group(1)})"
        head = re.match(r"[A-Za-z_][\w.]*", text)
        name = head.group(0) if head else ""
        found = resolve(name)
        if found is not None:
            context = found
        elif (isinstance(context, tuple) and name.isidentifier() and hasattr(context[1], name)
              and (inspect.isclass(context[1]) or isinstance(context[1], types.ModuleType))):
            found = resolve(f"{context[0]}.{name}")
        if found is not None:
            title = text if text == found[0] else f"{text} <{found[0]}>"
            return f"{{py:obj}}`{title}`"
        return m.group(0)

    return re.sub(r"`([^`]+)`", one, cell)


def paper_to_code() -> str:
    """The README's "Paper-to-code index" section as a page, its names linked (:func:`link_names`)."""
    text = (REPO / "README.md").read_text()
    start = text.index("## Paper-to-code index")
    end = text.index("\n## ", start + 3)
    body = text[start + len("## Paper-to-code index"):end]
    lines = [" | ".join(link_names(c) for c in line.split(" | ")) if line.startswith("|") else line
             for line in body.splitlines()]
    return "# Paper-to-code index\n" + "\n".join(lines) + "\n"


def command_line() -> str:
    """The ``modeladv`` command line as a page: ``modeladv --help`` and each subcommand's ``--help``."""
    from modeladv.cli import main
    from modeladv.commands import COMMANDS

    def help_text(argv: list[str]) -> str:
        out = io.StringIO()
        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = HELP_COLUMNS
        try:
            with contextlib.redirect_stdout(out):
                main(argv)
        finally:
            if saved is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = saved
        return out.getvalue().rstrip()

    parts = ["# Command line\n",
             "Every subcommand's flags come from the fields of its config dataclasses (see {py:mod}`modeladv.cli`; "
             "the commands are in {py:mod}`modeladv.commands`). Bad input: one line on stderr and exit code 2.\n",
             "```text\n$ modeladv --help\n" + help_text(["--help"]) + "\n```\n"]
    for name, command in COMMANDS.items():
        parts.append(f"(cli-{name})=\n## `modeladv {name}`\n\n{command.help}\n\n"
                     f"```text\n$ modeladv {name} --help\n{help_text([name, '--help'])}\n```\n")
    return "\n".join(parts)


def build(out: Path) -> Path:
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory(prefix="site_") as tmp:
        src = Path(tmp)
        for f in HERE.glob("*.md"):
            # pages name the repository's figures as ../../figures/ (so they also show where the sources are read)
            (src / f.name).write_text(f.read_text().replace("](../../figures/", "](figures/"))
        shutil.copytree(REPO / "figures", src / "figures", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        shutil.copy(HERE / "conf.py", src / "conf.py")
        (src / "paper_to_code.md").write_text(paper_to_code())
        (src / "command_line.md").write_text(command_line())
        (src / "notebooks").mkdir()
        for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
            shutil.copy(nb, src / "notebooks" / nb.name)
        code = build_main(["-q", "-W", "--keep-going", "-b", "html", "-d", str(src / "_doctrees"), str(src), str(out)])
    if code:
        raise SystemExit(code)
    return out / "index.html"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "_build" / "html"
    print(f"site: {build(target)}")
