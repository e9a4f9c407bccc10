from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_q3_lemma1_residual_vanishes(gap_and_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(3)
    M = random_mdp(rng, S=5, A=2, gamma=0.9)
    pi = rng.dirichlet(np.ones(2), size=5)
    gap, ma = gap_and_terms(M, rng.normal(size=(5, 2, 5)), pi)
    assert abs(gap) > 0.001, 'a random model should have a performance gap'
    assert abs(gap - ma) < 1e-09, f'Lemma 1: the gap {gap} must equal the model-advantage term {ma}'
    z = np.log(np.maximum(M.dense_P(), 1e-300))
    np.testing.assert_allclose(gap_and_terms(M, z, pi), (0.0, 0.0), atol=1e-09)

