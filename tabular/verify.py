"""``modeladv verify``: check Lemma 1 and Corollary 2 exactly on random MDPs and textbook gridworlds.

For each pair of models ``(M, M2)`` and policy it prints ``J_M - J_M2`` and the residuals of

* Lemma 1 (Eq. 3) in the unnormalized and the ``(1-gamma)``-normalized convention (exact),
* Eq. 3 *as printed* with unnormalized values (fails when rewards differ and gamma > 0),
* Corollary 2 in the proof's form ``E_{d_M}[T_M V_M2 - T_M2 V_M2]`` and its dual (exact),
* Eq. 5 *as printed*, ``E_{d_M}[T_M V_M - T_M2 V_M]`` (fails when the dynamics differ),
* whether ``max_s |V_M - V_M2|`` is below the Eq. 15 bound,

and exits 0 when every exact form holds to ``1e-8`` (relative to ``max(1, |J_M - J_M2|)``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np

from .advantage import deviation_error, eq5_counterexample, simulation_lemma, value_difference_bound
from .mdp import TabularMDP, uniform_policy
from .solve import value_iteration

__all__ = ["gridworld_example_3_5", "gridworld_example_4_1", "random_mdp", "VerifyRow", "verify_pair",
           "configure", "run", "TOL"]

#: Tolerance on the residual of an exact identity, relative to max(1, |J_M - J_M2|).
TOL = 1e-8

#: Grid moves in the order north, south, east, west (row, column deltas).
_MOVES = ((-1, 0), (1, 0), (0, 1), (0, -1))


def _grid_dynamics(n: int, teleports: dict, slip: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic n x n grid moves (off-grid: stay, reward -1) with optional teleports, mixed with slip.

    ``teleports`` maps a cell index to ``(target, reward)`` applied for every action. With ``slip > 0`` the
    intended move happens with probability ``1 - slip`` and a uniformly random move otherwise.
    Returns ``P (S, 4, S)`` and the expected reward ``R (S, 4)``.
    """
    S = n * n
    P_det = np.zeros((S, 4, S))
    r_det = np.zeros((S, 4))
    for s in range(S):
        r, c = divmod(s, n)
        for a, (dr, dc) in enumerate(_MOVES):
            if s in teleports:
                s2, r_det[s, a] = teleports[s]
            elif 0 <= r + dr < n and 0 <= c + dc < n:
                s2 = (r + dr) * n + c + dc
            else:
                s2, r_det[s, a] = s, -1.0
            P_det[s, a, s2] = 1.0
    P = (1 - slip) * P_det + slip * P_det.mean(axis=1, keepdims=True)
    R = (1 - slip) * r_det + slip * r_det.mean(axis=1, keepdims=True)
    return P, R


def gridworld_example_3_5(gamma: float = 0.9, slip: float = 0.0, a_reward: float = 10.0,
                          b_reward: float = 5.0) -> TabularMDP:
    """Sutton & Barto (2nd ed., 2018), Example 3.5: the 5 x 5 gridworld of Figure 3.2.

    States ``5 r + c`` (row ``r`` from the top); actions north, south, east, west. Every action in
    ``A = (0, 1)`` moves to ``A' = (4, 1)`` with reward ``+10``; in ``B = (0, 3)`` to ``B' = (2, 3)`` with
    ``+5``; a move off the grid leaves the state unchanged with reward ``-1``; all else 0. ``p0`` uniform.
    ``slip`` (not in the book) mixes a uniformly random move in, to make a second model with other dynamics.
    """
    A, A2, B, B2 = 1, 21, 3, 13
    P, R = _grid_dynamics(5, {A: (A2, a_reward), B: (B2, b_reward)}, slip)
    return TabularMDP(P, R, np.full(25, 1 / 25), gamma)


def gridworld_example_4_1() -> TabularMDP:
    """Sutton & Barto (2nd ed., 2018), Example 4.1: the 4 x 4 episodic gridworld (gamma = 1).

    States ``4 r + c``; the corners 0 and 15 are terminal (absorbing, reward 0). Every other step costs
    ``-1``; moves off the grid leave the state unchanged. ``p0`` uniform over the 14 non-terminal states.
    """
    P, _ = _grid_dynamics(4, {}, 0.0)
    R = -np.ones((16, 4))
    for t in (0, 15):
        P[t] = 0.0
        P[t, :, t] = 1.0
        R[t] = 0.0
    p0 = np.full(16, 1 / 14)
    p0[[0, 15]] = 0.0
    return TabularMDP(P, R, p0, 1.0, terminal=[0, 15])


