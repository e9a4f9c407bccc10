"""The course site builds (Sphinx + myst-nb, no deploy): every walkthrough page with its stored outputs, the
paper-to-code index linked into the API reference, the command line, the student setup page and an API reference
with every public module; a warning fails it. Its mathematics renders offline: headless Chromium (Debian's
``chromium``) opens the pages with every host unreachable and must find MathJax's output and no raw TeX.

One build (about 10 s) is shared by the tests of this module."""

import importlib
import importlib.util
import json
import pkgutil
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("myst_nb", reason="the site needs the docs extra (myst-nb)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")
PACKAGES = ("tabular", "gridworld", "deep", "lab", "modeladv")
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "docs" / "site" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("site") / "html"
    assert mod.build(out).exists()
    return out


def read(site: Path, page: str) -> str:
    return (site / page).read_text()


def test_site_builds_with_notebooks_api_and_setup(site):
    assert {p.stem for p in (site / "notebooks").glob("*.html")} == set(NOTEBOOKS)
    gridworld = read(site, "notebooks/04_gridworld.html")
    assert "<img" in gridworld and "ahead of MLE" in gridworld  # stored figures and printed outputs are there
    api = read(site, "api.html")
    for name in ("simulation_lemma", "model_advantage", "explain", "RunDir", "ma_l1_loss"):
        assert name in api, name
    assert "Paper-to-code" in read(site, "paper_to_code.html")
    assert "grader.check" in read(site, "setup.html")


def test_sidebar_lists_the_walkthroughs_in_order(site):
    hrefs = re.findall(r'href="notebooks/(\w+)\.html"', read(site, "index.html"))
    assert list(dict.fromkeys(hrefs)) == NOTEBOOKS


def public_modules() -> list[str]:
    """Every importable module of the packages, less private ones (``_x``), ``__main__`` and the aliases of
    moved modules (another module under the old name, or a docstring that starts with "Moved")."""
    names = []
    for package in PACKAGES:
        names.append(package)
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            mod = importlib.import_module(info.name)
            if mod.__name__ == info.name and not (mod.__doc__ or "").startswith("Moved"):
                names.append(info.name)
    return names


def test_api_reference_documents_every_public_module(site):
    api = read(site, "api.html")
    modules = public_modules()
    assert {"deep.algorithm", "deep.sweep", "lab.pool", "gridworld.runner"} <= set(modules)
    missing = [m for m in modules if f'id="module-{m}"' not in api]
    assert not missing, f"docs/site/api.md has no automodule for {missing}"
    for target in ("tabular.examples.eq5_counterexample", "deep.algorithm.Trainer", "deep.policy.trpo_step",
                   "deep.sweep.ALPHA_GRIDS", "lab.plot.METHOD_LABELS", "deep.models.DynamicsModel"):
        assert f'id="{target}"' in api, target


def readme_index_spans() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Paper-to-code index")
    return re.findall(r"`([^`]+)`", text[start:text.index("\n## ", start + 3)])


def test_paper_to_code_index_links_into_the_api_reference_and_the_command_line(site):
    page, ids = read(site, "paper_to_code.html"), {}
    page = page[page.index("<table"):page.index("</table>")]
    for name in ("api.html", "command_line.html"):
        ids[name] = set(re.findall(r'id="([^"]+)"', read(site, name)))
    links = [(href, re.sub(r"<[^>]+>", "", text).replace("&quot;", '"'))
             for href, text in re.findall(r'<a class="reference internal" href="([^"]+)"[^>]*>(.*?)</a>', page)]
    for href, _ in links:
        target, _, anchor = href.partition("#")
        assert target in ids and anchor in ids[target], f"paper_to_code.html links to {href}, which is not there"
    cited = [s for s in readme_index_spans() if re.match(rf"({'|'.join(PACKAGES)})(\.\w+)+|modeladv \w+", s)]
    assert len(cited) >= 25
    linked = [text for _, text in links]
    unlinked = [s for s in cited if s not in linked]
    assert not unlinked, f"the paper-to-code index does not link {unlinked}"
    commands = {text: href for href, text in links if text.startswith("modeladv ")}
    for text, href in commands.items():
        assert href == f"command_line.html#cli-{text.split()[1]}", (text, href)


