from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_q1_by_hand(ma_l1_torch):
    import numpy as np
    u = 0.3
    p = {'Wm': np.zeros((1, 1)), 'Um': np.array([[u]]), 'w1': np.ones((1, 1)), 'b1': np.zeros(1), 'w2': np.ones(1), 'b2': 0.0}
    loss, gW, gU = ma_l1_torch(p, np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1)))
    assert np.shape(gW) == (1, 1) and np.shape(gU) == (1, 1), (np.shape(gW), np.shape(gU))
    np.testing.assert_allclose(loss, np.tanh(1) - np.tanh(u), rtol=1e-12)
    np.testing.assert_allclose(gU, [[-(1 - np.tanh(u) ** 2)]], rtol=1e-12)
    np.testing.assert_allclose(gW, [[0.0]], atol=1e-15)

