"""The sandboxed grader (assignments/secure.py, sandbox.py, _collect.py): full marks for the solutions, zero for the
blank templates, no more than blank for notebooks that reach the reference some other way, tamper with the
tests, the trace or the collector, read files outside the sandbox or hunt for the course seed; the same score
every time; full marks for honest answers; and a sandbox that really hides the grader, the repository and the seed.

Tests that need the sandbox skip where bubblewrap is not installed (``apt-get install bubblewrap``) and fail
where it is installed but cannot run."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
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
REPO = ASSIGNMENTS.parent
SEED = 90210  # a "secret" course seed, passed to every grading below
needs_sandbox = pytest.mark.skipif(shutil.which("bwrap") is None,
                                   reason="grading untrusted notebooks needs bubblewrap (apt-get install bubblewrap)")


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    ok, why = secure.sandbox_status()
    assert ok, why  # bubblewrap is installed (else these tests skip) but no sandbox could be made
    root = tmp_path_factory.mktemp("built")
    return {name: build_mod.build(name, root, run_tests=False).solution for name in NAMES}


@pytest.fixture(scope="module")
def blank_scores():
    return {}


def _grade(nb, name, **kw):
    return secure.grade_notebook(nb, name, kw.pop("seed", SEED), **kw)


def _blank_total(blank_scores, name):
    if name not in blank_scores:
        blank_scores[name] = _grade(_blank(name), name).total
    return blank_scores[name]


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


@needs_sandbox
@pytest.mark.parametrize("name", NAMES)
def test_solution_full_marks_blank_zero(solutions, name):
    full, blank = _grade(solutions[name], name), _grade(_blank(name), name)
    assert full.possible >= 9 and full.total == full.possible, (full.failures, full.notes)
    assert blank.total == 0 and blank.possible == full.possible


CHEATS = {  # (assignment, function, cell): the nine earlier kinds: the reference under another name, or the tests
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



#: where an attacker who read the course repository would look for it (the real path: the strongest guess)
_PATHS = f"REPO = {str(REPO)!r}\n"
#: library code rebuilt under a forged file name: a package of copies whose frames are not the package's
_FAKE = """
import sys, types
def _relabel(code, name="<my helpers>"):
    consts = tuple(_relabel(c, name) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=name, co_consts=consts)
def _fake_package(code_of):
    import tabular
    pkg = types.ModuleType("_mytab")
    pkg.__path__ = []
    sys.modules["_mytab"] = pkg
    for mod in ("_validate", "mdp", "examples", "solve", "sampling", "objectives", "advantage"):
        m = types.ModuleType("_mytab." + mod)
        m.__package__ = "_mytab"
        sys.modules[m.__name__] = m
        exec(code_of(mod), m.__dict__)
        setattr(pkg, mod, m)
        if mod == "mdp":  # the instances are the real class
            m.TabularMDP = tabular.TabularMDP
    return pkg
"""
NEW_CHEATS = {  # the thirteen kinds of issue 23 and a precomputed table: each would score if its attack worked
    "frame walk to the collector's allow-list": ("a1_simulation_lemma", "policy_value", """
import sys
import numpy as np
def policy_value(P, R, pi, gamma):
    f = sys._getframe(1)
    while f is not None:  # widen every allow-list, empty every forbidden list the collector holds
        for v in list(f.f_locals.values()):
            if isinstance(v, set):
                v.update({"policy_evaluation", "TabularMDP"})
            if isinstance(v, dict) and "questions" in v:
                for q in v["questions"]:
                    q["forbidden"], q["allow"] = [], ["policy_evaluation"]
        f = f.f_back
    import tabular
    return tabular.policy_evaluation(tabular.TabularMDP(P, R, np.ones(len(R)) / len(R), gamma), pi)
"""),
    "gc to clear the violations": ("a1_simulation_lemma", "discounted_state_distribution", """
import gc
import numpy as np
import tabular as tb
def discounted_state_distribution(P, pi, p0, gamma):
    d = getattr(tb, "occupancy")(tb.TabularMDP(P, np.zeros(pi.shape), p0, gamma), pi)
    for o in gc.get_objects():  # the collector's {question: set of violations}
        if isinstance(o, dict) and o and all(isinstance(v, set) for v in o.values()):
            o.clear()
    return d
"""),
    "atexit forging the results": ("a1_simulation_lemma", "model_advantage", """
