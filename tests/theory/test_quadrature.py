"""Quadrature accuracy: Gauss-Hermite, kink-split rules, the Cholesky-rotated 2-D rule."""

import math

import numpy as np
import pytest

from initwise.theory import get_activation, second_moment
from initwise.theory._common import expect
from initwise.theory.quadrature import bivariate_expect, gauss_hermite, normal_expect

SMOOTH = ["tanh", "sigmoid", "gelu", "gelu_tanh", "silu", "mish", "erf", "sin", "logsigmoid"]
KINKED = ["relu", "leaky_relu", "elu", "selu", "hardtanh", "relu6", "hardswish", "hardsigmoid",
          "softsign", "celu", "softplus"]


def test_gauss_hermite_integrates_polynomials_exactly():
    x, w = gauss_hermite(10)
    for k in range(0, 20):
        exact = 0.0 if k % 2 else float(np.prod(np.arange(k - 1, 0, -2)))
        scale = float(np.prod(np.arange(k + (k % 2) - 1, 0, -2)))  # size of nearby moments
        assert abs(float(w @ x**k) - exact) <= 1e-13 * scale


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("q", [0.3, 1.0, 20.0])
def test_smooth_second_moment_matches_quadpack_to_1e10(ref, name, q):
    """Issue 3: adaptive order reaches 1e-10 absolute on smooth activations (at small and
    large q, where Gauss-Hermite hands over to the graded composite rule)."""
    act = get_activation(name)
    got = float(second_moment(act, q))
    want = ref.quad_expect(lambda u: act.fn(u) ** 2, q, (0.0,))
    assert abs(got - want) <= 1e-10 * max(1.0, abs(want))


@pytest.mark.parametrize("name", KINKED)
@pytest.mark.parametrize("q", [0.01, 1.0, 50.0])
def test_kinked_second_moment_matches_quadpack(ref, name, q):
    """Kinks are split exactly: kinked activations reach the same 1e-10 (documented)."""
    act = get_activation(name)
    got = float(second_moment(act, q))
    want = ref.quad_expect(lambda u: act.fn(u) ** 2, q, act.kinks)
    assert abs(got - want) <= 1e-10 * max(1.0, abs(want))


def test_kinked_closed_forms_to_machine_precision():
    """E[relu(sqrt(q) z)^2] = q/2; E[hardtanh(z)^2] and E[relu6(z)^2] in closed form."""
    from scipy.special import ndtr

    pdf1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    hard = (2 * ndtr(1.0) - 1 - 2 * pdf1) + 2 * (1 - ndtr(1.0))
    pdf6 = math.exp(-18.0) / math.sqrt(2 * math.pi)
    relu6 = (ndtr(6.0) - 0.5 - 6 * pdf6) + 36 * (1 - ndtr(6.0))
    assert abs(float(second_moment("relu", 7.0)) - 3.5) < 1e-13
    assert abs(float(second_moment("hardtanh", 1.0)) - hard) < 1e-14
    assert abs(float(second_moment("relu6", 1.0)) - relu6) < 1e-14


def test_q_zero_is_the_limit_of_one_sided_values():
    relu = get_activation("relu")
    assert float(expect(relu, lambda u: relu.deriv(u) ** 2, 0.0)) == 0.5
    assert float(second_moment("tanh", 0.0)) == 0.0


def test_normal_expect_batches_converge_independently():
    r = np.array([0.5, 1.0, 3.0])
    got = normal_expect(lambda z, rows: np.cos(r[rows, None] * z), 3)
    np.testing.assert_allclose(got, np.exp(-0.5 * r**2), atol=1e-14)


@pytest.mark.parametrize("c", [-1.0, -0.7, 0.0, 0.4, 0.95, 1 - 1e-6, 1 - 1e-12, 1.0])
@pytest.mark.parametrize("q", [0.5, 3.0])
def test_bivariate_relu_matches_arccos_kernel(ref, c, q):
    """Cho & Saul 2009 arc-cosine kernel, including c -> 1 and c = 1 exactly."""
    relu = get_activation("relu")
    got = float(bivariate_expect(relu.fn, relu.fn, q, q, c, (0.0,), (0.0,)))
    assert abs(got - float(ref.relu_kernel(c, q))) < 1e-12 * q


@pytest.mark.parametrize("c", [-0.9, 0.0, 0.5, 0.999, 1.0])
def test_bivariate_erf_matches_williams_kernel(ref, c):
    """Williams 1997: E[erf(u1) erf(u2)] = (2/pi) arcsin(2 c q / (1 + 2 q))."""
    erf = get_activation("erf")
    for q in (0.2, 2.0, 30.0):
        got = float(bivariate_expect(erf.fn, erf.fn, q, q, c))
        assert abs(got - float(ref.erf_kernel(c, q))) < 1e-10


@pytest.mark.parametrize("name,c", [("hardtanh", 0.3), ("hardtanh", 0.99), ("selu", -0.5),
                                    ("hardswish", 0.8), ("tanh", 0.6)])
def test_bivariate_matches_nested_quadpack(ref, name, c):
    act = get_activation(name)
    q = 1.7
    got = float(bivariate_expect(act.fn, act.fn, q, q, c, act.kinks, act.kinks))
    want = ref.quad_expect2(act.fn, act.fn, q, c, act.kinks)
    assert abs(got - want) < 1e-9
