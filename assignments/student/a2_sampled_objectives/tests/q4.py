from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_q4_finite_differences(direct_l1):
    import numpy as np
    rng = np.random.default_rng(4)
    S, A, eps, gamma = (3, 2, 1e-06, 0.9)
    logits, V = (rng.normal(size=(S, A, S)), rng.normal(size=S))
    episode, t = (np.repeat([0, 1, 2], 5), np.tile(np.arange(5), 3))
    s, a, s2 = (rng.integers(0, S, 15), rng.integers(0, A, 15), rng.integers(0, S, 15))
    value, grad = direct_l1(logits, V, s, a, s2, t, episode, gamma)
    assert np.ndim(value) == 0 and np.shape(grad) == (S, A, S), (np.shape(value), np.shape(grad))
    f = lambda z: direct_l1(z, V, s, a, s2, t, episode, gamma)[0]
    num = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        e = np.zeros_like(logits)
        e[idx] = eps
        num[idx] = (f(logits + e) - f(logits - e)) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-06, err_msg='gradient vs central differences')

