"""Helpers for the hidden tests of the course assignments.

Shipped inside each autograder zip (``autograder_files`` in the assignment config), never handed to students.
Hidden tests draw fresh random instances on every grading run (the seed is part of every failure message, so a
failure can be replayed with ``np.random.default_rng(seed)``) and compare the student's functions with the
``tabular`` core; :func:`check_independent` makes sure the student did not simply call that core.
"""

from __future__ import annotations

import inspect
import types

import numpy as np

from tabular.verify import random_mdp

__all__ = ["fresh_rng", "random_instance", "random_objective_instance", "check_independent",
           "assert_on_random_instances", "mbrl_loop_instance", "mbrl_loop_reference", "mbrl_loop_case",
           "residuals_case", "torch_objective_instance", "torch_ma_l1_reference", "torch_vps_instance", "torch_vps_reference"]


def fresh_rng() -> tuple[np.random.Generator, int]:
    """A generator seeded from OS entropy and its seed (quote the seed in assertion messages)."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    return np.random.default_rng(seed), seed


def random_instance(rng: np.random.Generator, same_rewards: bool = False, gamma: float | None = None):
    """A random pair of models ``(M, M2)`` on 2-7 states, 1-4 actions, and a random stochastic policy ``pi``.

    ``M2`` has Dirichlet(1) dynamics and, unless ``same_rewards``, uniform rewards in ``[-1, 1]``; ``gamma`` is
    drawn from ``[0, 0.97]`` unless given.
    """
    S, A = int(rng.integers(2, 8)), int(rng.integers(1, 5))
    g = float(rng.uniform(0.0, 0.97)) if gamma is None else float(gamma)
    M = random_mdp(rng, S, A, g)
    R2 = M.R if same_rewards else rng.uniform(-1, 1, size=(S, A))
    M2 = M.replace(P=rng.dirichlet(np.ones(S), size=(S, A)), R=R2)
    pi = rng.dirichlet(np.ones(A), size=S)
    return M, M2, pi


def random_objective_instance(rng: np.random.Generator, trajectories: bool = False):
    """``(M, batch, logits, V)``: a random MDP, transitions from it, random model logits and a random value.

    ``batch`` is ``tabular.sample_transitions`` (1-199 i.i.d. transitions) or, with ``trajectories``,
    ``tabular.sample_trajectories`` (1-7 episodes of up to 29 steps, with ``t`` and ``episode``).
    """
    from tabular import sample_trajectories, sample_transitions

    M, _, pi = random_instance(rng)
    if trajectories:
        batch = sample_trajectories(M, pi, int(rng.integers(1, 8)), int(rng.integers(1, 30)), rng)
    else:
        batch = sample_transitions(M, pi, int(rng.integers(1, 200)), rng)
    return M, batch, rng.normal(size=(M.S, M.A, M.S)), rng.normal(size=M.S)


def _tabular_names(f: types.FunctionType, allow: tuple[str, ...], seen: set) -> list[str]:
    """Names of ``tabular`` objects (not in ``allow``) that ``f`` or the notebook functions it calls use."""
    if id(f) in seen:
        return []
    seen.add(id(f))
    g, found, codes = f.__globals__, [], [f.__code__]
    names: set[str] = set()
    while codes:  # f's code and the code of any nested function or comprehension
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    for n in sorted(names):
        obj = g.get(n)
        if n.startswith("tabular") or (isinstance(obj, types.ModuleType) and obj.__name__.startswith("tabular")):
            mod = obj if isinstance(obj, types.ModuleType) else None
            attrs = [m for m in names if mod is not None and m not in allow
                     and not isinstance(getattr(mod, m, mod), types.ModuleType)]
            found += [f"{n}.{m}" for m in attrs] if mod is not None else [n]
        elif getattr(obj, "__module__", None) and str(obj.__module__).startswith("tabular") and n not in allow:
            found.append(n)
        elif inspect.isfunction(obj) and obj.__module__ == f.__module__:
            found += _tabular_names(obj, allow, seen)
    return found


def check_independent(*funcs, allow: tuple[str, ...] = ("TabularMDP",)) -> None:
    """Fail unless every function is the student's own work: it must not use ``tabular`` beyond ``allow``.

    Follows calls into other functions defined in the notebook. Raises ``AssertionError`` naming what was used.
    """
    for f in funcs:
        assert inspect.isfunction(f), f"expected a function; got {type(f).__name__} (did you run the cell?)"
        used = _tabular_names(f, tuple(allow), set())
        assert not used, (f"{f.__name__} uses the tabular package ({', '.join(sorted(set(used)))}); implement it "
                          f"with numpy (allowed from tabular: {', '.join(allow)})")


def assert_on_random_instances(func, case, n: int = 10, allow: tuple[str, ...] = ("TabularMDP",),
                               rtol: float = 1e-7, atol: float = 1e-9) -> None:
    """The hidden-test pattern: ``func`` is the student's own work, and agrees with the reference on fresh data.

    Args:
        func: the student's function (checked with :func:`check_independent` and ``allow``).
        case: ``case(rng) -> (got, want)``: draws one random instance, calls the student's code (``got``) and the
            reference (``want``). A tuple ``want`` is compared component by component (e.g. ``(value, grad)``).
        n: number of instances. rtol, atol: tolerances of ``numpy.testing.assert_allclose``.
    """
    check_independent(func, allow=allow)
    rng, seed = fresh_rng()
    for i in range(n):
        got, want = case(rng)
        pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
        for k, (g, w) in enumerate(pairs):
            np.testing.assert_allclose(np.asarray(g, dtype=float), w, rtol=rtol, atol=atol,
                                       err_msg=f"output {k} on random instance {i}; seed={seed}")


def mbrl_loop_instance(rng: np.random.Generator, gamma: float | None = None):
    """Assignment 4's loop inputs: ``(M, logits, pi, batches, lr, refresh_every)``, batches drawn from ``M``."""
    from tabular import sample_transitions

    M, _, pi = random_instance(rng, gamma=gamma)
    batches = []
    for _ in range(int(rng.integers(3, 12))):
        b = sample_transitions(M, pi, int(rng.integers(5, 60)), rng)
        batches.append((b.s, b.a, b.s2))
    return M, rng.normal(size=(M.S, M.A, M.S)), pi, batches, float(rng.uniform(0.05, 1.0)), int(rng.integers(1, 5))


