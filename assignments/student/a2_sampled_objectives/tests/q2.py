from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_q2_uniform_model(residuals):
    import numpy as np
    delta, jac = residuals(np.zeros((2, 1, 2)), np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 0]), np.array([1, 0]))
    assert np.shape(delta) == (2,) and np.shape(jac) == (2, 2), (np.shape(delta), np.shape(jac))
    np.testing.assert_allclose(delta, [0.5, -0.5])
    np.testing.assert_allclose(jac, [[-0.25, 0.25], [-0.25, 0.25]])

