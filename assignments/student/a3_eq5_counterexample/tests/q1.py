from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=1, hidden=False)
def test_q1_fixed_point(bellman):
    import numpy as np
    from tabular import evaluate
    from tabular import random_mdp
    rng = np.random.default_rng(1)
    M = random_mdp(rng, S=4, A=3, gamma=0.8)
    pi = rng.dirichlet(np.ones(3), size=4)
    V = evaluate(M, pi).V
    TV = bellman(M, pi, V)
    assert np.shape(TV) == (4,), f'expected shape (S,) = (4,); got {np.shape(TV)}'
    np.testing.assert_allclose(TV, V, atol=1e-10)

