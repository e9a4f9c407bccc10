from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = None

@test_case(points=1, hidden=False)
def test_q3_exact_model_has_no_loss(vps_torch):
    import numpy as np
    rng = np.random.default_rng(5)
    S, A, B = (3, 1, 6)
    p = {'Wm': 0.2 * rng.normal(size=(S, S)), 'Um': 0.2 * rng.normal(size=(A, S)), 'w1': rng.normal(size=(S, 4)), 'b1': rng.normal(size=4), 'w2': rng.normal(size=4), 'b2': 0.0}
    a = rng.normal(size=(B, 2, A))
    s0 = rng.normal(size=(B, S))
    s1 = s0 + s0 @ p['Wm'] + a[:, 0] @ p['Um']
    s2 = s1 + s1 @ p['Wm'] + a[:, 1] @ p['Um']
    loss, g = vps_torch(p, np.stack([s0, s1, s2], axis=1), a)
    assert np.shape(g) == (S, S)
    assert abs(loss) < 1e-12, loss

