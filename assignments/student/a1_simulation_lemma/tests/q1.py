from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_q1_two_state_chain(policy_value):
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = np.array([[0.0], [1.0]])
    V = policy_value(P, R, np.ones((2, 1)), 0.5)
    assert np.shape(V) == (2,), f'V must have shape (S,) = (2,); got {np.shape(V)}'
    np.testing.assert_allclose(V, [1.0, 2.0], atol=1e-10)

