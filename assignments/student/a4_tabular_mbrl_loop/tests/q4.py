from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_q4_learns_and_reports_consistently(mbrl_loop, gap_and_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(4)
    M = random_mdp(rng, S=4, A=2, gamma=0.9)
    pi = rng.dirichlet(np.ones(2), size=4)
    batches = [(rng.integers(0, 4, 50), rng.integers(0, 2, 50), rng.integers(0, 4, 50)) for _ in range(8)]
    logits0 = rng.normal(size=(4, 2, 4))
    logits, gaps = mbrl_loop(M, logits0, pi, batches, 0.5, 3)
    assert np.shape(gaps) == (8,) and np.shape(logits) == (4, 2, 4)
    assert abs(gaps[-1] - gap_and_terms(M, logits, pi)[0]) < 1e-12, 'the last gap is that of the returned logits'
    same, gaps0 = mbrl_loop(M, logits0, pi, batches, 0.0, 3)
    np.testing.assert_array_equal(same, logits0)
    np.testing.assert_allclose(gaps0, gap_and_terms(M, logits0, pi)[0], atol=1e-12)

