"""initwise.schemes.gains: variance gains for any activation, torch's legacy table."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate
from torch import nn

from initwise.activations import known_activations, resolve_activation
from initwise.schemes.gains import format_gain_table, gain, gain_table


def _quadpack_gain(fn, kinks) -> float:
    """High-precision twin: 1/sqrt(E[phi(z)^2]) by QUADPACK split at the kinks."""
    edges = [-14.0, *sorted(k for k in kinks if abs(k) < 14), 14.0]
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    m2 = sum(integrate.quad(lambda z: float(fn(np.array(z))) ** 2 * pdf(z), a, b,
                            epsabs=1e-15, epsrel=1e-13, limit=400)[0]
             for a, b in zip(edges[:-1], edges[1:]))
    return 1.0 / math.sqrt(m2)


def test_closed_forms():
    assert gain("relu") == pytest.approx(math.sqrt(2.0), rel=1e-14)
    assert gain("identity") == pytest.approx(1.0, rel=1e-14)
    assert gain("linear") == pytest.approx(1.0, rel=1e-14)
    assert gain("leaky_relu", negative_slope=0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-14)
    assert gain("prelu") == pytest.approx(math.sqrt(2 / (1 + 0.25**2)), rel=1e-14)
    assert gain("selu") == pytest.approx(1.0, rel=1e-14)  # Klambauer et al.: unit variance
    assert gain("sin") == pytest.approx(1 / math.sqrt((1 - math.exp(-2)) / 2), rel=1e-13)


@pytest.mark.parametrize("name", known_activations())
def test_every_gain_matches_quadpack_to_1e8(name):
    act = resolve_activation(name).np_activation
    assert gain(name) == pytest.approx(_quadpack_gain(act.fn, act.kinks), rel=1e-10)


@pytest.mark.parametrize("module,name", [
    (nn.ReLU(), "relu"), (nn.LeakyReLU(0.3), None), (nn.GELU(), "gelu"),
    (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.SiLU(), "silu"), (nn.Mish(), "mish"),
    (nn.ELU(alpha=0.5), None), (nn.CELU(alpha=2.0), None), (nn.Softplus(beta=2.0), None),
    (nn.Hardtanh(-2.0, 2.0), None), (nn.ReLU6(), "relu6"), (nn.Hardswish(), "hardswish"),
    (nn.PReLU(init=0.1), None), (nn.Tanh(), "tanh"), (nn.Sigmoid(), "sigmoid"),
])
def test_modules_match_torch_evaluated_twin(module, name):
    """The module's own forward, evaluated in float64 on a fine grid, gives the same gain."""
    z = torch.linspace(-12, 12, 480001, dtype=torch.float64)
    with torch.no_grad():
        y = module.double()(z) if not isinstance(module, nn.PReLU) else module.double()(z)
    dens = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    m2 = torch.trapezoid(y * y * dens, z).item()
    assert gain(module) == pytest.approx(1 / math.sqrt(m2), rel=1e-8)
    if name is not None:
        assert gain(module) == pytest.approx(gain(name), rel=1e-14)


def test_functions_and_callables():
    assert gain(F.silu) == pytest.approx(gain("silu"), rel=1e-14)
    assert gain(torch.tanh) == pytest.approx(gain("tanh"), rel=1e-14)
    custom = gain(lambda x: x * torch.sigmoid(x))
    assert custom == pytest.approx(gain("silu"), rel=1e-10)
    assert gain(np.tanh) == pytest.approx(gain("tanh"), rel=1e-10)


def test_torch_mode_is_torchs_table():
    for name in ("relu", "tanh", "sigmoid", "selu", "linear"):
        torch_name = "linear" if name == "linear" else name
        assert gain(name, mode="torch") == torch.nn.init.calculate_gain(torch_name)
    assert gain("leaky_relu", mode="torch", negative_slope=0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))
    assert gain(nn.LeakyReLU(0.3), mode="torch") == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.3))


def test_torch_mode_raises_where_torch_has_no_gain():
    with pytest.raises(ValueError, match="mode='variance'"):
        gain("gelu", mode="torch")


def test_bad_input():
    with pytest.raises(ValueError, match="unknown mode"):
        gain("relu", mode="fan_in")
    with pytest.raises(ValueError, match="Known"):
        gain("relux")
    with pytest.raises(ValueError, match="unknown parameter"):
        gain("relu", negative_slope=0.1)


def test_gain_table_covers_every_activation():
    rows = gain_table()
    assert [r["name"] for r in rows] == known_activations()
    by_name = {r["name"]: r for r in rows}
    assert by_name["gelu"]["torch_gain"] is None and by_name["gelu"]["note"] == "unsupported"
    assert by_name["tanh"]["torch_gain"] == pytest.approx(5 / 3)
    assert by_name["relu"]["variance_gain"] == pytest.approx(math.sqrt(2))
    text = format_gain_table(rows)
    assert "unsupported" in text and "silu" in text and len(text.splitlines()) == len(rows) + 3