def test_command_line_page_has_every_subcommand(site):
    from modeladv.commands import COMMANDS

    page = read(site, "command_line.html")
    for name in COMMANDS:
        assert f'id="cli-{name}"' in page and f"modeladv {name} [-h]" in page, name


def test_site_loads_no_script_from_the_network(site):
    for page in site.rglob("*.html"):
        remote = re.findall(r'<script[^>]+src="((?:https?:)?//[^"]+)"', page.read_text())
        assert not remote, f"{page.relative_to(site)} loads {remote}"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()


# ---- rendering in a browser ------------------------------------------------------------------------------------

#: raw TeX or Markdown left in the text a reader sees: a dollar sign, a TeX delimiter or command, bold markers
RAW = re.compile(r"\$|\\[()\[\]]|\\[A-Za-z]+|\*\*")


class VisibleText(HTMLParser):
    """The text of a rendered page as a reader sees it, less code (``pre``, ``code``, signatures) where ``$``
    and ``**`` are literal, and less MathJax's own output; counts every tag by name (and MathJax's display
    formulas as ``"mjx-container display"``)."""

    SKIP = {"head", "script", "style", "template", "noscript", "pre", "code", "mjx-container"}

    def __init__(self):
        super().__init__()
        self.chunks: list[str] = []
        self.math: list[str] = []  # MathJax's assistive MathML: a TeX command there is one MathJax did not know
        self.tags: dict[str, int] = {}
        self.skipping: str | None = None
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "mjx-container" and a.get("display") == "true":
            tag_ = "mjx-container display"
            self.tags[tag_] = self.tags.get(tag_, 0) + 1
        self.tags[tag] = self.tags.get(tag, 0) + 1
        hidden = "display: none" in (a.get("style") or "")
        signature = tag == "dt" and "sig" in (a.get("class") or "").split()
        if self.skipping is None and (tag in self.SKIP or hidden or signature):
            self.skipping = tag
        if tag == self.skipping:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == self.skipping:
            self.depth -= 1
            if self.depth == 0:
                self.skipping = None

    def handle_data(self, data):
        if self.skipping is None:
            self.chunks.append(data)
        elif self.skipping == "mjx-container":
            self.math.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def rendered(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after its scripts ran, from headless Chromium with every host name unresolvable."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=30000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "</body>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def display_blocks(notebook: str) -> int:
    """How many ``$$ ... $$`` display formulas the notebook's markdown cells hold."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    return sum("".join(c["source"]).count("$$") // 2 for c in cells if c["cell_type"] == "markdown")


PAGES = ["index", "setup", "paper_to_code", "api", "command_line"] + [f"notebooks/{n}" for n in NOTEBOOKS]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium) to render pages")
def test_mathematics_renders_offline_with_no_raw_tex(site, tmp_path):
    report = []
    for name in PAGES:
        static = read(site, f"{name}.html")
        n_math = len(re.findall(r'<(?:span|div) class="math[ "]', static))
        parsed = VisibleText()
        parsed.feed(rendered(site / f"{name}.html", tmp_path / "profile"))
        typeset, errors = parsed.tags.get("mjx-container", 0), parsed.tags.get("mjx-merror", 0)
        raw = sorted(set(RAW.findall(parsed.text)))
        unknown = sorted(set(re.findall(r"\\[A-Za-z]+", " ".join(parsed.math))))
        if typeset != n_math or errors or raw or unknown:
            report.append(f"{name}: {typeset} of {n_math} formulas typeset, {errors} TeX errors, "
                          f"unknown commands {unknown}, raw text {raw}")
        if name.startswith("notebooks/"):
            assert n_math > 0, f"{name} has no mathematics at all"
            dom_display = parsed.tags.get("mjx-container display", 0)
            want = display_blocks(name.split("/")[1])
            if dom_display != want:
                report.append(f"{name}: {dom_display} display formulas, its markdown has {want}")
    assert not report, "\n".join(report)
