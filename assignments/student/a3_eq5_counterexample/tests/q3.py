from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_q3_valid_pair(counterexample):
    import numpy as np
    from tabular import TabularMDP
    M, M2, pi = counterexample()
    assert isinstance(M, TabularMDP) and isinstance(M2, TabularMDP), 'return two TabularMDPs and a policy'
    assert (M.S, M.A, M.gamma) == (M2.S, M2.A, M2.gamma), 'the models must share S, A and gamma'
    assert np.allclose(M.p0, M2.p0) and np.allclose(M.R, M2.R), 'the models must share p0 and the rewards'
    assert np.shape(pi) == (M.S, M.A), f'pi must have shape (S, A) = {(M.S, M.A)}; got {np.shape(pi)}'