import atexit, json, os, sys
import numpy as np
SEEN = []
def _forge():  # after the collector wrote its results: drop the violations from any results file it named
    forged = {"results": {"q3": SEEN}, "violations": {}}
    for path in sys.argv[1:]:
        try:
            with open(path) as f:
                report = json.load(f)
            report["violations"] = {}
            with open(path, "w") as f:
                json.dump(report, f)
        except (OSError, ValueError, TypeError):
            pass
    for fd in range(3, 32):
        try:
            os.write(fd, (json.dumps(forged) + "\\n").encode())
        except OSError:
            pass
atexit.register(_forge)
def model_advantage(P, R, pi, gamma):
    import tabular
    out = tabular.model_advantage(tabular.TabularMDP(P, R, np.ones(len(R)) / len(R), gamma), pi)
    SEEN.append({"a": np.ravel(out).tolist(), "s": list(np.shape(out))})
    return out
"""),
    "reading the job ahead of the trace": ("a1_simulation_lemma", "lemma1_terms", """
import json, os, select, sys
import numpy as np
import tabular
def _dec(x):
    if isinstance(x, dict):
        if "mdp" in x:
            m = x["mdp"]
            return tabular.TabularMDP(_dec(m["P"]), _dec(m["R"]), _dec(m["p0"]), m["gamma"],
                                      terminal=np.asarray(_dec(m["terminal"]), dtype=bool))
        if "l" in x:
            return [_dec(v) for v in x["l"]]
        if "a" in x:
            a = np.asarray(x["a"], dtype=float).reshape(x["s"])
            return a if a.ndim else float(a)
        if "i" in x:
            return np.asarray(x["i"]).reshape(x["s"])
    return x
def _key(M, M2, pi):
    return round(float(np.sum(M.R) + 3 * np.sum(M2.R) + 7 * np.sum(np.asarray(pi)[:, 0])), 9)
def _job():
    for path in sys.argv[1:]:  # a job file named on the command line
        try:
            job = json.load(open(path))
            if "questions" in job:
                return job
        except (OSError, ValueError):
            pass
    for fd in range(3, 32):  # or the grader's pipe: claim the cells are done, then read the instances
        try:
            os.write(fd, b'{"ready": true, "cell_errors": []}\\n')
        except OSError:
            pass
    for fd in range(0, 32):
        try:
            if select.select([fd], [], [], 0.5)[0]:
                job = json.loads(os.read(fd, 1 << 24).split(b"\\n")[0])
                if "questions" in job:
                    return job
        except (OSError, ValueError):
            pass
    return {"questions": []}
AHEAD = {}
for q in _job()["questions"]:  # answer every instance now, before any trace is armed
    if q["function"] == "lemma1_terms":
        for enc in q["instances"]:
            M, M2, pi = _dec(enc)
            L = tabular.simulation_lemma(M, M2, pi)
            AHEAD[_key(M, M2, pi)] = (L.lhs, L.model_advantage_term, L.reward_term)
def lemma1_terms(M, M2, pi):
    return AHEAD[_key(M, M2, pi)]
"""),
    "inspect.getsource under another name": ("a1_simulation_lemma", "printed_eq3_residual", _FAKE + """
import importlib, inspect
def printed_eq3_residual(M, M2, pi):
    src = lambda mod: compile(inspect.getsource(importlib.import_module("tabular." + mod)), "<my helpers>", "exec")
    return _fake_package(src).advantage.simulation_lemma(M, M2, pi).printed_residual
"""),
    "marshal of the .pyc, relabelled": ("a2_sampled_objectives", "softmax_model", _FAKE + _PATHS + """
import importlib.util, marshal, os, py_compile, tempfile
def _pyc(mod):
    src = os.path.join(REPO, "tabular", mod + ".py")
    path = importlib.util.cache_from_source(src)
    if not os.path.exists(path):  # no bytecode cache written: make one
        path = py_compile.compile(src, cfile=os.path.join(tempfile.mkdtemp(), mod + ".pyc"), doraise=True)
    return _relabel(marshal.loads(open(path, "rb").read()[16:]))
def softmax_model(logits):
    return _fake_package(_pyc).objectives.model_probs(logits)
"""),
    "__code__ relabelled on live functions": ("a2_sampled_objectives", "upper_bound_l1", """
