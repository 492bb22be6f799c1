"""Jacobian spectra: free-probability moments and seeded sampling."""

import math

import numpy as np
import pytest

from initwise.theory import chi_1, edge_of_chaos, jacobian_spectrum


@pytest.mark.parametrize("depth", [1, 5, 20])
def test_relu_critical_moments(depth):
    """Pennington et al. 2017 (arXiv:1711.04735, eq. 17): at criticality the variance of the
    squared singular values is L (mu2/mu1^2 - 1 - s1) with s1 = -1 (Gaussian), 0 (orthogonal);
    ReLU has mu2/mu1^2 = 2: 2L Gaussian, L orthogonal. The mean is chi_1^L = 1."""
    g = jacobian_spectrum("relu", depth, math.sqrt(2.0), weights="gaussian")
    o = jacobian_spectrum("relu", depth, math.sqrt(2.0), weights="orthogonal")
    assert g.mean == pytest.approx(1.0, rel=1e-13) and o.mean == pytest.approx(1.0, rel=1e-13)
    assert g.variance == pytest.approx(2 * depth, rel=1e-12)
    assert o.variance == pytest.approx(depth, rel=1e-12)


def test_linear_gaussian_product_is_fuss_catalan():
    """Product of L Ginibre matrices: second moment of squared singular values is L + 1."""
    s = jacobian_spectrum("identity", 7, 1.0, weights="gaussian")
    assert s.second_moment == pytest.approx(8.0, rel=1e-13)
    assert jacobian_spectrum("identity", 7, 1.0, weights="orthogonal").variance == 0.0


def test_mean_is_chi_1_to_the_depth_off_criticality():
    s = jacobian_spectrum("tanh", 6, 1.3, 0.2)
    assert s.mean == pytest.approx(chi_1("tanh", 1.3, 0.2) ** 6, rel=1e-12)


def test_orthogonal_tanh_beats_relu_at_criticality():
    """Dynamical isometry: orthogonal tanh near q* = 0 has a far narrower spectrum than ReLU."""
    sw = edge_of_chaos("tanh", 0.01)
    tanh = jacobian_spectrum("tanh", 50, sw, 0.01, weights="orthogonal")
    relu = jacobian_spectrum("relu", 50, math.sqrt(2.0), weights="orthogonal")
    assert tanh.mean == pytest.approx(1.0, rel=1e-8)
    assert tanh.variance < 0.05 * relu.variance


@pytest.mark.parametrize("name,sw,sb,weights", [("tanh", 1.3, 0.2, "orthogonal"),
                                                ("hardtanh", 1.1, 0.1, "gaussian")])
def test_sampled_moments_agree_with_free_probability(name, sw, sb, weights):
    """Seeded width-200 networks, 4 samples, 4 layers: moments within 10% (finite width)."""
    s = jacobian_spectrum(name, 4, sw, sb, weights=weights, method="sample", width=200,
                          n_samples=4, seed=3)
    assert s.sampled_mean == pytest.approx(s.mean, rel=0.1)
    assert s.sampled_variance == pytest.approx(s.variance, rel=0.25)
    again = jacobian_spectrum(name, 4, sw, sb, weights=weights, method="sample", width=200,
                              n_samples=4, seed=3)
    np.testing.assert_array_equal(s.samples, again.samples)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="weights"):
        jacobian_spectrum("tanh", 3, 1.0, weights="sparse")
    with pytest.raises(ValueError, match="method"):
        jacobian_spectrum("tanh", 3, 1.0, method="exact")
