"""The `Examples` in the docstrings of the exact core run as doctests (each a textbook or hand-checked case)."""

import doctest
import importlib
import pkgutil

import pytest

import tabular

MODULES = sorted(m.name for m in pkgutil.iter_modules(tabular.__path__, "tabular."))
#: the functions a student calls first: each must carry an example that runs
FIRST = ["tabular.solve.evaluate", "tabular.advantage.model_advantage", "tabular.advantage.simulation_lemma",
         "tabular.advantage.deviation_error", "tabular.objectives.ma_l1_loss", "tabular.mdp.from_gymnasium",
         "tabular.mdp.softmax_policy"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


@pytest.mark.parametrize("qualname", FIRST)
def test_first_functions_carry_an_example(qualname):
    module, _, name = qualname.rpartition(".")
    tests = doctest.DocTestFinder().find(getattr(importlib.import_module(module), name), name)
    assert tests and tests[0].examples, f"{qualname} has no Examples"
