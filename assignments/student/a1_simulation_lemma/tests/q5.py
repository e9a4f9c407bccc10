from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = None

@test_case(points=1, hidden=False)
def test_q5_same_rewards(printed_eq3_residual):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(2)
    M = random_mdp(rng, S=4, A=2, gamma=0.7)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 2)))
    r = printed_eq3_residual(M, M2, rng.dirichlet(np.ones(2), size=4))
    assert np.ndim(r) == 0 and abs(float(r)) < 1e-08, f'with equal rewards printed Eq. 3 is exact; got {r}'

