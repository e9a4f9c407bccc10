"""The Sec. 4.1 gridworld: the Gymnasium environment against its exact TabularMDP twins (built from the same
dynamics and reward functions), the reward scale, and the registered ids."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tabular import performance, value_iteration
from gridworld import ENV_IDS, GridLayout, ModelAdvGridEnv, grid_reward, grid_step, make_twin, render_layout
from gridworld.mbrl import evaluate_return, exact_return


def _next(M, s, a):
    """The unique successor of (s, a) in a deterministic twin (dense or sparse P)."""
    row = M.P_flat[s * M.A + a]
    row = row.toarray().ravel() if hasattr(row, "toarray") else np.asarray(row).ravel()
    assert np.isclose(row.max(), 1.0)
    return int(np.argmax(row))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_every_registered_id(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=0)
    img = env.render()
    size = env.unwrapped.layout.size
    assert img.shape == (32 * size, 32 * size, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("size,decay", [(5, True), (5, False), (8, True), (8, False)])
def test_env_and_twin_agree_step_by_step(size, decay):
    """Random action sequences: identical next states, rewards, termination and truncation. decay=True is
    compared with the exact time-augmented twin, decay=False with the stationary twin."""
    env = ModelAdvGridEnv(size=size, decay=decay)
    layout = env.layout
    M = make_twin(layout, time_augmented=True) if decay else make_twin(layout, gamma=0.9)
    C = layout.n_cells
    rng = np.random.default_rng(size)
    for episode in range(20):
        obs, _ = env.reset(seed=episode)
        s = int(np.flatnonzero(M.p0)[0])
        assert obs == s % C == layout.start
        for _ in range(layout.max_steps + 1):
            a = int(rng.integers(4))
            obs2, r, terminated, truncated, info = env.step(a)
            s2 = _next(M, s, a)
            assert obs2 == s2 % C
            assert r == pytest.approx(M.R[s, a], abs=1e-12)
            if decay:  # the time-augmented twin's absorbing states are exactly the episode ends
                assert terminated or truncated or not M.terminal[s2]
                assert M.terminal[s2] == (terminated or truncated)
                assert s2 // C == info["t"]
            else:
                assert M.terminal[s2] == terminated
            s = s2
            if terminated or truncated:
                break


def test_goal_is_absorbing_with_zero_reward():
    layout = GridLayout(8)
    M = make_twin(layout, gamma=0.9)
    g = layout.goal
    assert M.terminal[g] and M.terminal.sum() == 1
    assert np.all(M.dense_P()[g, :, g] == 1.0) and np.all(M.R[g] == 0.0)
    assert np.all(grid_step(layout, np.full(4, g), np.arange(4)) == g)


def test_walls_block_and_moves_are_cardinal():
    layout = GridLayout(6)  # 4x4 interior
    # start (1, 1): north and west bump into the wall, south and east move by one cell
    assert list(grid_step(layout, [0, 0, 0, 0], [0, 1, 2, 3])) == [0, 4, 1, 0]
    with pytest.raises(ValueError, match="actions"):
        grid_step(layout, 0, 4)


@pytest.mark.parametrize("size", [4, 8, 16])
def test_reward_scale_and_optimal_path(size):
    """Optimal return > 1 (the goal is reached); the greedy optimal path has Manhattan length 2 (size - 3);
    the random policy's return (never better than reaching) stays below the optimum."""
    layout = GridLayout(size)
    M = make_twin(layout, gamma=0.95)
    res = value_iteration(M)
    s, steps = layout.start, 0
    while s != layout.goal and steps < layout.n_cells:
        s = _next(M, s, int(np.argmax(res.pi[s])))
        steps += 1
    assert s == layout.goal and steps == layout.manhattan == 2 * (size - 3)
    # the real (time-decayed) return of that path: dense part telescopes to exactly 1, plus the bonus
    best = exact_return(layout, res.pi)
    assert best == pytest.approx(2.0 - 0.9 * layout.manhattan / layout.max_steps) == pytest.approx(layout.best_return)
    assert best > 1.0
    uniform = np.full((layout.n_cells, 4), 0.25)
    assert exact_return(layout, uniform) < best


