"""Input standardization carried by a layer (buffers + forward pre-hook)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from initwise.nn import (
    add_input_standardization,
    bake_input_standardization,
    has_input_standardization,
    remove_input_standardization,
)
from initwise.nn.standardize import INV_SCALE, SHIFT


def _layer(kind: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "linear":
        return nn.Linear(3, 4).double(), torch.randn(5, 3, dtype=torch.float64) * 100 + 7
    return nn.Conv1d(3, 4, 2).double(), torch.randn(5, 3, 6, dtype=torch.float64) * 100 + 7


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_layer_computes_on_standardized_input_and_bakes_exactly(kind):
    layer, x = _layer(kind)
    ref = copy.deepcopy(layer)
    m, r = torch.tensor([7.0, -1.0, 3.0]), torch.tensor([0.01, 2.0, 0.5])
    add_input_standardization(layer, m, r)
    shape = (-1,) + (1,) * (x.dim() - 2)
    twin = ref((x - m.double().reshape(shape)) * r.double().reshape(shape))  # slow twin
    torch.testing.assert_close(layer(x), twin)
    assert layer(input=x).shape == twin.shape  # keyword input too
    bake_input_standardization(layer)
    assert not has_input_standardization(layer) and not layer._forward_pre_hooks
    torch.testing.assert_close(layer(x), twin)


def test_gradients_are_those_of_training_on_standardized_data():
    layer, x = _layer("linear")
    ref = copy.deepcopy(layer)
    m, s = x.mean(0), x.std(0)
    add_input_standardization(layer, m, 1 / s)
    layer(x).pow(2).sum().backward()
    ref((x - m) / s).pow(2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad)


def test_state_dict_deepcopy_pickle_and_to_keep_it():
    layer, x = _layer("linear")
    add_input_standardization(layer, torch.full((3,), 7.0), torch.full((3,), 0.01))
    out = layer(x)
    assert {SHIFT, INV_SCALE} <= set(layer.state_dict())
    torch.testing.assert_close(copy.deepcopy(layer)(x), out)
    buf = io.BytesIO()
    torch.save(layer, buf)
    buf.seek(0)
    torch.testing.assert_close(torch.load(buf, weights_only=False)(x), out)
    fresh = nn.Linear(3, 4).double()
    add_input_standardization(fresh, torch.zeros(3), torch.ones(3))
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x), out)
    assert layer.float()._buffers[SHIFT].dtype == torch.float32


def test_remove_and_errors():
    layer, x = _layer("linear")
    plain = layer(x)
    add_input_standardization(layer, torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="already has one"):
        add_input_standardization(layer, torch.ones(3), torch.ones(3))
    remove_input_standardization(layer)
    torch.testing.assert_close(layer(x), plain)
    with pytest.raises(ValueError, match="none to remove"):
        remove_input_standardization(layer)
    with pytest.raises(ValueError, match="3 values"):
        add_input_standardization(layer, torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="positive"):
        add_input_standardization(layer, torch.ones(3), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="nn.Linear or nn.ConvNd"):
        add_input_standardization(nn.Embedding(3, 2), torch.ones(3), torch.ones(3))
    nobias = nn.Linear(3, 2, bias=False)
    add_input_standardization(nobias, torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="no bias"):
        bake_input_standardization(nobias)
