"""Model-advantage, the simulation lemma and the deviation error (Modhe et al., 2021, Sec. 2 and App. A).

Conventions:

* Values are *unnormalized* (``V = (I - gamma P_pi)^{-1} r_pi``) unless a function takes
  ``normalized=True``, which multiplies every value (and hence ``J`` and ``A``) by ``(1 - gamma)`` as in the
  paper's Appendix A.1. ``d`` is always the normalized discounted state distribution of Eq. 1 (sums to 1).
* ``1/(1-gamma) E_{s~d_M}[f(s)]`` is evaluated as ``sum_s w_M(s) f(s)`` with the discounted visit counts
  ``w_M = p0^T (I - gamma P^pi_M)^{-1}``. For ``gamma < 1`` this is the same number; for an episodic MDP
  with ``gamma = 1`` it is the expected sum over the episode, so the unnormalized identities still hold.
* Two MDPs compared here must share ``S``, ``A``, ``gamma``, ``p0`` and the terminal set (``ValueError``
  otherwise).

Errata found by :func:`simulation_lemma` and :func:`deviation_error` (and tested in
``tests/test_advantage.py``):

* Eq. 3 as printed (reward term without ``1/(1-gamma)``) holds only for ``(1-gamma)``-normalized values.
  With unnormalized values its residual ``(J_M - J_M2) - printed rhs`` is ``+gamma/(1-gamma) E_{d_M}[R^pi_M - R^pi_M2]``.
* Eq. 5 as printed (``V_M`` inside both Bellman operators, expectation under ``d_M``) holds when the two
  models share their policy dynamics ``P^pi`` (e.g. they differ only in rewards) or ``gamma = 0``, but not
  in general, in either normalization (see :func:`eq5_counterexample`). The identity that does hold is the
  appendix proof's ``E_{d_M}[T_M V_M2 - T_M2 V_M2]``, or its dual ``E_{d_M2}[T_M V_M - T_M2 V_M]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_mdp as _check_mdp, check_pair as _check_pair, check_values
from .examples import eq5_counterexample
from .mdp import TabularMDP, policy_reward, transition_matrix, validate_policy
from .solve import evaluate, policy_evaluation

__all__ = [
    "bellman_operator",
    "model_advantage",
    "mean_model_advantage",
    "expected_model_advantage",
    "SimulationLemma",
    "simulation_lemma",
    "DeviationError",
    "deviation_error",
    "eq5_counterexample",
    "ValueDifferenceBound",
    "value_difference_bound",
]


# ---- helpers --------------------------------------------------------------------------------------
def _expect_next(M: TabularMDP, pi: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``(P^pi_M V)(s) = E_{s' ~ P^pi_M(s)} V(s')``, shape ``(S,)``; never forms a dense (S, S) for sparse M."""
    return np.asarray(transition_matrix(M, pi) @ V, dtype=np.float64).ravel()


def bellman_operator(M: TabularMDP, pi, V) -> np.ndarray:
    """Bellman evaluation operator of model ``M`` (Eq. 4), shape ``(S,)``.

    ``(T^pi_M V)(s) = E_{a~pi(s)} [R_M(s, a) + gamma E_{s'~P_M(s, a)} V(s')] = r_pi(s) + gamma (P^pi_M V)(s)``.

    Unnormalized convention (the normalized operator is ``(1-gamma) r_pi + gamma P^pi V``).

    Args:
        M: the model. pi: policy ``(S, A)``. V: any values ``(S,)``.
    """
    _check_mdp(M)
    pi = validate_policy(M, pi)
    V = check_values(V, M.S)
    return policy_reward(M, pi) + M.gamma * _expect_next(M, pi, V)


