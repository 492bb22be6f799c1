"""Variance-scaling schemes: the variance each one promises, Keras' truncation, errors, gains."""

import math

import pytest
import torch
from torch import nn

import initwise.schemes as S
from initwise.schemes import Fans


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _check_var(t, expected, kurtosis):
    """Sample second moment within 6 standard errors: se = sqrt((kurtosis - 1) / n)."""
    n = t.numel()
    rel = 6 * math.sqrt((kurtosis - 1) / n)
    assert t.double().pow(2).mean().item() == pytest.approx(expected, rel=rel)
    assert abs(t.double().mean().item()) < 6 * math.sqrt(expected / n)


NORMAL, UNIFORM = 3.0, 1.8
TRUNC2 = 2.3633  # kurtosis of a standard normal truncated to [-2, 2]
SHAPES = [(300, 200), (64, 32, 3, 3), (128, 50, 7), (40, 8, 3, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_kaiming_xavier_lecun_variances(shape):
    f = S.tensor_fans(torch.empty(shape))
    t = torch.empty(shape)
    _check_var(S.kaiming_normal_(t, generator=_gen(1)), 2 / f.fan_in, NORMAL)
    _check_var(S.kaiming_uniform_(t, mode="fan_out", nonlinearity="tanh", generator=_gen(2)),
               (5 / 3) ** 2 / f.fan_out, UNIFORM)
    _check_var(S.xavier_normal_(t, 2.0, _gen(3)), 4 * 2 / (f.fan_in + f.fan_out), NORMAL)
    _check_var(S.xavier_uniform_(t, generator=_gen(4)), 2 / (f.fan_in + f.fan_out), UNIFORM)
    _check_var(S.lecun_normal_(t, _gen(5)), 1 / f.fan_in, TRUNC2)
    _check_var(S.lecun_uniform_(t, _gen(6)), 1 / f.fan_in, UNIFORM)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution,kurt", [("truncated_normal", TRUNC2), ("normal", NORMAL),
                                               ("untruncated_normal", NORMAL),
                                               ("uniform", UNIFORM)])
def test_variance_scaling_modes_and_distributions(mode, distribution, kurt):
    t = torch.empty(200, 120, 3)
    fan = {"fan_in": 360, "fan_out": 600, "fan_avg": 480}[mode]
    S.variance_scaling_(t, 3.0, mode, distribution, _gen(7))
    _check_var(t, 3.0 / fan, kurt)
    std = math.sqrt(3.0 / fan)
    if distribution == "truncated_normal":
        assert t.abs().max().item() <= 2 * std / S.KERAS_TRUNCATION_STD * (1 + 1e-6)
    if distribution == "uniform":
        assert t.abs().max().item() <= math.sqrt(3) * std * (1 + 1e-6)


def test_variance_scaling_fan_below_one_uses_one():
    t = S.variance_scaling_(torch.empty(50000), 1.0, generator=_gen(), fans=Fans(0, 3))
    _check_var(t, 1.0, TRUNC2)


def test_keras_truncation_correction_within_one_percent_on_a_million_samples():
    t = S.trunc_normal_keras_(torch.empty(10 ** 6), 0.0, 0.5, _gen(8))
    assert t.double().var().item() == pytest.approx(0.25, rel=0.01)
    assert t.abs().max().item() <= 2 * 0.5 / S.KERAS_TRUNCATION_STD
    # the constant is the std of N(0,1) truncated to [-2, 2] (closed form)
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert S.KERAS_TRUNCATION_STD == pytest.approx(math.sqrt(1 - 4 * phi2 / mass), rel=1e-12)
    # torch's semantics (std before truncation) give ~0.774 of the variance: the correction matters
    raw = S.trunc_normal_(torch.empty(10 ** 6), 0.0, 0.5, -1.0, 1.0, _gen(8))
    assert raw.double().var().item() == pytest.approx(0.25 * 0.8796 ** 2, rel=0.01)


