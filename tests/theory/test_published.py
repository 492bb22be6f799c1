"""Published values reproduced, each with its source and the relative error found.

Values quoted with few digits in a paper are compared within their rounding; the relative
error stated in each docstring is |computed - published| / published as measured.
"""

import math

import numpy as np
import pytest

from initwise.theory import (
    edge_of_chaos,
    fixed_point,
    from_callable,
    get_activation,
    second_moment,
)
from initwise.theory._common import expect


def test_selu_fixed_point_is_unit_variance_with_lecun_init():
    """Klambauer et al. 2017, arXiv:1706.02515: alpha_01 ~ 1.6733, lambda_01 ~ 1.0507 make
    (mean, variance) = (0, 1) the fixed point for LeCun init (sigma_w = 1, sigma_b = 0).
    With the full-precision constants: q* = 1 and E[selu(z)] = 0 to relative error < 1e-15
    (measured 6.7e-16 and 5.6e-17). With the 4-digit constants as printed: q* = 1.0000819
    (relative error 8.2e-5) and mean -9.2e-6, i.e. exact up to the printed rounding."""
    selu = get_activation("selu")
    assert abs(fixed_point(selu, 1.0, 0.0).q_star - 1.0) < 1e-14
    assert abs(float(expect(selu, selu.fn, 1.0))) < 1e-15
    a, lam = 1.6733, 1.0507
    printed = from_callable(lambda x: lam * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
                            kinks=(0.0,))
    assert fixed_point(printed, 1.0, 0.0).q_star == pytest.approx(1.0, rel=2e-4)
    assert abs(float(expect(printed, printed.fn, 1.0))) < 5e-5


def test_relu_edge_of_chaos_and_he_gain():
    """He et al. 2015, arXiv:1502.01852 (Var W = 2 / fan_in preserves the second moment) and
    Hayou et al. 2019, arXiv:1902.06853, Prop. 3 (the ReLU edge of chaos is the single point
    (sigma_b, sigma_w) = (0, sqrt 2)): reproduced with relative error 1.6e-16."""
    assert edge_of_chaos("relu", 0.0) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert float(second_moment("relu", 1.0)) == pytest.approx(0.5, rel=1e-15)
    with pytest.raises(ValueError):
        edge_of_chaos("relu", 0.05)


def test_leaky_relu_he_gain():
    """He et al. 2015, arXiv:1502.01852, eq. (15): (1 + a^2) Var W fan_in / 2 = 1 for leaky ReLU
    (and PReLU at its init): E[phi(z)^2] = (1 + a^2) / 2 to 1e-15 relative."""
    for a in (0.01, 0.2, 0.25):
        m2 = float(second_moment(get_activation("leaky_relu", negative_slope=a), 1.0))
        assert m2 == pytest.approx((1 + a * a) / 2, rel=1e-14)


def test_tanh_critical_points():
    """Poole et al. 2016, arXiv:1606.05340: the tanh order-to-chaos line starts at
    (sigma_b, sigma_w) = (0, 1) (reproduced exactly). Schoenholz et al. 2017, arXiv:1611.01232,
    work at sigma_b^2 = 0.05, where the critical point is quoted as sigma_w^2 ~ 1.76 (value as
    recalled from the paper; its full text could not be re-read offline): computed 1.760955,
    relative error 5.4e-4, within the two printed decimals."""
    assert edge_of_chaos("tanh", 0.0) == pytest.approx(1.0, rel=1e-14)
    assert edge_of_chaos("tanh", math.sqrt(0.05)) ** 2 == pytest.approx(1.76, abs=0.005)


def test_erf_edge_of_chaos_closed_form():
    """Williams 1997 erf kernel: chi_1(q*=0) = sigma_w^2 erf'(0)^2 = 1 gives sigma_w =
    sqrt(pi) / 2 at sigma_b = 0 (relative error 2.2e-16)."""
    assert edge_of_chaos("erf", 0.0) == pytest.approx(math.sqrt(math.pi) / 2, rel=1e-15)


def test_elu_has_an_edge_of_chaos_curve_and_relu_does_not():
    """Hayou et al. 2019, arXiv:1902.06853, Sec. 4: unlike ReLU-like activations, ELU (and tanh)
    have an edge-of-chaos curve: a stable critical point for every sigma_b > 0, with sigma_w
    increasing in sigma_b and tending to 1 (ELU's slope at 0) as sigma_b -> 0."""
    sw = [edge_of_chaos("elu", sb) for sb in (1e-5, 0.1, 0.5, 1.0)]
    assert np.all(np.diff(sw) > 0)
    assert sw[0] == pytest.approx(1.0, abs=0.005)  # 1.0021 at sigma_b = 1e-5 (~ sqrt(q*))