# ---- model advantage ------------------------------------------------------------------------------
def model_advantage(M: TabularMDP, pi, V=None) -> np.ndarray:
    """Model-advantage ``A^pi_M(s, s')`` (Eq. 2), shape ``(S, S)``.

    ``A[s, s'] = gamma (V(s') - E_{s''~P^pi_M(s)} V(s''))`` with ``V = V^pi_M`` (unnormalized) by default.

    Args:
        M: the model whose dynamics define the baseline ``E_{P^pi_M(s)} V``.
        pi: policy ``(S, A)``.
        V: optional fixed values ``(S,)`` used instead of ``V^pi_M`` (the paper's practice of holding a
            value estimate fixed while the model changes, Eq. 8). Pass ``(1-gamma) V^pi_M`` for the
            normalized convention; ``A`` is linear in ``V``.

    Returns:
        ``A`` as a dense ``(S, S)`` array, also for sparse ``M``: ``A[s, s']`` is nonzero for nearly every
        pair, so it is ``O(S^2)`` memory by nature. For large sparse MDPs use :func:`mean_model_advantage`
        or :func:`expected_model_advantage`, which never form it.

    Row property: ``sum_s' P^pi_M(s, s') A[s, s'] = 0`` (the advantage under its own dynamics has zero mean).

    Examples:
        Two states, one action, each step lands on either state with probability 1/2, reward 1 in state 0,
        gamma 1/2: ``V = (1.5, 0.5)``, ``E V = 1``, so ``A[s, s'] = (1/2)(V(s') - 1)``.

        >>> import numpy as np
        >>> from tabular import TabularMDP, model_advantage
        >>> M = TabularMDP(np.full((2, 1, 2), 0.5), np.array([[1.0], [0.0]]), p0=np.array([1.0, 0.0]), gamma=0.5)
        >>> model_advantage(M, np.ones((2, 1)))
        array([[ 0.25, -0.25],
               [ 0.25, -0.25]])
    """
    _check_mdp(M)
    pi = validate_policy(M, pi)
    V = policy_evaluation(M, pi) if V is None else check_values(V, M.S)
    return M.gamma * (V[None, :] - _expect_next(M, pi, V)[:, None])


def mean_model_advantage(M: TabularMDP, M2: TabularMDP, pi, V=None) -> np.ndarray:
    """Per-state expected model-advantage of ``M2`` under the dynamics of ``M``, shape ``(S,)``.

    ``a(s) = E_{s'~P^pi_M(s)} A^pi_M2(s, s') = gamma [(P^pi_M V) - (P^pi_M2 V)](s)`` with ``V = V^pi_M2``
    (unnormalized) unless ``V`` is given. Costs two sparse mat-vecs; never forms ``(S, S)``.
    """
    _check_pair(M, M2)
    pi = validate_policy(M, pi)
    V = policy_evaluation(M2, pi) if V is None else check_values(V, M.S)
    return M.gamma * (_expect_next(M, pi, V) - _expect_next(M2, pi, V))


def expected_model_advantage(M: TabularMDP, M2: TabularMDP, pi, V=None) -> float:
    """Expected model-advantage ``E_{s~d_M} E_{s'~P^pi_M(s)} A^pi_M2(s, s')`` (the term of Eq. 3).

    ``d_M`` is the normalized discounted state distribution of ``pi`` in ``M`` (Eq. 1); ``A_M2`` uses the
    unnormalized ``V^pi_M2`` unless ``V`` is given. Does not form the ``(S, S)`` matrix (see
    :func:`mean_model_advantage`). ``expected_model_advantage(M, M, pi) = 0``.
    """
    _check_pair(M, M2)
    pi = validate_policy(M, pi)
    return float(evaluate(M, pi).d @ mean_model_advantage(M, M2, pi, V))


