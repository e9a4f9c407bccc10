from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_q1_properties(softmax_model):
    import numpy as np
    p = softmax_model(np.zeros((2, 3, 2)))
    assert np.shape(p) == (2, 3, 2), f'expected shape (S, A, S) = (2, 3, 2); got {np.shape(p)}'
    np.testing.assert_allclose(p, 0.5)
    big = softmax_model(np.array([[[1000.0, 0.0]], [[0.0, 1000.0]]]))
    assert np.all(np.isfinite(big)), 'softmax_model overflowed on logits of size 1000'
    np.testing.assert_allclose(big[:, 0], [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)

