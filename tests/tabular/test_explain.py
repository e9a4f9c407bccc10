"""tabular.explain: Lemma 1 state by state (shares add up to the gap), the perturbed second model, and
``modeladv explain`` on toy-text environments, the gridworld and a learned gridworld model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import mdp_pair_and_policy
from tabular import TabularMDP
from tabular.explain import explain, perturb


def _J(M: TabularMDP, pi) -> float:
    """J = p0 (I - gamma P_pi)^{-1} r_pi by a dense solve (independent of tabular.solve)."""
    P = M.dense_P()
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = (pi * M.R).sum(axis=1)
    live = ~M.terminal
    V = np.zeros(M.S)
    V[live] = np.linalg.solve(np.eye(live.sum()) - M.gamma * P_pi[np.ix_(live, live)], r_pi[live])
    return float(M.p0 @ V)


@settings(deadline=None, max_examples=60)
@given(mdp_pair_and_policy(max_states=12, max_actions=3))
def test_per_state_shares_sum_to_the_performance_gap(case):
    M, M2, pi = case
    ex = explain(M, M2, pi, top=5)
    gap = _J(M, pi) - _J(M2, pi)
    scale = 1.0 + abs(gap) + float(np.abs(ex.total).sum())
    assert ex.total.sum() == pytest.approx(gap, abs=1e-9 * scale)
    assert ex.gap == pytest.approx(gap, abs=1e-9 * scale)
    np.testing.assert_allclose(ex.flow.sum(axis=1), ex.ma, atol=1e-9 * scale)
    np.testing.assert_allclose(ex.ma + ex.reward, ex.total)
    assert abs(ex.lemma.residual) <= 1e-9 * scale
    # the listed transitions carry probability and come largest |share| first
    flows = [abs(t.flow) for t in ex.top]
    assert flows == sorted(flows, reverse=True)
    assert all(ex.P_pi[t.s, t.s2] > 0 and t.flow == pytest.approx(t.w * t.prob * t.advantage) for t in ex.top)
    # transitions the true dynamics never take contribute nothing
    assert not np.any(ex.flow[ex.P_pi == 0])


def test_a_two_state_example_by_hand():
    # one action; M: 0 -> 1 surely, 1 absorbing (terminal); M2: 0 stays with prob 0.5. r(0) = 1, gamma 0.5.
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    P2 = np.array([[[0.5, 0.5]], [[0.0, 1.0]]])
    R = np.array([[1.0], [0.0]])
    M = TabularMDP(P, R, [1.0, 0.0], 0.5, terminal=[1])
    M2 = TabularMDP(P2, R, [1.0, 0.0], 0.5, terminal=[1])
    pi = np.ones((2, 1))
    ex = explain(M, M2, pi)
    # V_M2(0) = 1 / (1 - 0.5 * 0.5) = 4/3, V(1) = 0; J_M = 1, gap = 1 - 4/3 = -1/3
    assert ex.gap == pytest.approx(-1 / 3)
    # A_M2(0, 1) = gamma (V(1) - E_{P2(0)} V) = 0.5 (0 - 2/3) = -1/3; w(0) = 1; the only share is 0 -> 1
    assert ex.A[0, 1] == pytest.approx(-1 / 3)
    assert ex.flow[0, 1] == pytest.approx(-1 / 3) and ex.reward[0] == 0.0
    assert ex.top[0].s == 0 and ex.top[0].s2 == 1


def test_perturb_bounds_the_row_error_and_keeps_terminals():
    M = TabularMDP(np.array([[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]]), np.array([[1.0], [2.0], [0.0]]),
                   [1.0, 0.0, 0.0], 0.9, terminal=[2])
    rng = np.random.default_rng(0)
    assert np.array_equal(perturb(M, 0.0, rng).dense_P(), M.dense_P())
    M2 = perturb(M, 0.3, rng)
    err = np.abs(M2.dense_P() - M.dense_P()).sum(axis=2)
    assert (err <= 0.6 + 1e-12).all() and err[:2].max() > 0
    assert np.array_equal(M2.dense_P()[2], M.dense_P()[2])
    np.testing.assert_array_equal(M2.R, M.R)  # no reward table: the same expected rewards
    r = np.zeros((3, 1, 3))
    r[:, :, 2] = 5.0  # 5 for reaching state 2
    M3 = perturb(M, 0.3, np.random.default_rng(1), reward=r)
    np.testing.assert_allclose(M3.R[:2, 0], 5.0 * M3.dense_P()[:2, 0, 2])
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="noise"):
            perturb(M, bad, rng)
    with pytest.raises(ValueError, match="shape"):
        perturb(M, 0.1, rng, reward=np.zeros((3, 3)))


def test_frozenlake_transition_rewards_are_one_into_the_goal_only():
    import gymnasium as gym

    from tabular import from_gymnasium
    from tabular.mdp import gymnasium_transition_rewards

    env = gym.make("FrozenLake-v1")
    M, r = from_gymnasium(env, 0.9), gymnasium_transition_rewards(env)
    assert set(np.unique(r)) == {0.0, 1.0}
    assert np.all(np.flatnonzero(r.max(axis=(0, 1))) == [15])  # only transitions into the goal pay
    np.testing.assert_allclose((M.dense_P() * r).sum(axis=2), M.R, atol=1e-15)


def test_explain_refuses_bad_input():
    M = TabularMDP(np.ones((2, 1, 2)) / 2, np.zeros((2, 1)), [1.0, 0.0], 0.9)
    M3 = TabularMDP(np.ones((3, 1, 3)) / 3, np.zeros((3, 1)), [1.0, 0.0, 0.0], 0.9)
    with pytest.raises(ValueError):
        explain(M, M3, np.ones((2, 1)))
    with pytest.raises(ValueError, match="top"):
        explain(M, M, np.ones((2, 1)), top=-1)


# ---- the command --------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["frozenlake", "cliffwalking", "taxi", "gridworld"])
def test_modeladv_explain_writes_a_figure_and_prints_an_exact_lemma(env, tmp_path, capsys):
    from modeladv import cli

    fig = tmp_path / f"{env}.png"
    assert cli.main(["explain", "--env", env, "--noise", "0.2", "--figure", str(fig)]) == 0
    out = capsys.readouterr().out
    assert fig.stat().st_size > 10_000
    residual = float(out.split("(residual ")[1].split(";")[0])
    assert abs(residual) < 1e-12
    assert out.count(" -> ") == 10  # the leading transitions


def test_modeladv_explain_on_a_learned_gridworld_model(tmp_path, capsys):
    from modeladv import cli

    assert cli.main(["gridworld", "--size", "5", "--methods", "ma_l1", "--seeds", "1", "--iterations", "3",
                     "--root", str(tmp_path), "--no-plot", "--no-progress"]) == 0
    run = next((tmp_path / "gridworld").glob("*/seed0"))
    assert cli.main(["explain", "--env", "gridworld", "--run", str(run), "--policy", "run",
                     "--figure", str(tmp_path / "l.png")]) == 0
    out = capsys.readouterr().out
    assert "learned model (ma_l1, seed 0" in out and abs(float(out.split("(residual ")[1].split(";")[0])) < 1e-12
    # the learned model is the run's: its one-step model error is what the run logged last
    from modeladv.explain import load_problem
    from lab.rundir import read_metrics

    p = load_problem("gridworld", policy="run", run=str(run))
    ev_true_J = _J(p.M, p.pi)
    m = read_metrics(run)
    assert ev_true_J == pytest.approx(m["J_true"][-1], rel=1e-6)
    assert _J(p.M2, p.pi) == pytest.approx(m["J_model"][-1], rel=1e-6)


@pytest.mark.parametrize("args, needle", [
    (["--env", "nope"], "env"),
    (["--noise", "2"], "noise"),
    (["--policy", "run"], "--run"),
    (["--env", "frozenlake", "--run", "."], "gridworld"),
    (["--env", "gridworld", "--run", "/nonexistent"], "not a run directory"),
    (["--policy", "/nonexistent.npy"], "--policy"),
])
def test_modeladv_explain_bad_input_is_one_line_and_exit_2(args, needle, tmp_path, capsys):
    from modeladv import cli

    assert cli.main(["explain", *args, "--figure", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.strip().count("\n") == 0
    assert not (tmp_path / "f.png").exists()