def test_return_above_one_iff_goal_reached():
    """Potential-based dense reward: an episode that stops short of the goal returns 1 - dist/dist0 < 1."""
    env = ModelAdvGridEnv(size=8)
    env.reset()
    total = sum(env.step(1)[1] for _ in range(5))  # walk south to the bottom wall: closer but not there
    assert 0 < total < 1
    total += sum(env.step(2)[1] for _ in range(4))
    obs, r, terminated, _, _ = env.step(2)
    assert terminated and total + r > 1


def test_exact_return_matches_time_augmented_twin_and_sampling():
    layout = GridLayout(6)
    pi = np.random.default_rng(0).dirichlet(np.ones(4), size=layout.n_cells)
    M = make_twin(layout, time_augmented=True)
    pi_aug = np.tile(pi, (layout.max_steps + 1, 1))
    assert exact_return(layout, pi) == pytest.approx(performance(M, pi_aug), abs=1e-12)
    est = evaluate_return(layout, pi, 20000, np.random.default_rng(1))
    # 20000 episodes, returns in [-1, 2]: the s.e. is below 0.01, so 0.05 is a > 5 sigma band
    assert est == pytest.approx(exact_return(layout, pi), abs=0.05)


def test_bad_sizes_and_render():
    for bad in (3, 2, 0, -1, 4.5, True):
        with pytest.raises(ValueError, match="size"):
            GridLayout(bad)
    with pytest.raises(ValueError, match="max_steps"):
        GridLayout(8, 0)
    with pytest.raises(ValueError, match="render_mode"):
        ModelAdvGridEnv(render_mode="human")
    img = render_layout(GridLayout(5), tile_size=8)
    assert img.shape == (40, 40, 3)
    # the goal square is MiniGrid's green, the border its grey wall
    assert tuple(img[3 * 8 + 4, 3 * 8 + 4]) == (0, 255, 0)
    assert img[4, 4].tolist() == [100, 100, 100]


def test_registration_happens_on_import_of_the_module_only():
    import subprocess
    import sys

    code = ("import gymnasium as gym, tabular; a = 'ModelAdvGrid-8x8-v0' in gym.registry; "
            "import gridworld; print(a, 'ModelAdvGrid-8x8-v0' in gym.registry)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_transition_reward_tables_agree_with_the_env_reward():
    layout = GridLayout(7)
    C = layout.n_cells
    cells = np.arange(C)
    r = layout.reward_table
    for a in range(4):
        assert np.array_equal(r[cells, grid_step(layout, cells, a)], grid_reward(layout, cells, a))
    # r(c, c') = u(c') + dist(c)/dist(start) for every c != goal; zero from the goal
    live = cells != layout.goal
    assert np.allclose(r[live], layout.arrival_reward[None, :] + (layout.dist / layout.dist[0])[live][:, None])
    assert np.all(r[layout.goal] == 0.0)
    nxt, dense, arrive = layout.tables
    assert np.allclose(dense + arrive, r[cells[:, None], nxt])


def test_reset_options_continue_an_episode_where_a_checkpoint_left_it():
    """reset(options={"cell", "t"}) is how a resumed run puts the agent back; the rest of the episode (rewards, the
    decayed goal bonus, truncation) is that of the uninterrupted episode."""
    lay = GridLayout(5)
    a, b = ModelAdvGridEnv(size=5), ModelAdvGridEnv(size=5)
    a.reset(seed=0)
    actions = [1, 2, 0, 2, 1, 1, 2, 2]
    for act in actions[:3]:
        cell, _, _, _, info = a.step(act)
    assert b.reset(options={"cell": cell, "t": info["t"]}) == (cell, {"t": 3})
    for act in actions[3:]:
        assert a.step(act) == b.step(act)
    for bad in ({"cell": lay.n_cells}, {"cell": -1}, {"t": lay.max_steps}, {"cell": 1.0}, {"t": True}):
        with pytest.raises(ValueError, match="options"):
            b.reset(options=bad)
