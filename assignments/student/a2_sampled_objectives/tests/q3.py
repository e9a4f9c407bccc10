from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_q3_finite_differences(upper_bound_l1):
    import numpy as np
    rng = np.random.default_rng(3)
    S, A, N, eps = (3, 2, 20, 1e-06)
    logits, V = (rng.normal(size=(S, A, S)), rng.normal(size=S))
    s, a, s2 = (rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N))
    value, grad = upper_bound_l1(logits, V, s, a, s2)
    assert np.ndim(value) == 0 and np.shape(grad) == (S, A, S), (np.shape(value), np.shape(grad))
    num = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        e = np.zeros_like(logits)
        e[idx] = eps
        num[idx] = (upper_bound_l1(logits + e, V, s, a, s2)[0] - upper_bound_l1(logits - e, V, s, a, s2)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-06, err_msg='gradient vs central differences')