def test_fans_override_changes_only_the_fan():
    t = torch.empty(30, 10)
    a = S.kaiming_normal_(t.clone(), generator=_gen(9), fans=Fans(40, 7))
    b = S.kaiming_normal_(t.clone(), generator=_gen(9))
    assert torch.allclose(a, b * math.sqrt(10 / 40))
    c = S.xavier_uniform_(torch.empty(5), generator=_gen(9), fans=Fans(4, 4))  # a bias, by fans
    assert c.abs().max().item() <= math.sqrt(6 / 8)


def test_zero_element_tensors_are_a_no_op():
    for fill in (S.kaiming_normal_, S.xavier_normal_, S.variance_scaling_, S.lecun_uniform_):
        assert fill(torch.empty(0, 4)).numel() == 0


def test_nonlinearity_beyond_torch_uses_the_variance_gain():
    from scipy import integrate, special

    # independent values: E[sin(z)^2] = (1 - e^-2) / 2; E[gelu(z)^2] by quadrature
    sin_gain = 1 / math.sqrt((1 - math.exp(-2)) / 2)
    gelu_m2, _ = integrate.quad(
        lambda z: (z * special.ndtr(z)) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
        -40, 40, epsabs=1e-13, epsrel=1e-13)
    for act, expected in [(torch.sin, sin_gain), ("gelu", gelu_m2 ** -0.5),
                          (nn.GELU(), gelu_m2 ** -0.5)]:
        assert S.resolve_gain(act) == pytest.approx(expected, rel=1e-7)
        t = S.kaiming_normal_(torch.empty(40, 25), nonlinearity=act, generator=_gen(10))
        ref = torch.empty(40, 25).normal_(0, S.resolve_gain(act) / math.sqrt(25),
                                          generator=_gen(10))
        assert torch.equal(t, ref)
    _check_var(S.kaiming_uniform_(torch.empty(400, 250), nonlinearity="silu", generator=_gen(11)),
               S.resolve_gain("silu") ** 2 / 250, UNIFORM)
    # torch's names keep torch's legacy value (contract), instances get the variance gain
    assert S.resolve_gain("tanh") == 5.0 / 3
    assert S.resolve_gain(nn.ReLU()) == pytest.approx(math.sqrt(2), rel=1e-8)
    with pytest.raises(ValueError, match=r"kaiming_normal_.*'not_an_activation'.*leaky_relu"):
        S.kaiming_normal_(torch.empty(3, 3), nonlinearity="not_an_activation")


def test_errors_list_valid_values():
    t = torch.empty(4, 4)
    with pytest.raises(ValueError, match=r"mode 'fan_sum'.*\['fan_in', 'fan_out'\]"):
        S.kaiming_uniform_(t, mode="fan_sum")
    with pytest.raises(ValueError, match=r"mode 'fan_avg'.*\['fan_in', 'fan_out'\]"):
        S.kaiming_normal_(t, mode="fan_avg")  # fan_avg is a variance_scaling_ mode only
    with pytest.raises(ValueError, match=r"'fan_in', 'fan_out', 'fan_avg'"):
        S.variance_scaling_(t, mode="avg")
    with pytest.raises(ValueError, match=r"distribution 'gaussian'.*truncated_normal.*uniform"):
        S.variance_scaling_(t, distribution="gaussian")
    with pytest.raises(ValueError, match="scale must be > 0"):
        S.variance_scaling_(t, scale=0.0)
    with pytest.raises(ValueError, match=r"kaiming_normal_.*shape \(4,\).*fans="):
        S.kaiming_normal_(torch.empty(4))
    with pytest.raises(ValueError, match=r"xavier_uniform_.*shape \(4,\)"):
        S.xavier_uniform_(torch.empty(4))
    with pytest.raises(ValueError, match="only used with nonlinearity='leaky_relu'"):
        S.kaiming_normal_(t, a=0.2, nonlinearity="gelu")
    with pytest.raises(TypeError, match="fans must be a Fans"):
        S.kaiming_normal_(t, fans=(4, 4, 1))
    with pytest.raises(ValueError, match="fan_in is 0"):
        S.kaiming_normal_(t, fans=Fans(0, 4))
    with pytest.raises(ValueError, match="std > 0"):
        S.trunc_normal_(t, std=0.0)
