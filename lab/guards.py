"""Checks made before any run starts: output paths that can be written, and memory a run will need.

Each raises ``ValueError`` with one line naming the problem, so a command fails before it writes anything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["check_output_dir", "check_figure_path", "memory_budget", "check_memory", "FIGURE_SUFFIXES"]

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _existing_ancestor(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: str | os.PathLike, what: str = "--root") -> Path:
    """``path`` is, or can become, a writable directory."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} is a file, not a directory")
    a = _existing_ancestor(p.absolute())
    if not a.is_dir():
        raise ValueError(f"{what} {p} cannot be made: {a} is a file")
    if not _can_create_in(a):
        raise ValueError(f"{what} {p} is not writable ({a} does not allow it)")
    return p


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder``, found by making one (``os.access`` says yes to root even where
    the file system refuses, e.g. a read-only mount or /proc)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".modeladv-probe-"):
            return True
    except OSError:
        return False


def check_figure_path(path: str | os.PathLike, what: str = "--figure") -> Path:
    """``path`` names an image file that can be written (its folder may not exist yet)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory; name a file such as {p / 'figure.png'}")
    if p.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"{what} {p} must end in one of {', '.join(FIGURE_SUFFIXES)}")
    if p.exists():
        try:
            with open(p, "ab"):  # appends nothing: only asks the file system whether the file can be written
                pass
        except OSError:
            raise ValueError(f"{what} {p} is not writable") from None
    check_output_dir(p.parent, what=f"{what} {p}: folder")
    return p


def memory_budget(workers: int = 1) -> int:
    """Bytes one of ``workers`` concurrent runs may use: half of this machine's physical memory, shared."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total // 2 // max(1, workers)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_memory(need: int, workers: int, what: str) -> None:
    """Refuse a run whose estimated peak memory ``need`` exceeds :func:`memory_budget`."""
    budget = memory_budget(workers)
    if need > budget:
        raise ValueError(f"{what} needs about {_human(need)} per run, more than the {_human(budget)} allowed "
                         f"(half this machine's memory shared by {workers} worker(s)); choose a smaller size")
