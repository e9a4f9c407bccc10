# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: a5_torch_objectives
# init_cell: true
# check_all_cell: false
# export_cell: false
# tests:
#   files: true
#   ok_format: false
# autograder_files:
# - grading_utils.py

# %% [markdown]
# # Assignment 5: the deep objectives in torch — Eq. 10 by autograd, checked by finite differences, and VPS (Eq. 12)
#
# *Modhe et al. (2021), "Model-Advantage Optimization for Model-Based RL", Sec. 3-5 (Eq. 10, Eq. 12).*
#
# For continuous states the model is a function $\hat s' = f_\phi(s, a)$ and the expectation over next states in
# Eq. 10 is the value at the one predicted state: $L_1^U = \frac1B\sum_i |V(s'_i) - V(f_\phi(s_i, a_i))|$. Here
# $f_\phi(s, a) = s + s W_m + a U_m$ (a linear model of the change of state) and the value is a small fixed network
# $V(s) = \tanh(s w_1 + b_1)\, w_2 + b_2$. Parameters come in a dict `params` with numpy arrays
# `Wm (S, S)`, `Um (A, S)`, `w1 (S, H)`, `b1 (H,)`, `w2 (H,)` and a float `b2`; batches are numpy arrays. Work in
# `torch.float64` and return numpy arrays / floats. Use torch and numpy only (not the `deep` or `tabular` packages).

# %%
import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def random_params(rng, S=3, A=1, H=8, scale=0.3):
    """Parameters of the model and value network (for your own experiments)."""
    return {"Wm": scale * rng.normal(size=(S, S)), "Um": scale * rng.normal(size=(A, S)),
            "w1": rng.normal(size=(S, H)), "b1": rng.normal(size=H), "w2": rng.normal(size=H), "b2": 0.1}

# %% [raw]
# # BEGIN QUESTION
# name: q1

# %% [markdown]
# ## Q1. Eq. 10 and its gradient by autograd
# Write `ma_l1_torch(params, s, a, s2)` for `s, s2 (B, S)` and `a (B, A)` returning `(loss, grad_Wm, grad_Um)`:
# the loss $L_1^U$ as a float and its gradients with respect to $W_m$ and $U_m$ (numpy arrays of their shapes),
# computed with `torch.autograd`. The value network is held fixed (no gradient to it).

# %% [raw]
# # BEGIN SOLUTION

# %%
def ma_l1_torch(params, s, a, s2):
    # BEGIN SOLUTION
    t = {k: torch.tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    Wm, Um = t["Wm"].requires_grad_(), t["Um"].requires_grad_()
    s, a, s2 = (torch.tensor(np.asarray(x, dtype=float)) for x in (s, a, s2))

    def V(x):
        return torch.tanh(x @ t["w1"] + t["b1"]) @ t["w2"] + t["b2"]

    loss = (V(s2) - V(s + s @ Wm + a @ Um)).abs().mean()
    gW, gU = torch.autograd.grad(loss, (Wm, Um))
    return float(loss.detach()), gW.numpy(), gU.numpy()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q1_by_hand(ma_l1_torch):
    # S = A = H = 1, V(x) = tanh(x); s = 0, a = 1, s2 = 1, Wm = 0, Um = u: loss = |tanh(1) - tanh(u)|,
    # d/du = -sign(tanh 1 - tanh u) * (1 - tanh(u)^2)
    import numpy as np
    u = 0.3
    p = {"Wm": np.zeros((1, 1)), "Um": np.array([[u]]), "w1": np.ones((1, 1)), "b1": np.zeros(1), "w2": np.ones(1),
         "b2": 0.0}
    loss, gW, gU = ma_l1_torch(p, np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1)))
    assert np.shape(gW) == (1, 1) and np.shape(gU) == (1, 1), (np.shape(gW), np.shape(gU))
    np.testing.assert_allclose(loss, np.tanh(1) - np.tanh(u), rtol=1e-12)
    np.testing.assert_allclose(gU, [[-(1 - np.tanh(u) ** 2)]], rtol=1e-12)
    np.testing.assert_allclose(gW, [[0.0]], atol=1e-15)  # s = 0: Wm does not enter

