from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_q2_linear_loss(central_differences):
    import numpy as np
    p = {'Wm': np.zeros((1, 1)), 'Um': np.zeros((1, 1)), 'w1': np.full((1, 1), 0.0001), 'b1': np.zeros(1), 'w2': np.full(1, 10000.0), 'b2': 0.0}
    s, a, s2 = (np.array([[1.0], [2.0]]), np.zeros((2, 1)), np.array([[5.0], [6.0]]))
    g = central_differences(p, s, a, s2, 1e-06)
    assert np.shape(g) == (1, 1)
    np.testing.assert_allclose(g, [[-1.5]], rtol=1e-05)