# ---- Lemma 1 ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulationLemma:
    """Both sides of the simulation lemma (Lemma 1, Eq. 3) for one pair of models and a policy.

    Attributes:
        lhs: ``J_M(pi) - J_M2(pi)`` (times ``1-gamma`` when ``normalized``).
        model_advantage_term: ``1/(1-gamma) E_{d_M} E_{P^pi_M} [A_M2]`` (with ``A`` in the chosen convention).
        reward_term: the reward difference term that makes the lemma exact: ``1/(1-gamma) E_{d_M}[dR]``
            unnormalized, ``E_{d_M}[dR]`` normalized, ``dR = R^pi_M - R^pi_M2``.
        rhs: ``model_advantage_term + reward_term``. residual: ``lhs - rhs`` (round-off).
        printed_rhs: Eq. 3 exactly as printed: ``model_advantage_term + E_{d_M}[dR]``; NaN at gamma = 1.
        printed_residual: ``lhs - printed_rhs``; zero for normalized values, otherwise
            ``gamma/(1-gamma) E_{d_M}[dR]``.
        normalized: which convention was used. gamma: the shared discount.
    """

    lhs: float
    model_advantage_term: float
    reward_term: float
    rhs: float
    residual: float
    printed_rhs: float
    printed_residual: float
    normalized: bool
    gamma: float


def simulation_lemma(M: TabularMDP, M2: TabularMDP, pi, normalized: bool = False) -> SimulationLemma:
    """Evaluate Lemma 1 (Eq. 3; proof in App. A.1) in either value convention.

    Unnormalized values (the main text's ``V``)::

        J_M - J_M2 = 1/(1-gamma) E_{d_M} E_{P^pi_M}[A_M2] + 1/(1-gamma) E_{d_M}[R^pi_M - R^pi_M2]

    ``normalized=True`` multiplies all values, hence ``J`` and ``A``, by ``(1 - gamma)`` (App. A.1); then::

        J_M - J_M2 = 1/(1-gamma) E_{d_M} E_{P^pi_M}[A_M2] + E_{d_M}[R^pi_M - R^pi_M2]

    which is Eq. 3 as printed. Erratum: printed Eq. 3 holds *only* for normalized values; with unnormalized
    values it is off by ``gamma/(1-gamma) E_{d_M}[dR]`` (zero iff ``gamma = 0`` or the expected reward
    difference vanishes). Both conventions are checked numerically in ``tests/test_advantage.py``.

    With ``gamma = 1`` (episodic; ``1/(1-gamma) E_d`` read as the expected sum over the episode) the
    unnormalized form holds; the normalized form and printed Eq. 3 are undefined.

    Args:
        M, M2: models on the same ``(S, A, gamma, p0, terminals)``. pi: policy ``(S, A)``.
        normalized: use ``(1-gamma)``-normalized values.

    Raises:
        ValueError: mismatched models, bad policy, ``normalized=True`` with ``gamma = 1``, or (gamma = 1)
            a policy that does not terminate.

    Examples:
        Same dynamics, rewards ``(1, 0)`` against ``(0, 0)``, gamma 1/2: the whole gap ``J_M - J_M2 = 1.5`` is
        the reward term; the printed form misses ``gamma/(1-gamma) E_{d_M}[dR] = 1 * 0.75``.

        >>> import numpy as np
        >>> from tabular import TabularMDP, simulation_lemma
        >>> P, p0 = np.full((2, 1, 2), 0.5), np.array([1.0, 0.0])
        >>> M = TabularMDP(P, np.array([[1.0], [0.0]]), p0, gamma=0.5)
        >>> M2 = TabularMDP(P, np.zeros((2, 1)), p0, gamma=0.5)
        >>> L = simulation_lemma(M, M2, np.ones((2, 1)))
        >>> print(L.lhs, L.model_advantage_term, L.reward_term, L.printed_residual)
        1.5 0.0 1.5 0.75
    """
    _check_pair(M, M2)
    pi = validate_policy(M, pi)
    g = M.gamma
    if normalized and g == 1:
        raise ValueError("normalized values (1 - gamma) V are identically 0 at gamma = 1; use normalized=False")
    scale = (1.0 - g) if normalized else 1.0
    ev, ev2 = evaluate(M, pi), evaluate(M2, pi)
    w = ev.visits  # sum_s w(s) f(s) = 1/(1-gamma) E_{d_M}[f]
    dR = policy_reward(M, pi) - policy_reward(M2, pi)
    adv = mean_model_advantage(M, M2, pi, V=scale * ev2.V)  # E_{P^pi_M(s)} A_M2(s, .) in the chosen convention
    lhs = scale * (ev.J - ev2.J)
    ma_term = float(w @ adv)
    reward_term = float(w @ (scale * dR))  # the normalized Bellman equation carries (1-gamma) R
    rhs = ma_term + reward_term
    printed_rhs = ma_term + float(ev.d @ dR) if g < 1 else float("nan")
    return SimulationLemma(lhs=lhs, model_advantage_term=ma_term, reward_term=reward_term, rhs=rhs,
                           residual=lhs - rhs, printed_rhs=printed_rhs, printed_residual=lhs - printed_rhs,
                           normalized=bool(normalized), gamma=g)


