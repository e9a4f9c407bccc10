"""Build the course site: ``python docs/site/build.py [OUT]`` (default ``docs/site/_build/html``).

Assembles a source folder from ``docs/site/*.md`` and ``conf.py``, the executed walkthrough notebooks of
``notebooks/`` and the README's paper-to-code index, then runs Sphinx (myst-nb renders the notebooks with their
stored outputs; autodoc writes the API reference from the docstrings); a warning fails the build. Needs the ``dev``
extra. Exit code 0 when
the site was written; ``tests/test_site.py`` builds it in CI (no deploy).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def paper_to_code() -> str:
    """The README's "Paper-to-code index" section as a page."""
    text = (REPO / "README.md").read_text()
    start = text.index("## Paper-to-code index")
    end = text.index("\n## ", start + 3)
    return "# Paper-to-code index\n" + text[start + len("## Paper-to-code index"):end]


def build(out: Path) -> Path:
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory(prefix="site_") as tmp:
        src = Path(tmp)
        for f in HERE.glob("*.md"):
            shutil.copy(f, src / f.name)
        shutil.copy(HERE / "conf.py", src / "conf.py")
        (src / "paper_to_code.md").write_text(paper_to_code())
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
