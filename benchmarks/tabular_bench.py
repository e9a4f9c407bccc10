"""Speed of the tabular core against hand-written scipy/numpy baselines and pymdptoolbox.

Run: ``python benchmarks/tabular_bench.py [--quick]``. Prints medians of several repeats and the median
ratio of ours / baseline over runs made alternately in this process (so both sides see the same load on a
shared machine). No assertions on time: machines differ.

(a) sparse 256x256 slippery grid (65,536 states, 4 actions): ``evaluate`` (V and d) followed by
    ``expected_model_advantage`` of a second model, vs building ``P_pi`` by hand, one ``splu`` of
    ``I - gamma P_pi``, two solves and the two sparse mat-vecs of the expected model advantage.
(b) the same workload on a dense random MDP with S = 2048, A = 4, vs ``scipy.linalg.lu_factor`` + two solves.
(c) ``policy_iteration`` vs ``mdptoolbox.mdp.PolicyIteration`` (matrix evaluation): on a sparse slippery
    grid (S = 1024 and 4096; mdptoolbox evaluates every policy with a dense solve) and on a dense random
    MDP (S = 1024; both sides are LAPACK-bound there). Checks that values and policies agree.
(d) the sampled objectives' value + gradient on N = 1e6 transitions: numba kernels vs numpy references.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import tabular
from tabular import TabularMDP, evaluate, policy_iteration
from tabular import objectives as O
from tabular.solve import _EVAL_CACHE

try:  # written concurrently by another module; fall back to the equivalent two mat-vecs
    from tabular.advantage import expected_model_advantage
except ImportError:  # pragma: no cover
    expected_model_advantage = None


def time_pair(f, g, repeats: int):
    """Time ``f()`` and ``g()`` alternately (one warm-up call each), so both see the same load on a shared
    machine. Returns ``(median time of f, median time of g, median of the per-pair ratios f/g, f's result,
    g's result)``."""
    out_f, out_g = f(), g()
    tf, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_f = f()
        t1 = time.perf_counter()
        out_g = g()
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tg.append(t2 - t1)
    ratio = statistics.median(a / b for a, b in zip(tf, tg))
    return statistics.median(tf), statistics.median(tg), ratio, out_f, out_g


def slippery_grid(n: int, slip: float, gamma: float, rng: np.random.Generator) -> TabularMDP:
    """n x n grid, actions N/S/E/W; the intended move w.p. 1 - slip, each perpendicular one w.p. slip/2;
    moves into the border stay put. Sparse CSR P with <= 3 nonzeros per row; random rewards in [0, 1)."""
    S, A = n * n, 4
    r, c = np.divmod(np.arange(S), n)
    moves = [(-1, 0), (1, 0), (0, 1), (0, -1)]

    def target(dr, dc):
        return np.clip(r + dr, 0, n - 1) * n + np.clip(c + dc, 0, n - 1)

    rows, cols, vals = [], [], []
    for a, (dr, dc) in enumerate(moves):
        perp = [m for m in moves if m[0] * dr + m[1] * dc == 0]
        for p, (mr, mc) in [(1 - slip, (dr, dc)), (slip / 2, perp[0]), (slip / 2, perp[1])]:
            rows.append(np.arange(S) * A + a)
            cols.append(target(mr, mc))
            vals.append(np.full(S, p))
    P = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(S * A, S))
    return TabularMDP(P, rng.random((S, A)), np.full(S, 1.0 / S), gamma)


def random_dense(S: int, A: int, gamma: float, rng: np.random.Generator) -> TabularMDP:
    P = rng.random((S, A, S)) ** 4
    P /= P.sum(-1, keepdims=True)
    return TabularMDP(P, rng.random((S, A)), rng.dirichlet(np.ones(S)), gamma)


def policy_matrix(M: TabularMDP, pi: np.ndarray):
    """Hand-built P_pi (the baseline's own, not tabular's)."""
    S, A = M.S, M.A
    if M.is_sparse:
        W = sp.csr_matrix((pi.ravel(), np.arange(S * A), np.arange(0, S * A + 1, A)), shape=(S, S * A))
        return (W @ M.P).tocsc()
    return np.matmul(pi[:, None, :], M.P)[:, 0, :]


def ours_eval_ema(M, M2, pi):
    ev = evaluate(M, pi)
    if expected_model_advantage is not None:
        ema = expected_model_advantage(M, M2, pi, V=ev.V)
    else:  # the same quantity with two sparse mat-vecs
        ema = M.gamma * float(ev.d @ (tabular.transition_matrix(M, pi) @ ev.V - tabular.transition_matrix(M2, pi) @ ev.V))
    return ev.V, ev.d, ema


#: the sparse LU options tabular.solve uses (no pivoting on the M-matrix I - gamma P_pi, A + A^T ordering)
TABULAR_SPLU = dict(permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))