# ---- Corollary 2 ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviationError:
    """The forms of Corollary 2 (Eq. 5 / Eq. 13), unnormalized values.

    Attributes:
        lhs: ``J_M(pi) - J_M2(pi)``.
        proof_form: ``1/(1-gamma) E_{d_M}[T_M V_M2 - T_M2 V_M2]`` (what App. A.2 proves; exact).
        dual_form: ``1/(1-gamma) E_{d_M2}[T_M V_M - T_M2 V_M]`` (the same proof with the roles swapped; exact).
        printed_form: ``1/(1-gamma) E_{d_M}[T_M V_M - T_M2 V_M]`` (Eq. 5 as printed; not exact in general).
        proof_residual, dual_residual, printed_residual: ``lhs`` minus each form.
    """

    lhs: float
    proof_form: float
    dual_form: float
    printed_form: float
    proof_residual: float
    dual_residual: float
    printed_residual: float


def deviation_error(M: TabularMDP, M2: TabularMDP, pi) -> DeviationError:
    """Evaluate Corollary 2 (Eq. 5; App. A.2, Eq. 13) with the Bellman operators of Eq. 4.

    The appendix proof establishes ``J_M - J_M2 = 1/(1-gamma) E_{d_M}[T_M V_M2 - T_M2 V_M2]`` and, swapping
    the roles of the models, ``J_M - J_M2 = 1/(1-gamma) E_{d_M2}[T_M V_M - T_M2 V_M]``. Eq. 5 as printed
    pairs ``d_M`` with ``V_M``; it holds when ``P^pi_M = P^pi_M2`` (e.g. the models differ only in rewards,
    then every form equals ``1/(1-gamma) E_d[dR]``) or ``gamma = 0``, and fails in general (its residual is
    second order in the model difference); see :func:`eq5_counterexample`. All forms scale by ``(1-gamma)``
    together, so normalization does not rescue the printed form. With ``gamma = 1`` (episodic)
    ``1/(1-gamma) E_d`` is the expected sum over the episode.

    Raises:
        ValueError: mismatched models, bad policy, or (gamma = 1) a policy that does not terminate.

    Examples:
        The hand-checked counterexample of :func:`eq5_counterexample`: both proved forms give ``J_M - J_M2 = 1``,
        printed Eq. 5 gives 1/2.

        >>> from tabular import deviation_error, eq5_counterexample
        >>> D = deviation_error(*eq5_counterexample())
        >>> print(D.lhs, D.proof_form, D.dual_form, D.printed_form)
        1.0 1.0 1.0 0.5
    """
    _check_pair(M, M2)
    pi = validate_policy(M, pi)
    ev, ev2 = evaluate(M, pi), evaluate(M2, pi)
    w, w2 = ev.visits, ev2.visits
    lhs = ev.J - ev2.J

    def deviation(V):  # T_M V - T_M2 V
        return bellman_operator(M, pi, V) - bellman_operator(M2, pi, V)

    dev_V2, dev_V = deviation(ev2.V), deviation(ev.V)
    proof, dual, printed = float(w @ dev_V2), float(w2 @ dev_V), float(w @ dev_V)
    return DeviationError(lhs=lhs, proof_form=proof, dual_form=dual, printed_form=printed,
                          proof_residual=lhs - proof, dual_residual=lhs - dual, printed_residual=lhs - printed)


