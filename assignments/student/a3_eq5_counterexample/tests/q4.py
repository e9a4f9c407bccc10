from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = None

@test_case(points=1, hidden=False)
def test_q4_second_order(printed_residuals):
    import numpy as np
    from tabular import random_mdp
    rng = np.random.default_rng(3)
    M = random_mdp(rng, S=4, A=2, gamma=0.8)
    M2 = M.replace(P=rng.dirichlet(np.ones(4), size=(4, 2)))
    eps = np.logspace(-3, -2, 4)
    res = np.asarray(printed_residuals(M, M2, rng.dirichlet(np.ones(2), size=4), eps))
    assert res.shape == (4,), f'expected one residual per eps; got shape {res.shape}'
    slope = np.polyfit(np.log(eps), np.log(np.abs(res)), 1)[0]
    assert 1.9 < slope < 2.1, f'log-log slope {slope}'

