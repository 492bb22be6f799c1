"""Edge of chaos and critical line: closed forms, stability, vectorization, bad input."""

import math

import numpy as np
import pytest

from initwise.theory import (
    chi_1,
    critical_line,
    critical_point,
    edge_of_chaos,
    fixed_point,
    q_map_slope,
)


def test_relu_edge_of_chaos_is_sqrt2_at_zero_bias_only():
    """ReLU: chi_1 = sigma_w^2 / 2, so the edge is sigma_w = sqrt(2) at sigma_b = 0 (He et al.
    2015, arXiv:1502.01852; Hayou et al. 2019, arXiv:1902.06853: the ReLU EOC is the single point
    (0, sqrt 2)), and none for sigma_b > 0."""
    assert edge_of_chaos("relu", 0.0) == pytest.approx(math.sqrt(2.0), rel=1e-14)
    with pytest.raises(ValueError, match="positively homogeneous"):
        edge_of_chaos("relu", 0.1)
    a = 0.2
    from initwise.theory import get_activation

    assert edge_of_chaos(get_activation("leaky_relu", negative_slope=a)) == pytest.approx(
        math.sqrt(2 / (1 + a * a)), rel=1e-13)


def test_erf_critical_line_matches_closed_form():
    """For erf, chi_1 = sigma_w^2 4 / (pi sqrt(1 + 4 q*)) and V(q*) = q* give the critical line
    in closed form, parametrized by q*."""
    q = np.array([0.01, 0.1, 0.5, 2.0, 10.0])
    sw2 = np.pi * np.sqrt(1 + 4 * q) / 4
    sb = np.sqrt(q - sw2 * 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)))
    line = critical_line("erf", sb)
    np.testing.assert_allclose(line.sigma_w, np.sqrt(sw2), rtol=1e-12)
    np.testing.assert_allclose(line.q_star, q, rtol=1e-10)
    assert edge_of_chaos("erf", 0.0) == pytest.approx(math.sqrt(math.pi) / 2, rel=1e-13)


def test_tanh_edge_at_zero_bias_is_one():
    """Poole et al. 2016 (arXiv:1606.05340): tanh's critical line starts at (sigma_b, sigma_w) =
    (0, 1), where q* = 0 is marginally stable (V'(0) = 1)."""
    p = critical_point("tanh", 0.0)
    assert p.sigma_w == pytest.approx(1.0, rel=1e-14) and p.q_star == 0.0 and p.v_prime == 1.0


@pytest.mark.parametrize("name", ["tanh", "hardtanh", "elu", "selu", "sin", "erf"])
def test_edge_points_are_critical_stable_fixed_points(name):
    for sb in (0.05, 0.3, 1.0):
        sw = edge_of_chaos(name, sb)
        fp = fixed_point(name, sw, sb)
        assert fp.stable and fp.v_prime < 1
        assert chi_1(name, sw, sb) == pytest.approx(1.0, abs=1e-9)


def test_silu_small_bias_has_only_an_unstable_critical_point():
    """chi_1 = 1 on an unstable fixed point is not an edge of chaos (issue 3): SiLU at
    sigma_b = 0.2 has chi_1 = 1 only where V'(q*) > 1, so the lengths run away."""
    p = critical_point("silu", 0.2)
    assert not p.stable and math.isnan(p.sigma_w)
    (sw, q, vp), = p.candidates
    assert vp > 1.0
    assert float(q_map_slope("silu", q, sw)) == pytest.approx(vp, rel=1e-10)
    with pytest.raises(ValueError, match="unstable"):
        edge_of_chaos("silu", 0.2)
    assert edge_of_chaos("silu", 1.0) > 0  # at larger bias the critical point is stable


def test_critical_line_vectorized_equals_pointwise():
    sb = np.array([0.0, 0.05, 0.2, 0.7, 1.5])
    line = critical_line("tanh", sb)
    for b, w in zip(sb, line.sigma_w):
        assert w == pytest.approx(edge_of_chaos("tanh", float(b)), rel=1e-12)
    assert np.all(np.diff(line.sigma_w) > 0)


def test_critical_line_marks_missing_points_with_nan():
    line = critical_line("relu", [0.0, 0.5])
    assert line.sigma_w[0] == pytest.approx(math.sqrt(2)) and math.isnan(line.sigma_w[1])


def test_softplus_has_no_edge_of_chaos():
    with pytest.raises(ValueError, match="no fixed point with chi_1 = 1"):
        edge_of_chaos("softplus", 0.3)


def test_negative_sigma_b_rejected():
    with pytest.raises(ValueError, match="sigma_b"):
        critical_line("tanh", [0.1, -0.2])
