"""The clean-process grader (assignments/secure.py): full marks for the solutions, zero for the blank templates,
no more than zero for notebooks that reach the reference under another name or tamper with the tests, the same
score every time, and full marks for honest answers that use what a question allows."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "assignments"
NAMES = ["a1_simulation_lemma", "a2_sampled_objectives", "a3_eq5_counterexample", "a4_tabular_mbrl_loop",
         "a5_torch_objectives"]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


build_mod = _load(ASSIGNMENTS / "build.py", "assignments_build_secure")
secure = _load(ASSIGNMENTS / "secure.py", "assignments_secure")


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    return {name: build_mod.build(name, root, run_tests=False).solution for name in NAMES}


def _with(notebook: Path, out: Path, replacements: dict[str, str]) -> Path:
    """``notebook`` with the cell defining each ``def <name>(`` replaced by the given source; written to ``out``."""
    nb = nbformat.read(notebook, as_version=4)
    for name, src in replacements.items():
        cells = [c for c in nb.cells if c.cell_type == "code" and f"def {name}(" in c.source]
        assert cells, f"no cell defines {name}"
        cells[0].source = src
    nbformat.write(nb, out)
    return out


def _blank(name: str) -> Path:
    return ASSIGNMENTS / "student" / name / f"{name}.ipynb"


@pytest.mark.parametrize("name", NAMES)
def test_solution_full_marks_blank_zero(solutions, name):
    full, blank = secure.grade_notebook(solutions[name], name), secure.grade_notebook(_blank(name), name)
    assert full.possible >= 9 and full.total == full.possible, full.failures
    assert blank.total == 0 and blank.possible == full.possible


CHEATS = {  # (assignment, function): the body of a notebook cell that reaches the reference some other way
    "default argument": ("a1_simulation_lemma", "policy_value", """
import tabular
def policy_value(P, R, pi, gamma, _f=tabular.policy_evaluation):
    import numpy as np
    return _f(tabular.TabularMDP(P, R, np.ones(len(R)) / len(R), gamma), pi)
"""),
    "getattr of a built name": ("a1_simulation_lemma", "discounted_state_distribution", """
import tabular as tb
def discounted_state_distribution(P, pi, p0, gamma):
    import numpy as np
    M = tb.TabularMDP(P, np.zeros(pi.shape), p0, gamma)
    return getattr(tb, "occ" + "upancy")(M, pi)
"""),
    "__import__ of a built name": ("a1_simulation_lemma", "model_advantage", """
def model_advantage(P, R, pi, gamma):
    import numpy as np
    tb = __import__("tab" + "ular")
    return tb.model_advantage(tb.TabularMDP(P, R, np.ones(len(R)) / len(R), gamma), pi)
"""),
    "sys.modules": ("a1_simulation_lemma", "lemma1_terms", """
import sys
def lemma1_terms(M, M2, pi):
    L = sys.modules["tabular"].simulation_lemma(M, M2, pi)
    return L.lhs, L.model_advantage_term, L.reward_term
"""),
    "switching the trace off": ("a1_simulation_lemma", "printed_eq3_residual", """
import sys
def printed_eq3_residual(M, M2, pi):
    old = sys.getprofile()
    sys.setprofile(None)
    r = __import__("tabular").simulation_lemma(M, M2, pi).printed_residual
    sys.setprofile(old)
    return r
"""),
    "a thread": ("a2_sampled_objectives", "softmax_model", """
import threading
def softmax_model(logits):
    out = []
    t = threading.Thread(target=lambda: out.append(__import__("tabular").model_probs(logits)))
    t.start(); t.join()
    return out[0]
"""),
    "patched assertions": ("a2_sampled_objectives", "upper_bound_l1", """
import numpy.testing
numpy.testing.assert_allclose = lambda *a, **k: None
import numpy as np
def upper_bound_l1(logits, V, s, a, s2):
    return 0.0, np.zeros_like(logits)
"""),
    "the deep package": ("a5_torch_objectives", "ma_l1_torch", """
import numpy as np
import torch
from deep import objectives as O
def ma_l1_torch(params, s, a, s2):
    t = {k: torch.tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    Wm, Um = t["Wm"].requires_grad_(), t["Um"].requires_grad_()
    model = lambda x, u: x + x @ Wm + u @ Um
    value = lambda x: torch.tanh(x @ t["w1"] + t["b1"]) @ t["w2"] + t["b2"]
    S = torch.stack([torch.tensor(s), torch.tensor(s2)], 1)
    loss = O.ma_l1(model, value, S, torch.tensor(a)[:, None].expand(-1, 2, -1))
    gW, gU = torch.autograd.grad(loss, (Wm, Um))
    return float(loss.detach()), gW.numpy(), gU.numpy()
"""),
    "replaced grading helpers": ("a3_eq5_counterexample", "bellman", """
try:
    import grading_utils
    grading_utils.assert_on_random_instances = lambda *a, **k: None
    grading_utils.check_independent = lambda *a, **k: None
except ImportError:
    pass
import numpy as np
def bellman(M, pi, V):
    return np.zeros(M.S)
"""),
}


#: tampering with the tests themselves: nothing to trace, the comparison simply happens elsewhere
UNTRACED = {"patched assertions", "replaced grading helpers"}


@pytest.mark.parametrize("kind", sorted(CHEATS))
def test_cheating_scores_nothing_for_the_question_and_no_more_than_blank(solutions, tmp_path, kind):
    name, function, src = CHEATS[kind]
    q = next(q for q in secure._questions().QUESTIONS[name] if q.function == function)
    # in an otherwise complete solution: only the cheated question loses its points
    g = secure.grade_notebook(_with(solutions[name], tmp_path / "cheat.ipynb", {function: src}), name)
    assert g.scores[q.name][0] == 0, (kind, g.failures)
    if kind not in UNTRACED:  # every point lost is lost to the trace (callers of the cheated function lose theirs)
        lost = [k for k, (s, p) in g.scores.items() if s < p and not k.endswith("(written)")]
        assert all(g.failures[k][0].startswith("used the reference implementation") for k in lost), g.failures
    # in an otherwise blank template: no more than the blank one
    blank = secure.grade_notebook(_blank(name), name)
    g2 = secure.grade_notebook(_with(_blank(name), tmp_path / "cheat_blank.ipynb", {function: src}), name)
    assert g2.total <= blank.total == 0, (kind, g2.scores)


TRUNCATED = """
import numpy as np
def discounted_state_distribution(P, pi, p0, gamma):
    P_pi = np.einsum("sa,sat->st", pi, P)
    d, x = np.zeros(len(p0)), np.asarray(p0, float)
    for t in range(200):  # a truncated series: right for small gamma only
        d += (1 - gamma) * gamma ** t * x
        x = x @ P_pi
    return d
"""


def test_grading_is_deterministic_and_catches_a_truncated_series(solutions, tmp_path):
    nb = _with(solutions["a1_simulation_lemma"], tmp_path / "trunc.ipynb", {"discounted_state_distribution": TRUNCATED})
    scores = [{k: v for k, v in secure.grade_notebook(nb, "a1_simulation_lemma").scores.items() if "written" not in k}
              for _ in range(3)]
    assert scores[0] == scores[1] == scores[2]
    assert scores[0]["q2"] == (1.0, 3.0)  # small instances pass, the hidden part (gamma up to 0.999) does not
    other = secure.grade_notebook(nb, "a1_simulation_lemma", seed=7).scores
    assert other["q2"] == (1.0, 3.0) and other["q1"] == scores[0]["q1"]


HONEST_A3 = {
    "counterexample": """
import numpy as np
from tabular.verify import random_mdp
def counterexample():
    rng = np.random.default_rng(5)
    M = random_mdp(rng, S=3, A=2, gamma=0.9)
    M2 = M.replace(P=rng.dirichlet(np.ones(3), size=(3, 2)))
    return M, M2, rng.dirichlet(np.ones(2), size=3)
""",
    "corollary2_forms": """
import numpy as np
from tabular import evaluate
def _T(M, pi, V):  # a helper of the student's own that uses the allowed evaluate elsewhere
    return (pi * M.R).sum(1) + M.gamma * np.einsum("sa,sat,t->s", pi, M.dense_P(), V)
def corollary2_forms(M, M2, pi):
    e, e2 = evaluate(M, pi), evaluate(M2, pi)
    w, w2 = e.d / (1 - M.gamma), e2.d / (1 - M.gamma)
    return {"lhs": e.J - e2.J, "printed": w @ (_T(M, pi, e.V) - _T(M2, pi, e.V)),
            "proof": w @ (_T(M, pi, e2.V) - _T(M2, pi, e2.V)), "dual": w2 @ (_T(M, pi, e.V) - _T(M2, pi, e.V))}
""",
}


def test_honest_answers_that_use_allowed_helpers_get_full_marks(solutions, tmp_path):
    nb = _with(solutions["a3_eq5_counterexample"], tmp_path / "honest.ipynb", HONEST_A3)
    g = secure.grade_notebook(nb, "a3_eq5_counterexample")
    assert g.total == g.possible, g.failures


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown assignment"):
        secure.instances("a9")
    with pytest.raises(ValueError, match="not a notebook"):
        secure.grade_notebook(tmp_path / "none.ipynb", "a1_simulation_lemma")


def test_an_endless_cell_costs_its_cell_only(solutions, tmp_path, monkeypatch):
    nb = nbformat.read(solutions["a1_simulation_lemma"], as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    path = tmp_path / "loop.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("MODELADV_CELL_SECONDS", "2")
    g = secure.grade_notebook(path, "a1_simulation_lemma")
    assert any("TimeoutError" in n for n in g.notes), g.notes
    assert g.total == g.possible  # the other cells ran, the graded functions were defined and graded
