from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_q3_two_state_chain(model_advantage):
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = np.array([[0.0], [1.0]])
    A = model_advantage(P, R, np.ones((2, 1)), 0.5)
    assert np.shape(A) == (2, 2), f'A must have shape (S, S) = (2, 2); got {np.shape(A)}'
    np.testing.assert_allclose(A, [[-0.5, 0.0], [-0.5, 0.0]], atol=1e-10)

