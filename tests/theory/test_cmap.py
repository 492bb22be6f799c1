"""Correlation map, its slope, and the DKS/TAT C-map quantities."""

import math

import numpy as np
import pytest

from initwise.theory import (
    c_map,
    c_map_curvature,
    c_map_derivative,
    c_map_slope,
    chi_1,
    fixed_point,
    normalizing_sigma_w,
)


def test_relu_c_map_is_the_arccos_kernel(ref):
    """Cho & Saul 2009: with sigma_b, c' = (sigma_w^2 k(c) q + sigma_b^2) / V(q)."""
    c = np.array([-1.0, -0.3, 0.0, 0.5, 0.9, 1 - 1e-9, 1.0])
    sw, sb, q = 1.7, 0.4, 2.0
    want = (sw**2 * ref.relu_kernel(c, q) + sb**2) / (sw**2 * q / 2 + sb**2)
    np.testing.assert_allclose(c_map("relu", c, q, sw, sb), want, atol=1e-13)
    # its slope: d/dc k(c) = q (pi - arccos c) / (2 pi)
    slope = sw**2 * q * (np.pi - np.arccos(c[:-1])) / (2 * np.pi) / (sw**2 * q / 2 + sb**2)
    np.testing.assert_allclose(c_map_derivative("relu", c[:-1], q, sw, sb), slope, atol=1e-12)


def test_erf_c_map_closed_form(ref):
    c = np.linspace(-1.0, 1.0, 9)
    sw, sb, q = 1.3, 0.2, 0.8
    want = (sw**2 * ref.erf_kernel(c, q) + sb**2) / (sw**2 * ref.erf_kernel(1.0, q) + sb**2)
    np.testing.assert_allclose(c_map("erf", c, q, sw, sb), want, atol=1e-12)


def test_linear_c_map_closed_form():
    c = np.array([-0.5, 0.2, 0.99])
    want = (0.81 * 1.5 * c + 0.09) / (0.81 * 1.5 + 0.09)
    np.testing.assert_allclose(c_map("identity", c, 1.5, 0.9, 0.3), want, atol=1e-14)


def test_c_equal_one_maps_to_one_exactly_and_continuously():
    for name in ("relu", "hardtanh", "tanh", "selu"):
        assert c_map(name, 1.0, 1.3, 1.5, 0.2) == 1.0
        near = c_map(name, 1 - 1e-10, 1.3, 1.5, 0.2)
        assert 1 - near == pytest.approx(1e-10 * c_map_derivative(name, 1.0, 1.3, 1.5, 0.2),
                                         rel=1e-3)


@pytest.mark.parametrize("name", ["tanh", "hardtanh", "silu", "relu6"])
def test_c_map_derivative_matches_finite_difference(name):
    c, h = 0.4, 1e-5
    fd = (c_map(name, c + h, 0.9, 1.6, 0.3) - c_map(name, c - h, 0.9, 1.6, 0.3)) / (2 * h)
    assert c_map_derivative(name, c, 0.9, 1.6, 0.3) == pytest.approx(fd, rel=1e-7)


def test_slope_at_one_is_chi_1_at_the_fixed_point():
    q = fixed_point("tanh", 1.7, 0.3).q_star
    assert c_map_derivative("tanh", 1.0, q, 1.7, 0.3) == pytest.approx(chi_1("tanh", 1.7, 0.3),
                                                                       rel=1e-10)


def test_dks_cmap_values():
    """Martens et al. 2021: a normalized ReLU has C'(1) = 1 and infinite curvature (phi'
    jumps); linear: C'(1) = 1, C''(1) = 0; smooth tanh: C'(1) = E[phi'^2] / E[phi^2],
    C''(1) = E[phi''^2] / E[phi^2]."""
    assert c_map_slope("relu") == pytest.approx(1.0, rel=1e-13)
    assert c_map_curvature("relu") == math.inf
    assert c_map_curvature("leaky_relu", sigma_w=1.0) == math.inf
    assert c_map_slope("identity") == pytest.approx(1.0, rel=1e-13)
    assert c_map_curvature("identity") == 0.0
    from initwise.theory import derivative_moment, get_activation, second_moment
    from initwise.theory._common import expect

    tanh = get_activation("tanh")
    m2 = float(second_moment(tanh, 1.0))
    assert c_map_slope("tanh") == pytest.approx(float(derivative_moment(tanh, 1.0)) / m2)
    curv = float(expect(tanh, lambda u: tanh.deriv2(u) ** 2, 1.0)) / m2
    assert c_map_curvature("tanh") == pytest.approx(curv, rel=1e-12)
    # curvature is the second derivative of the normalized C map at c = 1
    sw = normalizing_sigma_w("tanh")
    h = 1e-3
    second = (c_map("tanh", 1 - 2 * h, 1.0, sw) - 2 * c_map("tanh", 1 - h, 1.0, sw) + 1.0) / h**2
    assert second == pytest.approx(c_map_curvature("tanh"), rel=1e-2)


def test_c_map_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma_w is required"):
        c_map("tanh", 0.5, 1.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        c_map("tanh", 1.5, 1.0, 1.0)
