from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_q2_two_state_chain(discounted_state_distribution):
    import numpy as np
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    d = discounted_state_distribution(P, np.ones((2, 1)), np.array([1.0, 0.0]), 0.5)
    assert np.shape(d) == (2,), f'd must have shape (S,) = (2,); got {np.shape(d)}'
    np.testing.assert_allclose(d, [0.5, 0.5], atol=1e-10)
    d = discounted_state_distribution(P, np.ones((2, 1)), np.array([1.0, 0.0]), 0.999)
    np.testing.assert_allclose(d, [0.001, 0.999], atol=1e-09, err_msg='d at gamma = 0.999: is the sum over t complete?')