test_q1_by_hand(ma_l1_torch)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q1_random(ma_l1_torch):
    from grading_utils import assert_on_random_instances, torch_objective_instance, torch_ma_l1_reference

    def case(rng):
        p, s, a, s2, _ = torch_objective_instance(rng)
        return ma_l1_torch(p, s, a, s2), torch_ma_l1_reference(p, s, a, s2)
    assert_on_random_instances(ma_l1_torch, case, n=5)

test_q1_random(ma_l1_torch)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2

# %% [markdown]
# ## Q2. Finite differences
# Write `central_differences(params, s, a, s2, eps)` returning the gradient of $L_1^U$ with respect to $W_m$ by
# central differences, $\big(L(W_m + \epsilon E_{ij}) - L(W_m - \epsilon E_{ij})\big) / 2\epsilon$ for every entry,
# without autograd. It should agree with Q1 to about $10^{-7}$ for `eps = 1e-6` (why not better? why not worse?).

# %% [raw]
# # BEGIN SOLUTION

# %%
def central_differences(params, s, a, s2, eps):
    # BEGIN SOLUTION
    w1, b1, w2, b2 = (np.asarray(params[k], dtype=float) for k in ("w1", "b1", "w2", "b2"))
    Um = np.asarray(params["Um"], dtype=float)
    s, a, s2 = (np.asarray(x, dtype=float) for x in (s, a, s2))

    def V(x):
        return np.tanh(x @ w1 + b1) @ w2 + b2

    def L(Wm):
        return np.abs(V(s2) - V(s + s @ Wm + a @ Um)).mean()

    Wm = np.asarray(params["Wm"], dtype=float)
    g = np.zeros_like(Wm)
    for idx in np.ndindex(*Wm.shape):
        e = np.zeros_like(Wm)
        e[idx] = eps
        g[idx] = (L(Wm + e) - L(Wm - e)) / (2 * eps)
    return g
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q2_linear_loss(central_differences):
    # V(x) = x (tanh removed by a tiny w1, rescaled by w2), all residuals positive: L is linear in Wm,
    # so central differences are exact: dL/dWm = -mean(s)^T (rows of s summed) * d, here by hand
    import numpy as np
    p = {"Wm": np.zeros((1, 1)), "Um": np.zeros((1, 1)), "w1": np.full((1, 1), 1e-4), "b1": np.zeros(1),
         "w2": np.full(1, 1e4), "b2": 0.0}
    s, a, s2 = np.array([[1.0], [2.0]]), np.zeros((2, 1)), np.array([[5.0], [6.0]])
    g = central_differences(p, s, a, s2, 1e-6)
    assert np.shape(g) == (1, 1)
    np.testing.assert_allclose(g, [[-1.5]], rtol=1e-5)

test_q2_linear_loss(central_differences)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q2_random(central_differences):
    from grading_utils import assert_on_random_instances, torch_objective_instance, torch_ma_l1_reference

    def case(rng):
        p, s, a, s2, _ = torch_objective_instance(rng)
        return central_differences(p, s, a, s2, 1e-6), torch_ma_l1_reference(p, s, a, s2)[1]
    assert_on_random_instances(central_differences, case, n=5, rtol=1e-5, atol=1e-6)

test_q2_random(central_differences)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3

# %% [markdown]
# ## Q3. Value predictive smoothness (Eq. 12)
# For segments `s (B, 3, S)` (states $s_t, s_{t+1}, s_{t+2}$) and `a (B, 2, A)` (actions $a_t, a_{t+1}$), the model
# predicts two steps, $\hat s_{t+1} = f(s_t, a_t)$ and $\hat s_{t+2} = f(\hat s_{t+1}, a_{t+1})$, and VPS compares the
# *change* of value along the prediction with the change along the data:
# $$L_{VPS} = \frac1B\sum_i \big|\big(V(\hat s_{t+2}) - V(\hat s_{t+1})\big) - \big(V(s_{t+2}) - V(s_{t+1})\big)\big|.$$
# Write `vps_torch(params, s, a)` returning `(loss, grad_Wm)` (autograd).

# %% [raw]
# # BEGIN SOLUTION

