"""Layer geometry used by the calibration walk.

A calibrated layer is a module with a ``weight`` parameter of two or more dimensions whose output
is one tensor of "units": ``Linear`` / ``SparseLinear`` / ``Bilinear`` / ``Embedding`` /
``EmbeddingBag`` (units last) and ``ConvNd`` / ``ConvTransposeNd`` (units = channels, dim 1).
Per-unit operations (sign flip, re-draw, shrink) need the weight axis that indexes the units:
0 for ``Linear``/``Conv``, 1 for ``Embedding(Bag)`` and ``ConvTranspose``; for other modules the
axis whose length equals the number of units.
"""

from __future__ import annotations

import torch
from torch import nn

from initwise.layers import layer_type
from initwise.measure import own_bias as bias_of
from initwise.measure import own_weight as weight_of
from initwise.schemes.fans import fans

__all__ = ["CALIBRATED_KINDS", "bias_of", "fan_in", "n_lookup_rows", "unit_axis",
           "weight_of"]

CALIBRATED_KINDS = ("linear", "conv", "conv_transpose", "embedding", "embedding_bag", "bilinear")


def unit_axis(module: nn.Module, weight: torch.Tensor, n_units: int) -> int | None:
    """The weight axis indexing output units (:meth:`initwise.layers.LayerType.axis`), or, for
    an unregistered type, the one axis whose length is ``n_units``; ``None`` if it cannot be
    told."""
    t = layer_type(module)
    if t is not None and t.unit_axis is not None:
        return t.axis(module)
    axes = [i for i in range(2) if weight.shape[i] == n_units]
    if len(axes) == 1:
        return axes[0]
    return None


def n_lookup_rows(module: nn.Module, weight: torch.Tensor, n_units: int) -> int:
    """The number of possible input features (table rows / input columns) of a layer."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return module.num_embeddings
    n_in = getattr(module, "in_features", None)
    if isinstance(n_in, int):
        return n_in
    axis = unit_axis(module, weight, n_units)
    return int(weight.shape[1 - axis]) if axis is not None and weight.dim() == 2 else 0


def fan_in(module: nn.Module, weight: torch.Tensor, n_units: int) -> int:
    """Fan-in for a re-draw: ``initwise.schemes.fans`` when it knows the module, else shape."""
    try:
        return max(int(fans(module).fan_in), 1)
    except Exception:  # noqa: BLE001 - any failure: fall back to the shape rule below
        axis = unit_axis(module, weight, n_units) or 0
        return max(weight.numel() // max(weight.shape[axis], 1), 1)
