from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_q2_uniform_model(refresh_value):
    import numpy as np
    V = refresh_value(np.zeros((2, 1, 2)), np.ones((2, 1)), np.ones((2, 1)), 0.9)
    assert np.shape(V) == (2,), f'expected shape (2,); got {np.shape(V)}'
    np.testing.assert_allclose(V, [10.0, 10.0], atol=1e-09)
    V = refresh_value(np.zeros((2, 1, 2)), np.array([[1.0], [0.0]]), np.ones((2, 1)), 0.999)
    np.testing.assert_allclose(V.mean(), 0.5 / (1 - 0.999), rtol=1e-09)

