from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_q4_lemma_holds(lemma1_terms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(1)
    M = random_mdp(rng, S=4, A=3, gamma=0.8)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 3)), R=rng.uniform(-1, 1, size=(4, 3)))
    pi = rng.dirichlet(np.ones(3), size=4)
    lhs, ma_term, reward_term = lemma1_terms(M, M2, pi)
    assert abs(lhs - (ma_term + reward_term)) < 1e-08, 'Lemma 1 should hold exactly (up to round-off)'
    assert abs(lemma1_terms(M, M, pi)[1]) < 1e-10, 'the model-advantage term of a model against itself is 0'

