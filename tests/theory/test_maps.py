"""Length map, its slope, fixed points, chi_1 and phase: closed forms and slow twins."""

import math

import numpy as np
import pytest

from initwise.theory import (
    chi_1,
    derivative_moment,
    fixed_point,
    from_callable,
    phase,
    q_map,
    q_map_slope,
    second_moment,
)


def test_relu_q_map_and_chi_1_closed_forms():
    """ReLU: V(q) = sigma_w^2 q / 2 + sigma_b^2, chi_1 = sigma_w^2 / 2 (any q)."""
    q = np.array([0.1, 1.0, 7.5])
    np.testing.assert_allclose(q_map("relu", q, 1.3, 0.2), 1.69 * q / 2 + 0.04, rtol=1e-14)
    assert chi_1("relu", 1.3, 0.2) == pytest.approx(1.69 / 2, rel=1e-14)
    assert chi_1("relu", 2.0) == pytest.approx(2.0, rel=1e-14)  # q* = inf: same value


def test_linear_maps():
    assert float(q_map("identity", 2.0, 1.5, 0.5)) == pytest.approx(2.25 * 2 + 0.25, rel=1e-14)
    assert chi_1("identity", 0.9, 0.3) == pytest.approx(0.81, rel=1e-14)
    assert fixed_point("identity", 0.9, 0.3).q_star == pytest.approx(0.09 / (1 - 0.81))


def test_erf_q_map_closed_form():
    """Williams 1997: E[erf(u)^2] = (2/pi) arcsin(2q / (1 + 2q)); E[erf'(u)^2] = 4 / (pi
    sqrt(1 + 4q))."""
    q = np.array([0.05, 1.0, 12.0])
    np.testing.assert_allclose(second_moment("erf", q), 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)),
                               atol=1e-12)
    np.testing.assert_allclose(derivative_moment("erf", q), 4 / (np.pi * np.sqrt(1 + 4 * q)),
                               atol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "hardtanh", "selu", "silu", "relu6", "softsign",
                                  "hardswish", "gelu"])
@pytest.mark.parametrize("q", [0.2, 2.5])
def test_q_map_slope_matches_finite_difference_and_stein(name, q):
    """Three routes to V'(q): derivatives with delta terms at kinks, the derivative-free Stein
    form E[(z^2-1) phi^2]/(2q) (via a derivative-less twin), and a central difference."""
    slope = float(q_map_slope(name, q, 1.4))
    h = 1e-4 * q
    fd = (float(q_map(name, q + h, 1.4)) - float(q_map(name, q - h, 1.4))) / (2 * h)
    from initwise.theory import get_activation

    act = get_activation(name)
    twin = from_callable(act.fn, kinks=act.kinks)  # no exact derivatives: Stein's form
    stein = float(q_map_slope(twin, q, 1.4))
    assert slope == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert slope == pytest.approx(stein, rel=1e-9, abs=1e-11)


@pytest.mark.parametrize("name,sw,sb", [("tanh", 1.5, 0.05), ("tanh", 3.0, 1.0),
                                        ("hardtanh", 1.2, 0.1), ("selu", 1.0, 0.0),
                                        ("sigmoid", 4.0, 0.3), ("erf", 2.0, 0.5)])
def test_fixed_point_matches_plain_iteration(ref, name, sw, sb):
    fp = fixed_point(name, sw, sb)
    want = ref.iterate_fixed_point(lambda q: float(second_moment(name, q)), sw, sb, steps=400)
    assert fp.converged and fp.stable and fp.kind == "finite"
    assert fp.q_star == pytest.approx(want, rel=1e-10)
    assert float(q_map(name, fp.q_star, sw, sb)) == pytest.approx(fp.q_star, rel=1e-12)


def test_relu_family_above_criticality_has_no_finite_fixed_point():
    """Never a hang: q* = inf with a clear flag and message."""
    for sw, sb in [(2.0, 0.1), (math.sqrt(2.0), 0.1), (10.0, 0.0)]:
        fp = fixed_point("relu", sw, sb)
        assert fp.q_star == math.inf and fp.kind == "divergent" and not fp.stable
        assert "no finite fixed point" in fp.message
    fp = fixed_point("elu", 3.0, 0.5)  # asymptotically linear, not homogeneous: scan gives up
    assert fp.q_star == math.inf and fp.kind == "divergent"


def test_relu_critical_is_neutral_and_subcritical_closed_form():
    fp = fixed_point("relu", math.sqrt(2.0), 0.0, q0=3.0)
    assert fp.kind == "neutral" and fp.q_star == 3.0 and fp.v_prime == 1.0
    fp = fixed_point("relu", 1.0, 0.5)
    assert fp.q_star == pytest.approx(0.25 / (1 - 0.5), rel=1e-14) and fp.stable


def test_odd_activation_without_bias_shrinks_to_zero():
    fp = fixed_point("tanh", 0.8, 0.0)
    assert fp.q_star == 0.0 and fp.kind == "zero" and fp.v_prime == pytest.approx(0.64)


def test_phase_and_chi_1_for_tanh():
    assert phase("tanh", 0.8, 0.1) == "ordered"
    assert phase("tanh", 2.5, 0.1) == "chaotic"
    assert phase("tanh", 1.0, 0.0) == "critical"
    q = fixed_point("tanh", 2.5, 0.1).q_star
    assert chi_1("tanh", 2.5, 0.1) == pytest.approx(6.25 * float(derivative_moment("tanh", q)))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_sigmas_raise(bad):
    with pytest.raises(ValueError, match="sigma_w"):
        q_map("tanh", 1.0, bad)
    with pytest.raises(ValueError, match="sigma_b"):
        fixed_point("tanh", 1.0, bad)