# ---- Appendix A, Eq. 15/16 --------------------------------------------------------------------------
@dataclass(frozen=True)
class ValueDifferenceBound:
    """Bounds on ``max_s |V^pi_M(s) - V^pi_M2(s)|`` (App. A, Eq. 14-16), unnormalized values.

    Attributes:
        actual: ``max_s |V_M(s) - V_M2(s)|``.
        deviation: ``1/(1-gamma) ||T_M V_M2 - T_M2 V_M2||_inf`` (first line of Eq. 15; tightest).
        span: ``1/(1-gamma) [eps_R + gamma span(V_M2)/2 eps_P]`` (rows of ``P_M - P_M2`` sum to 0, so any
            constant can be subtracted from ``V_M2``; ``span = max - min``). Never above ``eq15``.
        eq15: ``1/(1-gamma) [eps_R + gamma ||V_M2||_inf eps_P]`` (Eq. 15).
        eq16: ``1/(1-gamma) [eps_R + gamma eps_P R_max / (1-gamma)]`` (Eq. 16) with ``R_max = max |R_M2|``.
        eps_R: ``||R^pi_M - R^pi_M2||_inf``. eps_P: ``max_{s,a} ||P_M(.|s,a) - P_M2(.|s,a)||_1``.
        R_max: ``max_{s,a} |R_M2(s, a)|``.
    """

    actual: float
    deviation: float
    span: float
    eq15: float
    eq16: float
    eps_R: float
    eps_P: float
    R_max: float


def value_difference_bound(M: TabularMDP, M2: TabularMDP, pi) -> ValueDifferenceBound:
    """Evaluate the value-difference bounds of Appendix A (Eq. 15 and Eq. 16) and the actual difference.

    For every start state ``s0``::

        |V_M(s0) - V_M2(s0)| <= 1/(1-gamma) ||T_M V_M2 - T_M2 V_M2||_inf
                             <= 1/(1-gamma) [eps_R + gamma span(V_M2)/2 eps_P]
                             <= 1/(1-gamma) [eps_R + gamma ||V_M2||_inf eps_P]          (Eq. 15)
                             <= 1/(1-gamma) [eps_R + gamma eps_P R_max / (1-gamma)]    (Eq. 16)

    Eq. 16 uses ``||V_M2||_inf <= R_max/(1-gamma)``, which the paper states for rewards in ``[0, R_max]``;
    here ``R_max = max |R_M2|`` so it also holds for signed rewards (``max R`` alone does not: with all
    rewards negative it can be 0 or negative). Unnormalized values.

    Raises:
        ValueError: mismatched models, bad policy, or ``gamma = 1`` (the factor ``1/(1-gamma)`` is infinite).
    """
    _check_pair(M, M2)
    pi = validate_policy(M, pi)
    g = M.gamma
    if g == 1:
        raise ValueError("the bounds of Eq. 15/16 carry 1/(1 - gamma) and are infinite at gamma = 1")
    V, V2 = policy_evaluation(M, pi), policy_evaluation(M2, pi)
    dev = bellman_operator(M, pi, V2) - bellman_operator(M2, pi, V2)
    eps_R = float(np.max(np.abs(policy_reward(M, pi) - policy_reward(M2, pi))))
    diff = M.P_flat - M2.P_flat
    eps_P = float(np.max(np.asarray(abs(diff).sum(axis=1))))
    R_max = float(np.max(np.abs(M2.R)))
    c = 1.0 / (1.0 - g)
    return ValueDifferenceBound(
        actual=float(np.max(np.abs(V - V2))),
        deviation=c * float(np.max(np.abs(dev))),
        span=c * (eps_R + g * float(np.ptp(V2)) / 2 * eps_P),
        eq15=c * (eps_R + g * float(np.max(np.abs(V2))) * eps_P),
        eq16=c * (eps_R + g * eps_P * R_max * c),
        eps_R=eps_R, eps_P=eps_P, R_max=R_max,
    )
