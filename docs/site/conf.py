"""Sphinx configuration of the course site (built by ``python docs/site/build.py``; see that file)."""

project = "model-advantage"
author = "model-advantage developers"
# sphinx-mathjax-offline copies MathJax 3 into _static and points mathjax_path there: the site needs no network
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]
nb_execution_mode = "off"  # the committed notebooks are executed (a test checks every code cell ran)
myst_enable_extensions = ["dollarmath", "amsmath"]
autodoc_default_options = {"members": True, "undoc-members": False, "ignore-module-all": True}
autodoc_inherit_docstrings = False  # Gymnasium's own docstrings are not ours to render
autodoc_member_order = "bysource"
napoleon_google_docstring = True
html_theme = "alabaster"
html_title = "model-advantage: a course companion"
exclude_patterns = ["_build", "build.py"]
suppress_warnings = ["myst.header", "misc.highlighting_failure", "ref.python"]  # ref.python: ambiguous short names
napoleon_use_ivar = True  # dataclass "Attributes:" as fields, not a second description of each member