# %%
def vps_torch(params, s, a):
    # BEGIN SOLUTION
    t = {k: torch.tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    Wm = t["Wm"].requires_grad_()
    s, a = torch.tensor(np.asarray(s, dtype=float)), torch.tensor(np.asarray(a, dtype=float))

    def V(x):
        return torch.tanh(x @ t["w1"] + t["b1"]) @ t["w2"] + t["b2"]

    def f(x, u):
        return x + x @ Wm + u @ t["Um"]

    p1 = f(s[:, 0], a[:, 0])
    p2 = f(p1, a[:, 1])
    loss = ((V(p2) - V(p1)) - (V(s[:, 2]) - V(s[:, 1]))).abs().mean()
    (g,) = torch.autograd.grad(loss, (Wm,))
    return float(loss.detach()), g.numpy()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
""" # BEGIN TEST CONFIG
points: 1
""" # END TEST CONFIG
def test_q3_exact_model_has_no_loss(vps_torch):
    # data generated by the model itself: the predicted and the real value changes agree, loss 0
    import numpy as np
    rng = np.random.default_rng(5)
    S, A, B = 3, 1, 6
    p = {"Wm": 0.2 * rng.normal(size=(S, S)), "Um": 0.2 * rng.normal(size=(A, S)), "w1": rng.normal(size=(S, 4)),
         "b1": rng.normal(size=4), "w2": rng.normal(size=4), "b2": 0.0}
    a = rng.normal(size=(B, 2, A))
    s0 = rng.normal(size=(B, S))
    s1 = s0 + s0 @ p["Wm"] + a[:, 0] @ p["Um"]
    s2 = s1 + s1 @ p["Wm"] + a[:, 1] @ p["Um"]
    loss, g = vps_torch(p, np.stack([s0, s1, s2], axis=1), a)
    assert np.shape(g) == (S, S)
    assert abs(loss) < 1e-12, loss

test_q3_exact_model_has_no_loss(vps_torch)

# %%
""" # BEGIN TEST CONFIG
hidden: true
points: 2
""" # END TEST CONFIG
def test_q3_random(vps_torch):
    from grading_utils import assert_on_random_instances, torch_vps_instance, torch_vps_reference

    def case(rng):
        p, s, a = torch_vps_instance(rng)
        return vps_torch(p, s, a), torch_vps_reference(p, s, a)
    assert_on_random_instances(vps_torch, case, n=5)

test_q3_random(vps_torch)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Where does the gradient of Eq. 10 come from? Only through $\nabla_s V$ at the predicted state: flatten the value
# network and watch it vanish.

# %%
rng = np.random.default_rng(0)
p = random_params(rng)
s, a, s2 = rng.normal(size=(64, 3)), rng.normal(size=(64, 1)), rng.normal(size=(64, 3))
for scale in (1.0, 0.1, 0.01):
    q = dict(p, w1=scale * p["w1"])
    print(f"value-network input scale {scale:5}: |grad_Wm| of Eq. 10 = {np.abs(ma_l1_torch(q, s, a, s2)[1]).sum():.2e}")

# %% [raw]
# # BEGIN QUESTION
# name: q4
# manual: true
# points: 2

# %% [markdown]
# ## Q4 (written). Flat values and the two objectives
# (a) From the last cell, explain why a flat value network gives Eq. 10 no learning signal (Sec. 5 of the paper;
# the deep experiments here refit the critic many times for this reason). (b) Does VPS have the same weakness?
# Answer from its formula.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# (a) The model enters Eq. 10 only through $V(f_\phi(s, a))$, so by the chain rule the gradient is
# $\nabla_\phi f_\phi \cdot \nabla_s V$ at the predicted state, times the sign of the residual; shrinking the
# network's input weights shrinks $\nabla_s V$ and the printed gradient norms fall with it (7–10× per 10× of
# scale). A value network that is flat on the states the model predicts gives no signal however wrong the model.
# (b) Yes: VPS also sees the model only through $V$ at predicted states ($V(\hat s_{t+1})$, $V(\hat s_{t+2})$), so its
# gradient carries the same $\nabla_s V$ factor; it adds a *multi-step* comparison of value changes, not a signal that
# survives a flat value.
#
# **Rubric (2 points).** (a) 1 point: the chain rule through $\nabla_s V$ at the predicted state, tied to the printed
# numbers. (b) 1 point: "yes", because VPS also depends on the model only through $V$ of predicted states.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
