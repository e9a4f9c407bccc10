"""What the sandboxed grader (``assignments/secure.py``) asks of each graded question: the student function's
name (stable across semesters), its points split in two parts, the ``tabular`` names it may use, and the
instances with their reference answers, drawn in the grader's process from a per-course seed. The allowed names
of an assignment's questions are all the sandbox's student-side ``tabular`` holds (``assignments/sandbox.py``).

Instructor material: kept out of the student bundle (``assignments/build.py --bundle``).

Each question has two parts: a *small* part (the public tests' points; 3 small instances) and a *hidden* part (the
hidden tests' points; 10 instances of every size the hidden tests drew, two of them with gamma 0.99 and 0.999,
where a truncated series or an ill-conditioned shortcut shows). A part scores its points when every one of its
instances agrees with the reference and the student's code did not run any ``tabular`` function outside ``allow``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import tabular as tb
from grading_utils import (mbrl_loop_instance, mbrl_loop_reference, random_instance, random_objective_instance, residuals_case,
                           torch_ma_l1_reference, torch_objective_instance, torch_vps_instance, torch_vps_reference)
from tabular.verify import random_mdp

__all__ = ["Part", "Question", "QUESTIONS", "HARD_GAMMAS", "WRITTEN"]

#: discounts every MDP question is also graded at (a truncated sum of gamma^t, or a shortcut, fails there)
HARD_GAMMAS = (0.99, 0.999)


@dataclass(frozen=True)
class Part:
    """``points`` for agreeing on every instance of ``draw(rng, n)``: a list of ``(args, want)``."""

    points: int
    n: int
    draw: Callable[[np.random.Generator, int, bool], list[tuple[tuple, Any]]]


@dataclass(frozen=True)
class Question:
    """A graded question: ``function(*args)`` in the student's notebook, compared with ``want`` by ``check``."""

    name: str
    function: str
    parts: tuple[Part, ...]
    allow: tuple[str, ...] = ("TabularMDP", "random_mdp")
    forbidden: tuple[str, ...] = ("tabular",)  # packages whose frames may not run during the call (but allow)
    check: Callable[[Any, Any, tuple], str | None] | None = None  # None: numeric agreement (``compare``)
    rtol: float = 1e-7
    atol: float = 1e-9
    extra: dict = field(default_factory=dict)

    @property
    def points(self) -> int:
        return sum(p.points for p in self.parts)


def _mdp_cases(make: Callable) -> Callable:
    """``draw(rng, n, hidden)``: ``n`` random instances (small ones for the public part), the last two of a
    hidden part at the hard discounts."""
    def draw(rng, n, hidden):
        out = []
        for i in range(n):
            gamma = HARD_GAMMAS[i - (n - len(HARD_GAMMAS))] if hidden and i >= n - len(HARD_GAMMAS) else None
            out.append(make(rng, gamma, hidden))
        return out
    return draw


def _instance(rng, gamma, hidden, same_rewards=False):
    if hidden:
        return random_instance(rng, same_rewards=same_rewards, gamma=gamma)
    M = random_mdp(rng, int(rng.integers(2, 4)), int(rng.integers(1, 3)), float(rng.uniform(0.3, 0.9)))
    R2 = M.R if same_rewards else rng.uniform(-1, 1, size=M.R.shape)
    return M, M.replace(P=rng.dirichlet(np.ones(M.S), size=(M.S, M.A)), R=R2), rng.dirichlet(np.ones(M.A), size=M.S)


def _two(points_public: int, points_hidden: int, make: Callable, n_hidden: int = 10) -> tuple[Part, Part]:
    d = _mdp_cases(make)
    return Part(points_public, 3, d), Part(points_hidden, n_hidden, d)