import sys, types
import tabular
def _relabel(code):
    consts = tuple(_relabel(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename="<cell 7>", co_consts=consts)
def _relabel_all():
    def fix(f):
        if isinstance(f, types.FunctionType) and f.__code__.co_filename != "<cell 7>":
            f.__code__ = _relabel(f.__code__)
    for name, mod in list(sys.modules.items()):
        if name.startswith("tabular"):
            for obj in list(vars(mod).values()):
                fix(obj)
                for member in vars(obj).values() if isinstance(obj, type) else ():
                    fix(getattr(member, "fget", member))
def upper_bound_l1(logits, V, s, a, s2):
    _relabel_all()
    return getattr(tabular, "ma_upper_l1_loss")(logits, V, getattr(tabular, "TransitionBatch")(s, a, s2))
"""),
    "a process through libc system()": ("a2_sampled_objectives", "vaml_l2", _PATHS + """
import ctypes, os, sys, tempfile
import numpy as np
def vaml_l2(logits, V, s, a, s2):
    d = tempfile.mkdtemp()
    np.savez(os.path.join(d, "in.npz"), logits=logits, V=V, s=s, a=a, s2=s2)
    with open(os.path.join(d, "ref.py"), "w") as f:
        f.write(f"import sys, numpy as np\\nsys.path.insert(0, {REPO!r})\\nimport tabular as tb\\n"
                f"x = np.load({d!r} + '/in.npz')\\nb = tb.TransitionBatch(x['s'], x['a'], x['s2'])\\n"
                f"v, g = tb.ma_vaml_l2_loss(x['logits'], x['V'], b)\\nnp.savez({d!r} + '/out.npz', v=v, g=g)\\n")
    ctypes.CDLL(None).system(f"{sys.executable} {d}/ref.py".encode())  # no audit event
    out = np.load(os.path.join(d, "out.npz"))
    return float(out["v"]), out["g"]
"""),
    "laundering through random_mdp": ("a3_eq5_counterexample", "bellman", """
import sys
import numpy as np
from tabular import random_mdp
def bellman(M, pi, V):
    out = {}
    class Rng:  # called by the allowed random_mdp, so any call it makes has an allowed ancestor
        def dirichlet(self, alpha, size=None):
            if "v" not in out:
                tb = sys.modules["tabular"]
                if hasattr(tb, "bellman_operator"):
                    out["v"] = tb.bellman_operator(M, pi, V)
                else:  # the helpers the allowed evaluate uses
                    m = sys.modules["tabular.mdp"]
                    out["v"] = m.policy_reward(M, pi) + M.gamma * m.transition_matrix(M, pi) @ V
            return np.random.default_rng(0).dirichlet(alpha, size=size)
        def uniform(self, low, high, size=None):
            return np.random.default_rng(0).uniform(low, high, size=size)
    random_mdp(Rng(), 2, 1, 0.5)
    return out["v"]
"""),
    "the instructor's solution beside the collector": ("a3_eq5_counterexample", "corollary2_forms", _PATHS + """
import ast, os, sys
def _solution(name):
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    for path in (os.path.join(here, "source", "a3_eq5_counterexample.py"),
                 os.path.join(REPO, "assignments", "source", "a3_eq5_counterexample.py")):
        try:
            tree = ast.parse(open(path).read())
        except OSError:
            continue
        keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))
                and not (isinstance(n, ast.FunctionDef) and n.name.startswith("test_"))]
        ns = {}
        exec(compile(ast.Module(keep, []), "<cell 9>", "exec"), ns)
        return ns[name]
    raise LookupError(name)
def corollary2_forms(M, M2, pi):
    return _solution("corollary2_forms")(M, M2, pi)
"""),
    "the seed from /proc and secure.instances": ("a3_eq5_counterexample", "printed_residuals", _PATHS + """
import os, re, sys
import numpy as np
def _seed():
    for pid in [str(os.getppid())] + sorted(p for p in os.listdir("/proc") if p.isdigit()):
        for what in ("cmdline", "environ"):
            try:
                data = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError:
                continue
            m = re.search(rb"(?:--seed\\x00|--seed=|MODELADV_COURSE_SEED=)(\\d+)", data)
            if m:
                return int(m.group(1))
    return 20261201  # the public default
TABLE = {}
try:  # now, while the cells run: the grader's own instances and answers for the seed found
    sys.path[:0] = [os.path.join(REPO, "assignments"), REPO]
    import secure
    for part in secure.instances("a3_eq5_counterexample", _seed())["q4"]:
        for args, want in part:
            TABLE[round(float(np.sum(args[3])), 12)] = want
except Exception:
    pass
def printed_residuals(M, M2, pi, eps):
    return TABLE.get(round(float(np.sum(eps)), 12), np.zeros(len(eps)))
"""),
    "lazy outputs computed after the trace": ("a4_tabular_mbrl_loop", "gap_and_terms", """
