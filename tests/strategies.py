"""Hypothesis strategies for random finite MDPs, policies and second models (tested in test_strategies.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from tabular import TabularMDP

GAMMAS = st.one_of(st.just(0.0), st.floats(0.0, 0.99, allow_subnormal=False), st.sampled_from([0.5, 0.9, 0.99]))


def random_stochastic(rng: np.random.Generator, shape: tuple, density: float) -> np.ndarray:
    """Row-stochastic array over the last axis; with density < 1 most entries are exactly zero.

    Every row keeps at least one nonzero (a random column), so rows always sum to 1.
    """
    x = rng.random(shape)
    if density < 1:
        mask = rng.random(shape) < density
        keep = rng.integers(0, shape[-1], size=shape[:-1])
        np.put_along_axis(mask, keep[..., None], True, axis=-1)
        x = np.where(mask, x + 1e-3, 0.0)
    else:
        x = x + 1e-3
    return x / x.sum(axis=-1, keepdims=True)


@st.composite
def mdps(draw, max_states: int = 30, max_actions: int = 5, sparse=None, gamma=None, reward_3d=None):
    """A random TabularMDP: S in 1..max_states, A in 1..max_actions, dense or sparse P, gamma incl. 0."""
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, max_actions))
    seed = draw(st.integers(0, 2**32 - 1))
    is_sparse = draw(st.booleans()) if sparse is None else sparse
    density = draw(st.sampled_from([1.0, 0.3, 0.1])) if is_sparse else draw(st.sampled_from([1.0, 0.5]))
    g = draw(GAMMAS) if gamma is None else gamma
    r3 = draw(st.booleans()) if reward_3d is None else reward_3d
    rng = np.random.default_rng(seed)
    P = random_stochastic(rng, (S, A, S), density)
    R = rng.uniform(-1, 1, size=(S, A, S) if r3 else (S, A))
    p0 = random_stochastic(rng, (S,), 0.5 if S > 3 else 1.0)
    if is_sparse:
        P = sp.csr_matrix(P.reshape(S * A, S))
    return TabularMDP(P, R, p0, g)


@st.composite
def policies(draw, M: TabularMDP, deterministic=None):
    """A random (S, A) stochastic or deterministic policy for M."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    det = draw(st.booleans()) if deterministic is None else deterministic
    if det:
        return np.eye(M.A)[rng.integers(0, M.A, size=M.S)]
    return random_stochastic(rng, (M.S, M.A), 1.0)


@st.composite
def second_models(draw, M: TabularMDP, same_dynamics=None, same_rewards=None):
    """Another MDP on M's state/action space and p0 and gamma: new P and/or R (kept sparse if M is)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    keep_P = draw(st.booleans()) if same_dynamics is None else same_dynamics
    keep_R = draw(st.booleans()) if same_rewards is None else same_rewards
    changes = {}
    if not keep_P:
        P2 = random_stochastic(rng, (M.S, M.A, M.S), 1.0)
        changes["P"] = sp.csr_matrix(P2.reshape(M.S * M.A, M.S)) if M.is_sparse else P2
    if not keep_R:
        changes["R"] = rng.uniform(-1, 1, size=(M.S, M.A))
    return M.replace(**changes)


@st.composite
def mdp_and_policy(draw, **kw):
    M = draw(mdps(**kw))
    return M, draw(policies(M))


@st.composite
def mdp_pair_and_policy(draw, **kw):
    M = draw(mdps(**kw))
    return M, draw(second_models(M)), draw(policies(M))
