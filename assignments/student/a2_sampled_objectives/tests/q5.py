from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = None

@test_case(points=1, hidden=False)
def test_q5_perfect_model(vaml_l2):
    import numpy as np
    logits = np.full((2, 1, 2), -50.0)
    logits[0, 0, 1] = logits[1, 0, 0] = 50.0
    value, grad = vaml_l2(logits, np.array([3.0, -1.0]), np.array([0, 1]), np.array([0, 0]), np.array([1, 0]))
    assert abs(value) < 1e-12 and np.abs(grad).max() < 1e-12, (value, grad)