def random_mdp(rng: np.random.Generator, S: int, A: int, gamma: float) -> TabularMDP:
    """A dense random MDP: Dirichlet(1) rows for ``P`` and ``p0``, rewards uniform in ``[-1, 1]``."""
    return TabularMDP(rng.dirichlet(np.ones(S), size=(S, A)), rng.uniform(-1, 1, size=(S, A)),
                      rng.dirichlet(np.ones(S)), gamma)


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


def _cases(seed: int, n_mdps: int, S: int, A: int, gamma: float):
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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of the random MDPs (default 0)")
    parser.add_argument("--n-mdps", type=int, default=5, help="number of random MDP pairs (default 5)")
    parser.add_argument("--states", type=int, default=10, help="states of each random MDP (default 10)")
    parser.add_argument("--actions", type=int, default=3, help="actions of each random MDP (default 3)")
    parser.add_argument("--gamma", type=float, default=0.9, help="discount of the random MDPs, in [0, 1)")
    parser.add_argument("--json", action="store_true", help="print the rows and the summary as JSON")


def _check_args(args: argparse.Namespace) -> None:
    if not 0 <= args.gamma < 1:
        raise ValueError(f"--gamma must lie in [0, 1); got {args.gamma}")
    if args.states < 1:
        raise ValueError(f"--states must be >= 1; got {args.states}")
    if args.actions < 1:
        raise ValueError(f"--actions must be >= 1; got {args.actions}")
    if args.n_mdps < 0:
        raise ValueError(f"--n-mdps must be >= 0; got {args.n_mdps}")


_COLUMNS = ("lhs", "lemma1", "lemma1_normalized", "printed_eq3", "cor2_proof", "cor2_dual", "printed_eq5")
_HEADERS = ("J_M-J_M2", "Lem1", "Lem1(norm)", "Eq3 print", "Cor2 proof", "Cor2 dual", "Eq5 print")


def _table(rows: list[VerifyRow]) -> str:
    width = max(len(r.case) for r in rows)
    head = f"{'case':<{width}}  {'S':>3} {'A':>2} {'gamma':>5}  " + " ".join(f"{h:>10}" for h in _HEADERS)
    lines = [head + "  bound  exact", "-" * (len(head) + 14)]
    for r in rows:
        nums = " ".join(f"{getattr(r, c):>10.2e}" if c != "lhs" else f"{r.lhs:>10.4f}" for c in _COLUMNS)
        lines.append(f"{r.case:<{width}}  {r.S:>3} {r.A:>2} {r.gamma:>5.2f}  {nums}  "
                     f"{'ok' if r.bound_ok else 'FAIL':>5}  {'PASS' if r.exact_ok else 'FAIL':>5}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    rows = [verify_pair(*c) for c in _cases(args.seed, args.n_mdps, args.states, args.actions, args.gamma)]
    failed_printed = {c: sum(abs(getattr(r, c)) > TOL * max(1.0, abs(r.lhs)) for r in rows)
                      for c in ("printed_eq3", "printed_eq5")}
    ok = all(r.exact_ok for r in rows)
    if args.json:
        print(json.dumps({"rows": [asdict(r) | {"exact_ok": r.exact_ok} for r in rows],
                          "printed_failures": failed_printed, "n": len(rows), "pass": ok}, indent=1))
        return 0 if ok else 1
    print("Residuals (lhs - rhs) of Lemma 1 (Eq. 3) and Corollary 2 (Eq. 5), values unnormalized unless '(norm)'")
    print(_table(rows))
    print(f"\nprinted Eq. 3 (unnormalized values) fails on {failed_printed['printed_eq3']}/{len(rows)} pairs "
          "(holds only for (1-gamma)-normalized values or equal expected rewards)")
    print(f"printed Eq. 5 fails on {failed_printed['printed_eq5']}/{len(rows)} pairs "
          "(holds when P^pi agrees; exact forms: E_dM[T_M V_M2 - T_M2 V_M2] or E_dM2[T_M V_M - T_M2 V_M])")
    print(f"{'PASS' if ok else 'FAIL'}: exact forms of Lemma 1 and Corollary 2 hold to {TOL:g} on "
          f"{sum(r.exact_ok for r in rows)}/{len(rows)} pairs")
    return 0 if ok else 1