# ---- assignment 1 -------------------------------------------------------------------------------------
def _a1_q1(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    return (M.dense_P(), M.R, pi, M.gamma), tb.policy_evaluation(M, pi)


def _a1_q2(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    return (M.dense_P(), pi, M.p0, M.gamma), tb.occupancy(M, pi)


def _a1_q3(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    return (M.dense_P(), M.R, pi, M.gamma), tb.model_advantage(M, pi)


def _a1_q4(rng, gamma, hidden):
    M, M2, pi = _instance(rng, gamma, hidden)
    ref = tb.simulation_lemma(M, M2, pi)
    return (M, M2, pi), (ref.lhs, ref.model_advantage_term, ref.reward_term)


def _a1_q5(rng, gamma, hidden):
    M, M2, pi = _instance(rng, gamma, hidden)
    return (M, M2, pi), tb.simulation_lemma(M, M2, pi).printed_residual


# ---- assignment 2 -------------------------------------------------------------------------------------
def _a2_q1(rng, gamma, hidden):
    S, A = (int(v) for v in rng.integers(1, 7 if hidden else 3, size=2))
    logits = rng.normal(scale=3, size=(S, A, S))
    if hidden and gamma is not None:  # the hard case of a softmax: huge logits
        logits *= 300
    return (logits,), tb.model_probs(logits)


def _a2_q2(rng, gamma, hidden):
    return residuals_case(rng, small=not hidden)


def _objective_case(loss, trajectories=False):
    def make(rng, gamma, hidden):
        M, b, logits, V = random_objective_instance(rng, trajectories=trajectories)
        if trajectories:
            return (logits, V, b.s, b.a, b.s2, b.t, b.episode, M.gamma), loss(logits, V, b, M.gamma)
        return (logits, V, b.s, b.a, b.s2), loss(logits, V, b)
    return make


# ---- assignment 3 -------------------------------------------------------------------------------------
def _a3_q1(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    V = rng.normal(size=M.S)
    return (M, pi, V), tb.bellman_operator(M, pi, V)


def _a3_q2(rng, gamma, hidden):
    M, M2, pi = _instance(rng, gamma, hidden)
    ref = tb.deviation_error(M, M2, pi)
    return (M, M2, pi), (ref.lhs, ref.printed_form, ref.proof_form, ref.dual_form)


def _a3_q4(rng, gamma, hidden):
    M, M2, pi = _instance(rng, gamma, hidden, same_rewards=True)
    eps = rng.uniform(0, 1, size=3)
    want = [tb.deviation_error(M, M.replace(P=(1 - e) * M.dense_P() + e * M2.dense_P()), pi).printed_residual
            for e in eps]
    return (M, M2, pi, eps), np.asarray(want)


# ---- assignment 4 -------------------------------------------------------------------------------------
def _a4_q1(rng, gamma, hidden):
    M, b, logits, V = random_objective_instance(rng)
    lr = float(rng.uniform(0.05, 1.0))
    return (logits, V, b.s, b.a, b.s2, lr), logits - lr * tb.ma_upper_l1_loss(logits, V, b)[1]


def _a4_q2(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    logits = rng.normal(size=(M.S, M.A, M.S))
    return (logits, M.R, pi, M.gamma), tb.policy_evaluation(M.replace(P=tb.model_probs(logits)), pi)


def _a4_q3(rng, gamma, hidden):
    M, _, pi = _instance(rng, gamma, hidden)
    logits = rng.normal(size=(M.S, M.A, M.S))
    L = tb.simulation_lemma(M, M.replace(P=tb.model_probs(logits)), pi)
    return (M, logits, pi), (L.lhs, L.model_advantage_term)


def _a4_q4(rng, gamma, hidden):
    args = mbrl_loop_instance(rng, gamma=gamma if hidden else None)
    return args, tuple(mbrl_loop_reference(*args))


# ---- assignment 5 -------------------------------------------------------------------------------------
def _a5_q1(rng, gamma, hidden):
    p, s, a, s2, _ = torch_objective_instance(rng)
    return (p, s, a, s2), tuple(torch_ma_l1_reference(p, s, a, s2))


def _a5_q2(rng, gamma, hidden):
    p, s, a, s2, _ = torch_objective_instance(rng)
    return (p, s, a, s2, 1e-6), torch_ma_l1_reference(p, s, a, s2)[1]


def _a5_q3(rng, gamma, hidden):
    p, s, a = torch_vps_instance(rng)
    return (p, s, a), tuple(torch_vps_reference(p, s, a))


def _forms(got, want, args):
    """corollary2_forms returns a dict; its four numbers in the reference's order."""
    if not isinstance(got, dict) or not {"lhs", "printed", "proof", "dual"} <= set(got):
        return f"expected a dict with keys lhs, printed, proof, dual; got {type(got).__name__}"
    return compare([got["lhs"], got["printed"], got["proof"], got["dual"]], want)


def _valid_pair(got):
    if not (isinstance(got, (list, tuple)) and len(got) == 3):
        return None, "counterexample() must return (M, M2, pi)"
    M, M2, pi = got
    if not (isinstance(M, tb.TabularMDP) and isinstance(M2, tb.TabularMDP)):
        return None, "return two TabularMDPs and a policy"
    if (M.S, M.A, M.gamma) != (M2.S, M2.A, M2.gamma) or not (np.allclose(M.p0, M2.p0) and np.allclose(M.R, M2.R)):
        return None, "the models must share S, A, gamma, p0 and the rewards"
    pi = np.asarray(pi, dtype=float)
    if pi.shape != (M.S, M.A):
        return None, f"pi must have shape (S, A) = {(M.S, M.A)}; got {pi.shape}"
    return (M, M2, pi), None


def _counterexample_valid(got, want, args):
    return _valid_pair(got)[1]


def _counterexample_fails_eq5(got, want, args):
    pair, err = _valid_pair(got)
    if err:
        return err
    dev = tb.deviation_error(*pair)
    if abs(dev.printed_residual) < 1e-3 * max(1.0, abs(dev.lhs)):
        return f"printed Eq. 5 holds here: J_M - J_M2 = {dev.lhs}, printed form = {dev.printed_form}"
    return None


def _no_args(rng, n, hidden):
    return [((), None)]


def compare(got, want, rtol: float = 1e-7, atol: float = 1e-9) -> str | None:
    """``None`` when ``got`` agrees with ``want`` (a tuple ``want``: component by component), else why not."""
    if isinstance(want, tuple) and (not isinstance(got, (list, tuple)) or len(got) != len(want)):
        return f"expected {len(want)} outputs; got {type(got).__name__}"
    pairs = list(zip(got, want)) if isinstance(want, tuple) else [(got, want)]
    for k, (g, w) in enumerate(pairs):
        try:
            g = np.asarray(g, dtype=float)
        except (TypeError, ValueError):
            return f"output {k} is not numeric"
        w = np.asarray(w, dtype=float)
        if g.shape != w.shape:
            return f"output {k} has shape {g.shape}; expected {w.shape}"
        if not np.allclose(g, w, rtol=rtol, atol=atol):
            err = float(np.max(np.abs(g - w)))
            return f"output {k} differs from the reference by up to {err:.3g}"
    return None


_EVAL = ("TabularMDP", "random_mdp", "evaluate")
QUESTIONS: dict[str, tuple[Question, ...]] = {
    "a1_simulation_lemma": (
        Question("q1", "policy_value", _two(1, 2, _a1_q1)),
        Question("q2", "discounted_state_distribution", _two(1, 2, _a1_q2)),
        Question("q3", "model_advantage", _two(1, 2, _a1_q3)),
        Question("q4", "lemma1_terms", _two(1, 3, _a1_q4)),
        Question("q5", "printed_eq3_residual", _two(1, 1, _a1_q5)),
    ),
    "a2_sampled_objectives": (
        Question("q1", "softmax_model", _two(1, 1, _a2_q1, n_hidden=5)),
        Question("q2", "residuals", _two(1, 2, _a2_q2, n_hidden=3), atol=1e-6),
        Question("q3", "upper_bound_l1", _two(1, 2, _objective_case(tb.ma_upper_l1_loss), n_hidden=5)),
        Question("q4", "direct_l1", _two(1, 3, _objective_case(lambda l, V, b, g: tb.ma_direct_loss(l, V, b, g, norm=1),
                                                                 trajectories=True), n_hidden=5)),
        Question("q5", "vaml_l2", _two(1, 2, _objective_case(tb.ma_vaml_l2_loss), n_hidden=5)),
    ),
    "a3_eq5_counterexample": (
        Question("q1", "bellman", _two(1, 2, _a3_q1), allow=_EVAL),
        Question("q2", "corollary2_forms", _two(1, 3, _a3_q2), allow=_EVAL, check=_forms),
        Question("q3a", "counterexample", (Part(1, 1, _no_args),), allow=_EVAL, check=_counterexample_valid),
        Question("q3b", "counterexample", (Part(2, 1, _no_args),), allow=_EVAL, check=_counterexample_fails_eq5),
        Question("q4", "printed_residuals", _two(1, 2, _a3_q4, n_hidden=5), allow=_EVAL),
    ),
    "a4_tabular_mbrl_loop": (
        Question("q1", "ma_l1_step", _two(1, 2, _a4_q1, n_hidden=6)),
        Question("q2", "refresh_value", _two(1, 2, _a4_q2)),
        Question("q3", "gap_and_terms", _two(1, 2, _a4_q3)),
        Question("q4", "mbrl_loop", _two(1, 3, _a4_q4, n_hidden=5), atol=1e-8),
    ),
    "a5_torch_objectives": (
        Question("q1", "ma_l1_torch", _two(1, 2, _a5_q1, n_hidden=5), allow=(), forbidden=("tabular", "deep")),
        Question("q2", "central_differences", _two(1, 2, _a5_q2, n_hidden=5), allow=(), forbidden=("tabular", "deep"),
                 rtol=1e-5, atol=1e-6),
        Question("q3", "vps_torch", _two(1, 2, _a5_q3, n_hidden=5), allow=(), forbidden=("tabular", "deep")),
    ),
}

#: written questions, graded by hand from the rubric beside each model answer: (name, points) per assignment
WRITTEN: dict[str, tuple[tuple[str, int], ...]] = {
    "a1_simulation_lemma": (("q6", 2),),
    "a2_sampled_objectives": (("q6", 2),),
    "a3_eq5_counterexample": (("q5", 3),),
    "a4_tabular_mbrl_loop": (("q5", 2),),
    "a5_torch_objectives": (("q4", 2),),
}