def mbrl_loop_reference(M, logits, pi, batches, lr, refresh_every):
    """The loop of Assignment 4 with the ``tabular`` core: exact refresh, Eq. 10 step, gap after each step."""
    import tabular as tb
    from tabular.sampling import TransitionBatch

    gaps = []
    for k, (s, a, s2) in enumerate(batches):
        if k % refresh_every == 0:
            V = tb.policy_evaluation(M.replace(P=tb.model_probs(logits)), pi)
        logits = logits - lr * tb.ma_upper_l1_loss(logits, V, TransitionBatch(s, a, s2))[1]
        gaps.append(tb.performance(M, pi) - tb.performance(M.replace(P=tb.model_probs(logits)), pi))
    return logits, np.array(gaps)


def mbrl_loop_case(rng: np.random.Generator, func):
    """``(got, want)`` of Assignment 4's loop on one random instance (the in-kernel hidden-test pattern)."""
    args = mbrl_loop_instance(rng)
    return func(*args), mbrl_loop_reference(*args)


# ---- assignment 5: the torch objectives ----------------------------------------------------------------------
def torch_objective_instance(rng: np.random.Generator):
    """``(params, s, a, s2, None)``: random model/value parameters and a batch for Eq. 10."""
    S, A, H, B = int(rng.integers(2, 5)), int(rng.integers(1, 3)), int(rng.integers(3, 9)), int(rng.integers(5, 40))
    p = {"Wm": 0.3 * rng.normal(size=(S, S)), "Um": 0.3 * rng.normal(size=(A, S)), "w1": rng.normal(size=(S, H)),
         "b1": rng.normal(size=H), "w2": rng.normal(size=H), "b2": float(rng.normal())}
    return p, rng.normal(size=(B, S)), rng.normal(size=(B, A)), rng.normal(size=(B, S)), None


def _torch_parts(p):
    import torch

    t = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in p.items()}

    def V(x):
        return torch.tanh(x @ t["w1"] + t["b1"]) @ t["w2"] + t["b2"]

    return t, V


def torch_ma_l1_reference(p, s, a, s2):
    """``(loss, grad_Wm, grad_Um)`` of ``mean |V(s2) - V(s + s Wm + a Um)|`` by autograd (float64)."""
    import torch

    t, V = _torch_parts(p)
    Wm, Um = t["Wm"].requires_grad_(), t["Um"].requires_grad_()
    s, a, s2 = (torch.tensor(np.asarray(x, dtype=np.float64)) for x in (s, a, s2))
    loss = (V(s2) - V(s + s @ Wm + a @ Um)).abs().mean()
    gW, gU = torch.autograd.grad(loss, (Wm, Um))
    return float(loss.detach()), gW.numpy(), gU.numpy()


def torch_vps_instance(rng: np.random.Generator):
    p, _, _, _, _ = torch_objective_instance(rng)
    S, A = p["Wm"].shape[0], p["Um"].shape[0]
    B = int(rng.integers(4, 30))
    return p, rng.normal(size=(B, 3, S)), rng.normal(size=(B, 2, A))


def torch_vps_reference(p, s, a):
    """``(loss, grad_Wm)`` of Eq. 12 for two-step predictions of the linear model (autograd, float64)."""
    import torch

    t, V = _torch_parts(p)
    Wm = t["Wm"].requires_grad_()
    s, a = torch.tensor(np.asarray(s, dtype=np.float64)), torch.tensor(np.asarray(a, dtype=np.float64))
    p1 = s[:, 0] + s[:, 0] @ Wm + a[:, 0] @ t["Um"]
    p2 = p1 + p1 @ Wm + a[:, 1] @ t["Um"]
    loss = ((V(p2) - V(p1)) - (V(s[:, 2]) - V(s[:, 1]))).abs().mean()
    (g,) = torch.autograd.grad(loss, (Wm,))
    return float(loss.detach()), g.numpy()


def residuals_case(rng: np.random.Generator, small: bool = False):
    """Assignment 2 Q2's instance and reference: ``((logits, V, s, a, s2), (delta, jac))``, the Jacobian
    ``d (P_phi(s_i, a_i) . V) / d logits[s_i, a_i, x]`` by central differences of the reference model."""
    import tabular as tb

    S, A, N, eps = (2, 2, 4, 1e-6) if small else (4, 3, 12, 1e-6)
    logits, V = rng.normal(size=(S, A, S)), rng.normal(size=S)
    s, a, s2 = rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N)
    jac = np.empty((N, S))
    for i, x in np.ndindex(N, S):
        e = np.zeros_like(logits)
        e[s[i], a[i], x] = eps
        jac[i, x] = (tb.model_probs(logits + e)[s[i], a[i]] - tb.model_probs(logits - e)[s[i], a[i]]) @ V / (2 * eps)
    return (logits, V, s, a, s2), (V[s2] - tb.model_probs(logits)[s, a] @ V, jac)