import numpy as np
class Lazy:
    def __init__(self, f):
        self.f = f
    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.f(), dtype=dtype)
    def __float__(self):
        return float(self.f())
def gap_and_terms(M, logits, pi):
    import tabular
    L = lambda: tabular.simulation_lemma(M, M.replace(P=tabular.model_probs(logits)), pi)
    return Lazy(lambda: L().lhs), Lazy(lambda: L().model_advantage_term)
"""),
}


def _table_cheat() -> tuple[str, str, str]:
    """Answers to the public default seed's instances, computed ahead of time and pasted into the notebook."""
    table = {round(float(np.sum(args[0])), 9): np.asarray(want).tolist()
             for part in secure.instances("a4_tabular_mbrl_loop", secure.DEFAULT_SEED)["q2"] for args, want in part}
    return ("a4_tabular_mbrl_loop", "refresh_value", f"""
import numpy as np
TABLE = {table!r}
def refresh_value(logits, R, pi, gamma):
    return np.asarray(TABLE.get(round(float(np.sum(logits)), 9), np.zeros(len(R))))
""")


NEW_CHEATS["answers to the public default seed"] = ("a4_tabular_mbrl_loop", "refresh_value", None)  # _table_cheat
ALL_CHEATS = {**CHEATS, **NEW_CHEATS}


@needs_sandbox
@pytest.mark.parametrize("kind", list(ALL_CHEATS))
def test_cheating_scores_nothing_for_the_question_and_no_more_than_blank(solutions, blank_scores, tmp_path, kind):
    name, function, src = ALL_CHEATS[kind]
    src = src or _table_cheat()[2]
    qs = [q for q in secure._questions().QUESTIONS[name] if q.function == function]
    # in an otherwise complete solution: the cheated question scores nothing
    g = _grade(_with(solutions[name], tmp_path / "cheat.ipynb", {function: src}), name)
    assert all(g.scores[q.name][0] == 0 for q in qs), (kind, g.scores, g.failures, g.notes)
    # in an otherwise blank template: no more than the blank one
    g2 = _grade(_with(_blank(name), tmp_path / "cheat_blank.ipynb", {function: src}), name)
    assert g2.total <= _blank_total(blank_scores, name) == 0, (kind, g2.scores)


@needs_sandbox
def test_the_walk_blames_the_first_student_frame_not_an_allowed_ancestor(solutions, tmp_path):
    """Laundered through the allowed random_mdp, the helpers the allowed evaluate uses are still a violation
    (and so is every solution function that calls the laundering one: each point lost is lost to the trace)."""
    _, function, src = NEW_CHEATS["laundering through random_mdp"]
    g = _grade(_with(solutions["a3_eq5_counterexample"], tmp_path / "launder.ipynb", {function: src}),
               "a3_eq5_counterexample")
    assert g.failures["q1"][0].startswith("used the reference implementation: tabular.policy_reward"), g.failures
    lost = [k for k, (sc, pts) in g.scores.items() if sc < pts and not k.endswith("(written)")]
    assert all(g.failures[k][0].startswith("used the reference implementation") for k in lost), g.failures


@needs_sandbox
def test_the_sandbox_is_what_stops_a_read_outside_it(solutions, tmp_path, monkeypatch):
    """The same notebook that reads the instructor's solution scores full marks without the sandbox (--unsafe)
    and nothing in it."""
    name, function, src = NEW_CHEATS["the instructor's solution beside the collector"]
    nb = _with(solutions[name], tmp_path / "read.ipynb", {function: src})
    assert _grade(nb, name).scores["q2"] == (0.0, 4.0)
    monkeypatch.setattr(sys.modules["sandbox"], "status", lambda: (False, "no sandbox: test"))
    with pytest.raises(secure.SandboxUnavailable, match="no sandbox: test.*--unsafe"):
        _grade(nb, name)
    unsafe = _grade(nb, name, unsafe=True)
    assert unsafe.scores["q2"] == (4.0, 4.0) and "WITHOUT a sandbox" in unsafe.notes[0]


@needs_sandbox
def test_the_public_default_seed_would_give_the_table_away(solutions):
    """Why the command line demands a course seed: graded at the public default, the pasted table scores."""
    name, function, src = _table_cheat()
    nb = _with(solutions[name], solutions[name].with_name("table.ipynb"), {function: src})
    assert _grade(nb, name, seed=secure.DEFAULT_SEED).scores["q2"] == (3.0, 3.0)


