"""Layer geometry and activation facts used by the calibration walk.

A calibrated layer is a module with a ``weight`` parameter of two or more dimensions whose output
is one tensor of "units": ``Linear`` / ``SparseLinear`` / ``Bilinear`` / ``Embedding`` /
``EmbeddingBag`` (units last) and ``ConvNd`` / ``ConvTransposeNd`` (units = channels, dim 1).
Per-unit operations (sign flip, re-draw, shrink) need the weight axis that indexes the units:
0 for ``Linear``/``Conv``, 1 for ``Embedding(Bag)`` and ``ConvTranspose``; for other modules the
axis whose length equals the number of units.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ActInfo", "act_info", "bias_of", "unit_axis", "unit_dim", "weight_of"]

CALIBRATED_KINDS = ("linear", "conv", "conv_transpose", "embedding", "embedding_bag", "bilinear")
LOOKUP_KINDS = ("embedding", "embedding_bag")
# a unit is "saturated" on a sample where the activation's slope is below this fraction of its
# largest slope (tanh: |z| > 1.82; sigmoid: |z| > 3.64).
SATURATION_SLOPE = 0.1


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """The module's own ``weight`` parameter if it has >= 2 dimensions, else ``None``."""
    w = module._parameters.get("weight")
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None


def unit_dim(kind: str) -> int:
    """The output dimension that indexes units: 1 for convolutions, else -1."""
    return 1 if kind in ("conv", "conv_transpose") else -1


def unit_axis(module: nn.Module, weight: torch.Tensor, n_units: int) -> int | None:
    """The weight axis indexing output units, or ``None`` if it cannot be told."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return 1
    if _is_sparse_linear(module):
        return 1  # stored (in_features, out_features)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1 if module.groups == 1 else None
    if isinstance(module, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)):
        return 0
    axes = [i for i in range(2) if weight.shape[i] == n_units]
    if len(axes) == 1:
        return axes[0]
    return None


def _is_sparse_linear(module: nn.Module) -> bool:
    try:
        from initwise.nn import SparseLinear
    except ImportError:  # pragma: no cover - initwise.nn ships with initwise
        return False
    return isinstance(module, SparseLinear)


def bias_of(module: nn.Module, n_units: int) -> torch.Tensor | None:
    """The module's ``bias`` parameter if it holds one value per unit."""
    b = module._parameters.get("bias")
    if isinstance(b, torch.Tensor) and b.dim() == 1 and b.numel() == n_units:
        return b
    return None


@dataclass(frozen=True)
class ActInfo:
    """What calibration needs to know about the activation that follows a layer.

    Attributes:
        name: activation name, ``None`` for a linear layer.
        relu_family: units can die (zero on a half-line).
        saturating: bounded activation whose units can saturate.
        gain: variance gain ``1/sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)``.
        sat_threshold: ``|z|`` beyond which the slope is below ``SATURATION_SLOPE`` of its max.
    """

    name: str | None
    relu_family: bool = False
    saturating: bool = False
    gain: float = 1.0
    sat_threshold: float | None = None


@functools.lru_cache(maxsize=1)
def _gauss_nodes() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.hermite_e.hermegauss(80)


def _gauss_second_moment(fn: Any) -> float:
    x, w = _gauss_nodes()
    return float(np.sum(w * np.asarray(fn(x), dtype=np.float64) ** 2) / math.sqrt(2 * math.pi))


def _sat_threshold(fn: Any) -> float | None:
    z = np.linspace(0.0, 12.0, 2401)
    h = 1e-4
    slope = np.abs((np.asarray(fn(z + h)) - np.asarray(fn(z - h))) / (2 * h))
    below = np.nonzero(slope < SATURATION_SLOPE * slope.max())[0]
    return float(z[below[0]]) if below.size else None


def act_info(node: Any) -> ActInfo:
    """Activation facts for a graph ``LayerNode`` (``ActInfo(None)`` when none follows)."""
    if node.activation is None and node.activation_fn is None:
        return ActInfo(None)
    from initwise.activations import resolve_activation

    try:
        spec = resolve_activation(node.activation_fn or node.activation)
    except (ValueError, TypeError):
        spec = resolve_activation(node.activation)
    fn = spec.np_fn
    m2 = _gauss_second_moment(fn)
    gain = 1.0 / math.sqrt(m2) if m2 > 0 else 1.0
    thr = _sat_threshold(fn) if spec.saturating else None
    return ActInfo(spec.name, bool(spec.relu_family), bool(spec.saturating), gain, thr)


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
        from initwise.schemes.fans import fans

        return max(int(fans(module).fan_in), 1)
    except Exception:  # noqa: BLE001 - any failure: fall back to the shape rule below
        axis = unit_axis(module, weight, n_units) or 0
        return max(weight.numel() // max(weight.shape[axis], 1), 1)
