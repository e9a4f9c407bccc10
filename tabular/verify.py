"""Check Lemma 1 and Corollary 2 exactly on random MDPs and textbook gridworlds.

For each pair of models ``(M, M2)`` and policy it prints ``J_M - J_M2`` and the residuals of

* Lemma 1 (Eq. 3) in the unnormalized and the ``(1-gamma)``-normalized convention (exact),
* Eq. 3 *as printed* with unnormalized values (fails when rewards differ and gamma > 0),
* Corollary 2 in the proof's form ``E_{d_M}[T_M V_M2 - T_M2 V_M2]`` and its dual (exact),
* Eq. 5 *as printed*, ``E_{d_M}[T_M V_M - T_M2 V_M]`` (fails when the dynamics differ),
* whether ``max_s |V_M - V_M2|`` is below the Eq. 15 bound,

and exits 0 when every exact form holds to ``1e-8`` (relative to ``max(1, |J_M - J_M2|)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .advantage import deviation_error, simulation_lemma, value_difference_bound
from .examples import eq5_counterexample, gridworld_example_3_5, gridworld_example_4_1, random_mdp
from .mdp import TabularMDP, uniform_policy
from .solve import value_iteration

__all__ = ["gridworld_example_3_5", "gridworld_example_4_1", "random_mdp", "VerifyRow", "verify_pair",
           "verify_cases", "format_table", "TOL"]

#: Tolerance on the residual of an exact identity, relative to ``max(1, |J_M - J_M2|)``.
TOL = 1e-8


@dataclass(frozen=True)
class VerifyRow:
    """One line of the verification table (residual = lhs - rhs of the named form)."""

    case: str
    S: int
    A: int
    gamma: float
    lhs: float
    lemma1: float
    lemma1_normalized: float
    printed_eq3: float
    cor2_proof: float
    cor2_dual: float
    printed_eq5: float
    bound_ok: bool

    @property
    def exact_ok(self) -> bool:
        """Every exact form holds to :data:`TOL` and the Eq. 15 bound holds."""
        tol = TOL * max(1.0, abs(self.lhs))
        res = (self.lemma1, self.lemma1_normalized / (1 - self.gamma), self.cor2_proof, self.cor2_dual)
        return all(abs(r) <= tol for r in res) and self.bound_ok


def verify_pair(case: str, M: TabularMDP, M2: TabularMDP, pi) -> VerifyRow:
    """Evaluate all forms of Lemma 1 / Corollary 2 and the Eq. 15 bound for one pair of models."""
    lem, lem_n = simulation_lemma(M, M2, pi), simulation_lemma(M, M2, pi, normalized=True)
    dev = deviation_error(M, M2, pi)
    bound = value_difference_bound(M, M2, pi)
    return VerifyRow(case=case, S=M.S, A=M.A, gamma=M.gamma, lhs=lem.lhs, lemma1=lem.residual,
                     lemma1_normalized=lem_n.residual, printed_eq3=lem.printed_residual,
                     cor2_proof=dev.proof_residual, cor2_dual=dev.dual_residual, printed_eq5=dev.printed_residual,
                     bound_ok=bool(bound.actual <= bound.eq15 * (1 + 1e-12) + 1e-12))


def verify_cases(seed: int, n_mdps: int, S: int, A: int, gamma: float):
    rng = np.random.default_rng(seed)
    for i in range(n_mdps):
        M = random_mdp(rng, S, A, gamma)
        M2 = M.replace(P=rng.dirichlet(np.ones(S), size=(S, A)), R=rng.uniform(-1, 1, size=(S, A)))
        yield f"random #{i} (P, R differ)", M, M2, rng.dirichlet(np.ones(A), size=S)
    grid = gridworld_example_3_5()
    pi = 0.5 * uniform_policy(grid) + 0.5 * value_iteration(grid).pi  # under the uniform policy slip is invisible
    yield "S&B 3.5 grid, slip 0.2 (P differs)", grid, grid.replace(P=gridworld_example_3_5(slip=0.2).P), pi
    yield "S&B 3.5 grid, B +5 -> +3 (R differs)", grid, gridworld_example_3_5(b_reward=3.0), pi
    yield "eq5_counterexample (P differs)", *eq5_counterexample()


_COLUMNS = ("lhs", "lemma1", "lemma1_normalized", "printed_eq3", "cor2_proof", "cor2_dual", "printed_eq5")
_HEADERS = ("J_M-J_M2", "Lem1", "Lem1(norm)", "Eq3 print", "Cor2 proof", "Cor2 dual", "Eq5 print")


def format_table(rows: list[VerifyRow]) -> str:
    width = max(len(r.case) for r in rows)
    head = f"{'case':<{width}}  {'S':>3} {'A':>2} {'gamma':>5}  " + " ".join(f"{h:>10}" for h in _HEADERS)
    lines = [head + "  bound  exact", "-" * (len(head) + 14)]
    for r in rows:
        nums = " ".join(f"{getattr(r, c):>10.2e}" if c != "lhs" else f"{r.lhs:>10.4f}" for c in _COLUMNS)
        lines.append(f"{r.case:<{width}}  {r.S:>3} {r.A:>2} {r.gamma:>5.2f}  {nums}  "
                     f"{'ok' if r.bound_ok else 'FAIL':>5}  {'PASS' if r.exact_ok else 'FAIL':>5}")
    return "\n".join(lines)