PROBE = r"""
import ctypes, errno, json, os, socket, sys
out = {"uid": os.getuid(), "argv": sys.argv, "env": dict(os.environ)}
def can_read(p):
    try:
        open(p, "rb").read(1)
        return True
    except OSError:
        return False
out["reads"] = {p: can_read(p) for p in PATHS}
out["proc"] = {}
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    for what in ("cmdline", "environ"):
        try:
            out["proc"][f"{pid}/{what}"] = open(f"/proc/{pid}/{what}", "rb").read().decode(errors="replace")
        except OSError:
            pass
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    out["net"] = True
except OSError:
    out["net"] = False
try:
    open("/sandbox/submission/x", "w")
    out["write_submission"] = True
except OSError:
    out["write_submission"] = False
libc = ctypes.CDLL(None, use_errno=True)
out["unshare_user"] = libc.unshare(0x10000000) == 0
out["keyctl"] = libc.syscall(250, 1, 0) > 0  # KEYCTL_JOIN_SESSION_KEYRING
sys.path[:0] = ["/sandbox/lib"]
sys.path += sys.argv[2:]  # the environment's site-packages, as the runner adds them
import tabular
out["tabular"] = sorted(n for n in tabular.__all__)
print(json.dumps(out))
"""


@needs_sandbox
def test_the_sandbox_hides_the_grader_the_repository_and_the_seed(solutions, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELADV_COURSE_SEED", "777123")
    lib = secure.student_lib("a1_simulation_lemma")
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copytree(lib, probe / "lib")
    sub = tmp_path / "sub"
    sub.mkdir()
    for p in (tmp_path, probe, probe / "lib", sub):
        p.chmod(0o755)
    outside = [str(ASSIGNMENTS / "source" / "questions.py"), str(ASSIGNMENTS / "secure.py"),
               str(REPO / "tabular" / "solve.py"), str(solutions["a1_simulation_lemma"]), "/etc/passwd"]
    (sub / "notebook.ipynb").write_text("{}")
    (probe / "lib" / "_collect.py").write_text(PROBE.replace("PATHS", repr(outside + ["/sandbox/submission/notebook.ipynb"])))
    sandbox = sys.modules["sandbox"]
    r = sandbox.run(probe / "lib", sub, {"HOME": "/tmp"}, stdin=subprocess.DEVNULL, capture=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    out = json.loads(r.stdout)
    assert out["uid"] == 65534 and not out["net"] and not out["write_submission"]
    assert "777123" not in json.dumps(out), "the course seed is visible in the sandbox"
    assert set(out["env"]) <= {"HOME", "PWD", "LC_CTYPE"}, out["env"]  # PWD: bwrap; LC_CTYPE: Python (PEP 538)
    assert out["reads"] == {**{p: False for p in outside}, "/sandbox/submission/notebook.ipynb": True}
    if sandbox.seccomp_filter() is not None:  # x86-64: refused by the filter (both succeed without it)
        assert not out["unshare_user"] and not out["keyctl"]
    cmdlines = " ".join(v for k, v in out["proc"].items() if k.endswith("cmdline"))
    assert "--ro-bind" not in cmdlines and "pytest" not in cmdlines  # bwrap's options stay off its command line
    assert out["tabular"] == ["TabularMDP", "random_mdp"]
    assert all(str(REPO) not in v for k, v in out["proc"].items() if k.endswith("environ"))


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


@needs_sandbox
def test_grading_is_deterministic_and_catches_a_truncated_series(solutions, tmp_path):
    nb = _with(solutions["a1_simulation_lemma"], tmp_path / "trunc.ipynb", {"discounted_state_distribution": TRUNCATED})
    scores = [{k: v for k, v in _grade(nb, "a1_simulation_lemma").scores.items() if "written" not in k}
              for _ in range(3)]
    assert scores[0] == scores[1] == scores[2]
    assert scores[0]["q2"] == (1.0, 3.0)  # small instances pass, the hidden part (gamma up to 0.999) does not
    other = _grade(nb, "a1_simulation_lemma", seed=7).scores
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


HONEST_A1 = {
    "policy_value": """
import numpy as np
import scipy.linalg
def _induced(P, pi):  # a helper of the student's own
    return np.einsum("sa,sat->st", pi, P)
def policy_value(P, R, pi, gamma):
    r = (pi * R).sum(1)
    return scipy.linalg.solve(np.eye(len(r)) - gamma * _induced(P, pi), r)
""",
    "discounted_state_distribution": """
import numpy as np
import scipy.sparse.linalg
from tabular import TabularMDP, random_mdp
def discounted_state_distribution(P, pi, p0, gamma):
    M = TabularMDP(P, np.zeros(pi.shape), p0, gamma)  # the allowed container, for its checks
    A = np.eye(M.S) - gamma * _induced(M.dense_P(), pi).T
    return (1 - gamma) * scipy.sparse.linalg.spsolve(scipy.sparse.csr_matrix(A), np.asarray(p0))
""",
}


@needs_sandbox
def test_honest_answers_that_use_allowed_helpers_get_full_marks(solutions, tmp_path):
    nb = _with(solutions["a3_eq5_counterexample"], tmp_path / "honest.ipynb", HONEST_A3)
    g = _grade(nb, "a3_eq5_counterexample")
    assert g.total == g.possible, g.failures
    nb = _with(solutions["a1_simulation_lemma"], tmp_path / "honest_scipy.ipynb", HONEST_A1)
    g = _grade(nb, "a1_simulation_lemma")
    assert g.total == g.possible, (g.failures, g.notes)


SIDE_CHECK = r"""
import json, sys
import numpy as np
import tabular
from tabular.verify import random_mdp as rm2
M = tabular.random_mdp(np.random.default_rng(3), 4, 2, 0.9)
pi = np.full((4, 2), 0.5)
print(json.dumps({"public": sorted(tabular.__all__),
                  "reachable": [n for n in ("policy_evaluation", "occupancy", "bellman_operator") if hasattr(tabular, n)],
                  "same": rm2 is tabular.random_mdp, "P": M.dense_P().tolist(), "V": tabular.evaluate(M, pi).V.tolist()}))
"""


def test_the_student_side_package_holds_only_what_is_allowed():
    import tabular

    lib3, lib5 = secure.student_lib("a3_eq5_counterexample"), secure.student_lib("a5_torch_objectives")
    assert not (lib5 / "tabular").exists()  # assignment 5 allows nothing from tabular
    source = "\n".join(p.read_text() for p in (lib3 / "tabular").rglob("*.py"))
    for reference in ("policy_evaluation", "occupancy", "bellman_operator", "deviation_error", "simulation_lemma",
                      "model_probs", "ma_upper_l1_loss", "visit_counts", "value_iteration"):
        assert f"def {reference}(" not in source, reference
    site = [p for p in sys.path if p.endswith("-packages")]
    r = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = [{str(lib3)!r}]; "
                        f"sys.path += {site!r}\n" + SIDE_CHECK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["public"] == ["TabularMDP", "evaluate", "random_mdp"] and out["same"] and out["reachable"] == []
    # the cut-out functions are the real ones: the same MDP from the same seed, the same values
    M = tabular.random_mdp(np.random.default_rng(3), 4, 2, 0.9)
    np.testing.assert_array_equal(out["P"], M.dense_P())
    np.testing.assert_allclose(out["V"], tabular.policy_evaluation(M, np.full((4, 2), 0.5)), rtol=1e-12)


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown assignment"):
        secure.instances("a9")
    with pytest.raises(ValueError, match="not a notebook"):
        secure.grade_notebook(tmp_path / "none.ipynb", "a1_simulation_lemma")


@needs_sandbox
def test_an_endless_cell_costs_its_cell_only(solutions, tmp_path, monkeypatch):
    nb = nbformat.read(solutions["a1_simulation_lemma"], as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    path = tmp_path / "loop.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("MODELADV_CELL_SECONDS", "2")
    g = _grade(path, "a1_simulation_lemma")
    assert any("TimeoutError" in n for n in g.notes), g.notes
    assert g.total == g.possible  # the other cells ran, the graded functions were defined and graded


def test_a_python_under_tmp_is_bound_on_top_of_the_sandboxs_fresh_tmp(tmp_path):
    """CI's virtual environment lives under /tmp (mktemp): the sandbox's empty /tmp must be mounted before the
    Python trees, or it hides the interpreter (bwrap applies its options in order)."""
    sandbox = _load(ASSIGNMENTS / "sandbox.py", "assignments_sandbox_order")
    _, opts = sandbox.command(tmp_path / "lib", tmp_path / "sub", {})
    tmpfs = max(i for i, o in enumerate(opts) if o == "--tmpfs" and opts[i + 1] == "/tmp")
    trees, _ = sandbox._python_trees()
    binds = [i for i, o in enumerate(opts) if o == "--ro-bind" and Path(opts[i + 1]) in trees]
    assert binds and tmpfs < min(binds)