def baseline_eval_ema(M, M2, pi, splu_kw=None):
    """One factorization, two solves (V and the transposed one for d) and two mat-vecs, written by hand
    (scipy's default ``splu`` options unless ``splu_kw``)."""
    P_pi, P2_pi = policy_matrix(M, pi), policy_matrix(M2, pi)
    r_pi = (pi * M.R).sum(1)
    if M.is_sparse:
        lu = spla.splu((sp.identity(M.S, format="csc") - M.gamma * P_pi).tocsc(), **(splu_kw or {}))
        V, w = lu.solve(r_pi), lu.solve(M.p0, trans="T")
    else:
        lu = la.lu_factor(np.eye(M.S) - M.gamma * P_pi, check_finite=False)
        V, w = la.lu_solve(lu, r_pi, check_finite=False), la.lu_solve(lu, M.p0, trans=1, check_finite=False)
    d = w / w.sum()
    return V, d, M.gamma * float(d @ (P_pi @ V - P2_pi @ V))


def compare_eval(label, M, M2, pi, repeats):
    def ours():
        _EVAL_CACHE.clear()  # no memo hits across repeats: each call factorizes once, as the baseline does
        return ours_eval_ema(M, M2, pi)

    t_ours, t_base, ratio, (V, d, ema), (V0, d0, ema0) = time_pair(ours, lambda: baseline_eval_ema(M, M2, pi), repeats)
    agree = max(np.abs(V - V0).max() / np.abs(V0).max(), np.abs(d - d0).max(), abs(ema - ema0) / (1e-300 + abs(ema0)))
    print(f"({label}) ours {t_ours * 1e3:8.1f} ms  baseline {t_base * 1e3:8.1f} ms  ratio {ratio:5.2f}x"
          f"  (target <= 1.3x)  max rel. disagreement {agree:.1e}")
    if M.is_sparse:
        _, t_same, r_same, _, _ = time_pair(ours, lambda: baseline_eval_ema(M, M2, pi, TABULAR_SPLU), repeats)
        print(f"    same baseline with tabular's splu options {t_same * 1e3:8.1f} ms: wrapper overhead "
              f"{r_same:5.2f}x")
    return ratio


def compare_pi(label, M, repeats):
    import mdptoolbox.mdp

    if M.is_sparse:
        P_list = [sp.csr_matrix(M.P[a::M.A]) for a in range(M.A)]  # rows s*A + a for every s
    else:
        P_list = [np.ascontiguousarray(M.P[:, a, :]) for a in range(M.A)]
    R = np.asarray(M.R)

    def theirs():
        solver = mdptoolbox.mdp.PolicyIteration(P_list, R, M.gamma, eval_type=0)
        solver.run()
        return solver

    t_ours, t_theirs, ratio, res, solver = time_pair(lambda: policy_iteration(M), theirs, repeats)
    same_pi = np.mean(np.asarray(solver.policy) == res.pi.argmax(1))
    dV = np.abs(np.asarray(solver.V) - res.V).max()
    print(f"({label}) ours {t_ours * 1e3:8.1f} ms ({res.n_iter} it)  mdptoolbox {t_theirs * 1e3:8.1f} ms "
          f"({solver.iter} it)  speed-up {1 / ratio:6.1f}x (target >= 5x)  "
          f"same action {same_pi:.1%}  max |dV| {dV:.1e}")
    return 1 / ratio


def compare_objectives(N, repeats, rng):
    S, A = 64, 4
    M = random_dense(S, A, 0.95, rng)
    pi = rng.dirichlet(np.ones(A), size=S)
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    batch = O.sample_trajectories(M, pi, N // 100, 100, rng)  # N transitions with t and episode
    ratios = {}
    for name, f in O.SAMPLED_OBJECTIVES.items():
        def run(threshold):
            O.KERNEL_MIN_BATCH = threshold
            return f(logits, V, batch, M.gamma)

        t_nb, t_np, ratio, (v1, g1), (v2, g2) = time_pair(lambda: run(0), lambda: run(1 << 62), repeats)
        ratios[name] = 1 / ratio
        print(f"(d) {name:13s} N={len(batch):.0e}: numba {t_nb * 1e3:6.2f} ms  numpy {t_np * 1e3:6.2f} ms  "
              f"speed-up {1 / ratio:5.1f}x  |dvalue| {abs(v1 - v2):.1e} |dgrad| {np.abs(g1 - g2).max():.1e}")
    O.KERNEL_MIN_BATCH = 4096
    return ratios


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 7
    rng = np.random.default_rng(0)

    M = slippery_grid(256, 0.2, 0.99, rng)
    M2 = slippery_grid(256, 0.4, 0.99, rng)
    M2 = M2.replace(R=M.R)
    pi = rng.dirichlet(np.ones(M.A), size=M.S)
    compare_eval("a: sparse 256x256 grid, S=65536", M, M2, pi, reps)

    M = random_dense(2048, 4, 0.99, rng)
    M2 = M.replace(P=random_dense(2048, 4, 0.99, rng).P)
    pi = rng.dirichlet(np.ones(M.A), size=M.S)
    compare_eval("b: dense S=2048, A=4", M, M2, pi, max(3, reps // 2))

    compare_pi("c: sparse grid S=1024", slippery_grid(32, 0.2, 0.95, rng), max(3, reps // 2))
    compare_pi("c: sparse grid S=4096", slippery_grid(64, 0.2, 0.95, rng), 1)
    compare_pi("c: dense random S=1024", random_dense(1024, 4, 0.95, rng), max(3, reps // 2))

    compare_objectives(1_000_000, reps, rng)


if __name__ == "__main__":
    main()
