"""Speed of the gridworld's hot loops (Figure 1, 16x16) against their numpy references, and of whole runs.

Run: ``python benchmarks/gridworld_bench.py [--quick]``. Ratios are medians of per-pair ratios of runs made
alternately in this process (both sides see the same load); absolute times are for orientation only.

(a) B = 32 model rollouts of T = 52 steps (twice the shortest path) in a 16x16 model (S = 196, A = 4), the shape of every A2C update:
    the numba kernel on a model sampler built once per model, vs the first release's path (a fresh
    ``RowSampler`` of the (S*A, S) model per rollout batch, then one numpy ``searchsorted`` per step).
(b) the bootstrapped n-step returns of those rollouts: numba vs the numpy loop over ``t``.
(c) one Adam step on the (S, A, S) logits: the fused numba kernel vs numpy's seven array passes.
(d) one whole 16x16 MA-L1 run at the default budget (100 iterations x 60 real steps), wall time.
All pairs give identical results (``tests/tabular/test_kernels.py``; ``test_reproduce.py`` reruns logged runs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def time_pair(f, g, repeats: int):
    """Median times of ``f`` and ``g`` run alternately (one warm-up each) and the median ratio ``f / g``."""
    f(), g()
    tf, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        t1 = time.perf_counter()
        g()
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tg.append(t2 - t1)
    return statistics.median(tf), statistics.median(tg), statistics.median(a / b for a, b in zip(tf, tg))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no whole run")
    args = parser.parse_args(argv)
    repeats = 20 if args.quick else 200

    from tabular import _kernels as K
    from gridworld import GridLayout, make_twin
    from tabular.sampling import RowSampler

    rng = np.random.default_rng(0)
    layout = GridLayout(16)
    twin = make_twin(layout, 0.95)
    S, A, B, T = twin.S, twin.A, 32, 2 * layout.manhattan
    logits = rng.standard_normal((S, A, S))
    P = np.exp(logits - logits.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    pi = rng.dirichlet(np.ones(A), size=S)
    reward, term = layout.reward_table, twin.terminal
    start = np.zeros(B, dtype=np.int64)
    u = rng.random((T, 2, B))
    model = RowSampler(P.reshape(S * A, S))

    def ours():
        return K.rollout_numba(model.table, RowSampler(pi).table, A, start, reward, term, u)

    def first_release():  # sampler of the whole model rebuilt per rollout batch, numpy per step
        m = RowSampler(P.reshape(S * A, S))
        return K.rollout_numpy(m.table, RowSampler(pi).table, A, start, reward, term, u)

    print(f"(a) rollouts B={B} T={T} S={S}:   kernel %.3f ms, first release %.3f ms, ratio %.3f" %
          tuple(v * f for v, f in zip(time_pair(ours, first_release, repeats), (1e3, 1e3, 1))))
    s, a, r, alive, last, last_alive = ours()
    V = rng.normal(size=S)
    t = time_pair(lambda: K.returns_numba(r, alive, last, last_alive, V, 0.95),
                  lambda: K.returns_numpy(r, alive, last, last_alive, V, 0.95), repeats)
    print(f"(b) n-step returns:                kernel %.3f ms, numpy %.3f ms, ratio %.3f" % (t[0] * 1e3, t[1] * 1e3, t[2]))
    x, g = logits.ravel().copy(), rng.normal(size=logits.size)
    m1, v1, m2, v2 = (np.zeros_like(x) for _ in range(4))
    c2 = np.sqrt(1 - 0.999)
    t = time_pair(lambda: K.adam_step_numba(x, g, m1, v1, 0.9, 0.999, 1e-8, c2, 0.1),
                  lambda: K.adam_step_numpy(x.copy(), g, m2, v2, 0.9, 0.999, 1e-8, c2, 0.1), repeats)
    print(f"(c) Adam step on {x.size} logits:  kernel %.3f ms, numpy %.3f ms, ratio %.3f" % (t[0] * 1e3, t[1] * 1e3, t[2]))
    if not args.quick:
        from gridworld import RunConfig, default_budget, train

        t0 = time.perf_counter()
        for _ in train(RunConfig(size=16, method="ma_l1", seed=0, **default_budget(16))):
            pass
        print(f"(d) one 16x16 MA-L1 run (6000 real steps): {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
