"""Depth scales, maximal trainable depth and propagation."""

import math

import numpy as np
import pytest

from initwise.theory import (
    c_map,
    c_map_derivative,
    chi_1,
    correlation_fixed_point,
    depth_scales,
    edge_of_chaos,
    fixed_point,
    max_trainable_depth,
    propagate,
    q_map,
)


def test_ordered_phase_xi_c_from_chi_1():
    """Ordered phase: c* = 1 and chi_c = chi_1 (Schoenholz et al. 2017, eq. 9)."""
    d = depth_scales("tanh", 1.0, 0.3)
    assert d.c_star == 1.0
    assert d.chi_c == pytest.approx(chi_1("tanh", 1.0, 0.3), rel=1e-10)
    assert d.xi_c == pytest.approx(-1 / math.log(chi_1("tanh", 1.0, 0.3)), rel=1e-10)
    assert d.xi_q == pytest.approx(-1 / math.log(fixed_point("tanh", 1.0, 0.3).v_prime))
    xi_q, xi_c = d  # unpacks as a pair
    assert (xi_q, xi_c) == (d.xi_q, d.xi_c)


def test_chaotic_phase_uses_the_nontrivial_fixed_point_not_chi_1():
    sw, sb = 2.5, 0.3
    d = depth_scales("tanh", sw, sb)
    q = fixed_point("tanh", sw, sb).q_star
    assert chi_1("tanh", sw, sb) > 1 and 0 < d.c_star < 1
    assert c_map("tanh", d.c_star, q, sw, sb) == pytest.approx(d.c_star, abs=1e-12)
    assert d.chi_c == pytest.approx(c_map_derivative("tanh", d.c_star, q, sw, sb), rel=1e-10)
    assert d.chi_c < 1 and d.xi_c == pytest.approx(-1 / math.log(d.chi_c))


def test_xi_c_diverges_at_criticality():
    sw = edge_of_chaos("tanh", 0.1)
    below, above = depth_scales("tanh", sw * 0.99, 0.1), depth_scales("tanh", sw * 1.01, 0.1)
    at = depth_scales("tanh", sw, 0.1)
    assert at.xi_c == math.inf and max_trainable_depth("tanh", sw, 0.1) == math.inf
    assert below.xi_c > 30 and above.xi_c > 30
    assert max_trainable_depth("tanh", sw * 0.99, 0.1) == pytest.approx(6 * below.xi_c)


def test_correlations_approach_c_star_at_rate_xi_c():
    """Iterating the c map: |c_l - c*| shrinks by chi_c per layer (the definition of xi_c)."""
    sw, sb = 2.0, 0.2
    d = depth_scales("tanh", sw, sb)
    p = propagate("tanh", 40, sw, sb, q0=d.q_star, c0=0.3)
    gaps = np.abs(p.c - d.c_star)
    assert gaps[-1] / gaps[-2] == pytest.approx(d.chi_c, rel=1e-3)


def test_propagate_matches_composing_the_maps():
    p = propagate("hardtanh", 3, 1.4, 0.2, q0=2.0, c0=0.1)
    q, c = 2.0, 0.1
    for layer in range(1, 4):
        c = float(c_map("hardtanh", c, q, 1.4, 0.2))
        q = float(q_map("hardtanh", q, 1.4, 0.2))
        assert p.q[layer] == pytest.approx(q, rel=1e-13)
        assert p.c[layer] == pytest.approx(c, rel=1e-13)


def test_relu_propagation_closed_form(ref):
    """ReLU at (sqrt 2, 0): q is preserved, c follows the normalized arc-cosine map."""
    p = propagate("relu", 6, math.sqrt(2.0), 0.0, q0=1.7, c0=-0.4)
    np.testing.assert_allclose(p.q, 1.7, rtol=1e-13)
    c = -0.4
    for layer in range(1, 7):
        c = float(2 * ref.relu_kernel(c))
        assert p.c[layer] == pytest.approx(c, abs=1e-13)


def test_relu_degenerate_cases_are_explained():
    d = depth_scales("relu", 2.0, 0.1)
    assert math.isnan(d.xi_q) and d.xi_c == math.inf and "diverge" in d.note
    assert correlation_fixed_point("relu", math.sqrt(2.0)) == 1.0


def test_propagate_rejects_bad_input():
    with pytest.raises(ValueError, match="depth"):
        propagate("tanh", -1, 1.0)
    with pytest.raises(ValueError, match="c0"):
        propagate("tanh", 2, 1.0, c0=2.0)
