"""initwise.activations: names, modules, torch functions and callables -> ActivationSpec."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initwise.activations import ActivationSpec, known_activations, resolve_activation

X = np.linspace(-5.0, 5.0, 201)


@pytest.mark.parametrize("name", known_activations())
def test_numpy_twin_matches_torch_function(name):
    spec = resolve_activation(name)
    assert isinstance(spec, ActivationSpec) and spec.torch_fn is not None
    with torch.no_grad():
        want = spec.torch_fn(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(spec.np_fn(X), want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", known_activations())
def test_numpy_derivative_matches_autograd_away_from_kinks(name):
    spec = resolve_activation(name)
    x = torch.from_numpy(X.copy()).requires_grad_(True)
    (g,) = torch.autograd.grad(spec.torch_fn(x).sum(), x)
    mask = np.ones_like(X, dtype=bool)
    for k in spec.np_activation.kinks:
        mask &= np.abs(X - k) > 1e-9
    # torch's float64 hardsigmoid backward multiplies by the float32 constant 1/6
    rtol = 1e-7 if name == "hardsigmoid" else 1e-10
    np.testing.assert_allclose(spec.np_deriv(X)[mask], g.numpy()[mask], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("module,name,params", [
    (nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
    (nn.ELU(alpha=0.5), "elu", {"alpha": 0.5}),
    (nn.CELU(alpha=2.0), "celu", {"alpha": 2.0}),
    (nn.GELU(approximate="tanh"), "gelu_tanh", {"approximate": "tanh"}),
    (nn.PReLU(init=0.1), "prelu", {"init": pytest.approx(0.1)}),
    (nn.Softplus(beta=2.0, threshold=10.0), "softplus", {"beta": 2.0, "threshold": 10.0}),
    (nn.Hardtanh(-2.0, 3.0), "hardtanh", {"min_val": -2.0, "max_val": 3.0}),
    (nn.ReLU6(), "relu6", {}),
    (nn.Identity(), "identity", {}),
])
def test_module_parameters_are_read(module, name, params):
    spec = resolve_activation(module)
    assert spec.name == name and spec.params == params and spec.torch_fn is module


@pytest.mark.parametrize("fn,name", [(F.relu, "relu"), (torch.relu, "relu"),
                                     (torch.Tensor.relu, "relu"), (torch.tanh, "tanh"),
                                     (torch.sigmoid, "sigmoid"), (F.gelu, "gelu"),
                                     (F.silu, "silu"), (F.mish, "mish"), (F.elu, "elu"),
                                     (F.hardswish, "hardswish"), (F.relu6, "relu6"),
                                     (F.logsigmoid, "logsigmoid"), (torch.sin, "sin")])
def test_torch_functions(fn, name):
    assert resolve_activation(fn).name == name


def test_torch_function_parameters():
    assert resolve_activation(F.leaky_relu, negative_slope=0.3).params == {"negative_slope": 0.3}
    assert resolve_activation(F.gelu, approximate="tanh").name == "gelu_tanh"


def test_aliases_and_flags():
    assert resolve_activation("swish").name == "silu"
    assert resolve_activation("LeakyReLU").name == "leaky_relu"
    relu, tanh, sig = (resolve_activation(n) for n in ("relu", "tanh", "sigmoid"))
    assert relu.relu_family and relu.nonnegative and not relu.saturating
    assert tanh.saturating and not tanh.nonnegative and not tanh.relu_family
    assert sig.saturating and sig.nonnegative


def test_custom_callables_torch_and_numpy():
    spec = resolve_activation(lambda x: x * torch.sigmoid(x), name="my_swish")
    assert spec.name == "my_swish" and spec.np_activation.exact_derivatives
    np.testing.assert_allclose(spec.np_fn(X), resolve_activation("silu").np_fn(X), rtol=1e-14)
    np.testing.assert_allclose(spec.np_deriv(X), resolve_activation("silu").np_deriv(X),
                               rtol=1e-12, atol=1e-14)
    clipped = resolve_activation(lambda x: np.clip(x, 0.0, None) ** 2)  # numpy only
    assert clipped.relu_family and clipped.nonnegative and not clipped.saturating

    class Square(nn.Module):
        def forward(self, x):
            return torch.where(x > 0, x * x, torch.zeros_like(x))

    mod = Square()
    spec = resolve_activation(mod, kinks=(0.0,))
    assert spec.np_activation.kinks == (0.0,) and spec.torch_fn is mod


def test_custom_module_is_not_modified():
    prelu = nn.PReLU(num_parameters=3, init=0.2)
    before = prelu.weight.detach().clone()
    resolve_activation(prelu)
    assert prelu.weight.dtype == torch.float32 and torch.equal(prelu.weight, before)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="Known: .*relu"):
        resolve_activation("rleu")
    with pytest.raises(TypeError, match="expected an activation name"):
        resolve_activation(3.0)
    with pytest.raises(ValueError, match="read from the module"):
        resolve_activation(nn.LeakyReLU(), negative_slope=0.1)
    with pytest.raises(ValueError, match="only name= and kinks="):
        resolve_activation(lambda x: x, alpha=1.0)
