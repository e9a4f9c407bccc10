from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=1, hidden=False)
def test_q2_rewards_only(corollary2_forms):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(2)
    M = random_mdp(rng, S=4, A=2, gamma=0.7)
    M2 = M.replace(R=rng.uniform(-1, 1, size=(4, 2)))
    f = corollary2_forms(M, M2, rng.dirichlet(np.ones(2), size=4))
    assert set(f) >= {'lhs', 'printed', 'proof', 'dual'}, f'missing keys; got {sorted(f)}'
    np.testing.assert_allclose([f['printed'], f['proof'], f['dual']], f['lhs'], atol=1e-09)

