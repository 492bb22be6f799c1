"""Monte-Carlo twins: wide random networks (numpy, seeded) against the mean-field maps.

Error bars: R = 16 independent networks of width N = 1000 (16 x 1000 units per layer: more
independent samples than 4 x 2000 and a reliable spread estimate); the bar on each layer's mean
is 4 standard errors of the replicate spread plus the O(1/N) finite-width bias allowance 2/N
(relative). The theory is the infinite-width limit, so this is what "agree" can mean.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from initwise.theory import get_activation, propagate

WIDTH, DEPTH, REPS = 1000, 4, 16


@pytest.mark.parametrize("name,sw,sb,q0,c0", [("tanh", 1.5, 0.1, 1.0, 0.5),
                                               ("relu", 1.2, 0.3, 2.0, 0.2),
                                               ("hardtanh", 2.0, 0.2, 0.5, 0.8)])
def test_q_and_c_match_a_wide_network(ref, name, sw, sb, q0, c0):
    act = get_activation(name)
    with threadpool_limits(limits=1, user_api="blas"):
        runs = [ref.simulate_network(act.fn, DEPTH, WIDTH, sw, sb, q0, c0, seed)
                for seed in range(REPS)]
    qs = np.array([r[0] for r in runs])
    cs = np.array([r[1] for r in runs])
    theory = propagate(act, DEPTH, sw, sb, q0=q0, c0=c0)
    q_bar = 4 * qs.std(axis=0, ddof=1) / np.sqrt(REPS) + 2 / WIDTH * theory.q
    c_bar = 4 * cs.std(axis=0, ddof=1) / np.sqrt(REPS) + 2 / WIDTH
    assert np.all(np.abs(qs.mean(axis=0) - theory.q) <= q_bar + 1e-12)
    assert np.all(np.abs(cs.mean(axis=0) - theory.c) <= c_bar + 1e-12)
    # the bars are informative: a few percent, not vacuous
    assert np.all(q_bar[1:] < 0.1 * theory.q[1:]) and np.all(c_bar < 0.1)
