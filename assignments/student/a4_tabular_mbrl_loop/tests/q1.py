from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_q1_descends(ma_l1_step):
    import numpy as np
    rng = np.random.default_rng(1)
    S, A, N = (4, 2, 30)
    logits, V = (rng.normal(size=(S, A, S)), rng.normal(size=S))
    s, a, s2 = (rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N))

    def loss(l):
        p = np.exp(l) / np.exp(l).sum(-1, keepdims=True)
        return np.abs(V[s2] - (p @ V)[s, a]).mean()
    new = ma_l1_step(logits, V, s, a, s2, 0.001)
    assert np.shape(new) == (S, A, S), f'expected shape {(S, A, S)}; got {np.shape(new)}'
    assert loss(new) < loss(logits), 'a small step must lower the loss'
    np.testing.assert_array_equal(ma_l1_step(logits, V, s, a, s2, 0.0), logits)

