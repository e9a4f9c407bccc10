"""``modeladv verify``: Lemma 1 and Corollary 2 checked on random MDPs and Sutton & Barto's grids."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from lab.config import bounded, check_fields

__all__ = ["Args", "run"]


@dataclass(frozen=True)
class Args:
    """Check Lemma 1 and Corollary 2 on random MDPs and Sutton & Barto's grids; show printed Eq. 3 and 5 failing.

    For example:

        modeladv verify                        # 5 random 10-state pairs + textbook grids
        modeladv verify --gamma 0.99 --json
    """

    seed: int = field(default=0, metadata=bounded(0))
    """seed of the random MDPs"""
    n_mdps: int = field(default=5, metadata=bounded(0))
    """number of random MDP pairs (>= 0)"""
    states: int = field(default=10, metadata=bounded(1))
    """states of each random MDP (>= 1)"""
    actions: int = field(default=3, metadata=bounded(1))
    """actions of each random MDP (>= 1)"""
    gamma: float = field(default=0.9, metadata=bounded(0.0, 1.0, high_open=True))
    """discount of the random MDPs, in [0, 1)"""
    json: bool = False
    """print the rows and the summary as JSON"""

    def __post_init__(self):
        check_fields(self)


def run(o: Args) -> int:
    from tabular.verify import TOL, format_table, verify_cases, verify_pair

    rows = [verify_pair(*c) for c in verify_cases(o.seed, o.n_mdps, o.states, o.actions, o.gamma)]
    failed = {c: sum(abs(getattr(r, c)) > TOL * max(1.0, abs(r.lhs)) for r in rows) for c in ("printed_eq3", "printed_eq5")}
    ok = all(r.exact_ok for r in rows)
    if o.json:
        print(json.dumps({"rows": [dataclasses.asdict(r) | {"exact_ok": r.exact_ok} for r in rows],
                          "printed_failures": failed, "n": len(rows), "pass": ok}, indent=1))
        return 0 if ok else 1
    print("Residuals (lhs - rhs) of Lemma 1 (Eq. 3) and Corollary 2 (Eq. 5), values unnormalized unless '(norm)'")
    print(format_table(rows))
    print(f"\nprinted Eq. 3 (unnormalized values) fails on {failed['printed_eq3']}/{len(rows)} pairs "
          "(holds only for (1-gamma)-normalized values or equal expected rewards)")
    print(f"printed Eq. 5 fails on {failed['printed_eq5']}/{len(rows)} pairs "
          "(holds when P^pi agrees; exact forms: E_dM[T_M V_M2 - T_M2 V_M2] or E_dM2[T_M V_M - T_M2 V_M])")
    print(f"{'PASS' if ok else 'FAIL'}: exact forms of Lemma 1 and Corollary 2 hold to {TOL:g} on "
          f"{sum(r.exact_ok for r in rows)}/{len(rows)} pairs")
    return 0 if ok else 1
