"""Where a model's layers sit on the mean-field phase diagram (plain data for the renderers).

The bridge between a model, the theory engine and the report: it reads a model (never changes
it), calls :mod:`initwise.theory`, and hands :mod:`initwise.report` a finished
:class:`~initwise.report.PhaseDiagram` (:func:`phase_diagram`), so the renderers never touch a
model or the theory. :func:`phase_points`: for each layer with a weight matrix it returns
``sigma_w = std(W) * sqrt(fan_in)`` and ``sigma_b = std(b)`` (``|b|`` for a single bias, 0
without one) -- the coordinates of the mean-field theory (weights ``N(0, sigma_w^2 / fan_in)``,
biases ``N(0, sigma_b^2)``) -- and the activation that follows the layer.

References:
    Poole et al. 2016, "Exponential expressivity in deep neural networks through transient
    chaos", arXiv:1606.05340. Schoenholz et al. 2017, "Deep information propagation",
    arXiv:1611.01232.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from initwise.graph import trace
from initwise.report.page import PhaseDiagram
from initwise.schemes.fans import fans
from initwise.theory import critical_line

__all__ = ["HOMOGENEOUS", "critical_curve", "dominant_activation", "phase_diagram",
           "phase_points"]

# Positively homogeneous activations (phi(a z) = a phi(z), a > 0).
HOMOGENEOUS = frozenset({"relu", "leaky_relu", "prelu", "identity", "linear"})

_ACT_MODULES = {
    "ReLU": "relu", "LeakyReLU": "leaky_relu", "GELU": "gelu", "SiLU": "silu", "Tanh": "tanh",
    "SELU": "selu", "ELU": "elu", "CELU": "celu", "Sigmoid": "sigmoid", "Mish": "mish",
    "Softplus": "softplus", "Hardtanh": "hardtanh", "ReLU6": "relu6", "Hardswish": "hardswish",
    "Softsign": "softsign",
}


def _name(module: nn.Module) -> str:
    return getattr(module, "original_name", None) or type(module).__name__


def _fan_in(module: nn.Module, weight: torch.Tensor) -> int:
    try:
        return int(fans(module).fan_in)
    except Exception:  # fans() may not know a custom module: torch's layout rule
        return int(weight[0].numel()) if weight.dim() > 1 else 1


def _activations_by_order(model: nn.Module) -> dict[str, str | None]:
    """Activation after each parametrized module, read from module registration order."""
    result: dict[str, str | None] = {}
    pending: str | None = None
    for name, module in model.named_modules():
        act = _ACT_MODULES.get(_name(module))
        if act is not None and pending is not None:
            result[pending] = act
            pending = None
        elif isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.dim() >= 2:
            pending = name
            result[name] = None
    return result


def _activations_by_trace(model: nn.Module, inputs: Any) -> dict[str, str | None] | None:
    try:
        graph = trace(model, inputs)
        return {node.name: node.activation for node in graph.layers}
    except Exception:  # tracing is best effort here; registration order is the fallback
        return None


def phase_points(model: nn.Module, inputs: Any = None) -> list[dict[str, Any]]:
    """The (sigma_w, sigma_b) coordinates of every weight-matrix layer, in model order.

    Args:
        model: the model (read only).
        inputs: a batch's inputs; when given, :func:`initwise.graph.trace` finds the activation
            after each layer (functional ones too); else module registration order is used.

    Returns:
        A list of dicts: ``name``, ``kind`` (class name), ``sigma_w``, ``sigma_b``,
        ``activation`` (or ``None``), ``fan_in``, ``role`` ("input", "hidden" or "output").
    """
    acts = (_activations_by_trace(model, inputs) if inputs is not None else None) or \
        _activations_by_order(model)
    points: list[dict[str, Any]] = []
    with torch.no_grad():
        for name, module in model.named_modules():
            w = getattr(module, "weight", None)
            if not isinstance(w, torch.Tensor) or w.dim() < 2 or w.numel() < 2 or w.is_meta:
                continue
            fan_in = _fan_in(module, w)
            b = getattr(module, "bias", None)
            if isinstance(b, torch.Tensor) and b.numel() > 1:
                sigma_b = float(b.float().std())
            elif isinstance(b, torch.Tensor) and b.numel() == 1:
                sigma_b = float(b.float().abs())
            else:
                sigma_b = 0.0
            points.append({
                "name": name, "kind": _name(module), "fan_in": fan_in,
                "sigma_w": float(w.float().std()) * math.sqrt(fan_in), "sigma_b": sigma_b,
                "activation": acts.get(name), "role": "hidden",
            })
    if points:
        points[0]["role"] = "input"
        if len(points) > 1:
            points[-1]["role"] = "output"
    return points


def critical_curve(activation: str, sigma_b: list[float]) -> list[float | None] | None:
    """sigma_w on the edge of chaos for each sigma_b (``initwise.theory.critical_line``).

    Returns:
        One sigma_w per sigma_b (``None`` where the theory has none), or ``None`` when the theory
        engine does not know the activation.
    """
    try:
        line = critical_line(activation, sigma_b)
    except (ValueError, TypeError):
        return None
    values = getattr(line, "sigma_w", line)
    if isinstance(values, tuple) and len(values) == 2:  # (sigma_b, sigma_w) pair
        values = values[1]
    out: list[float | None] = []
    for v in list(values):
        f = float(v) if v is not None else math.nan
        out.append(f if math.isfinite(f) else None)
    if len(out) != len(sigma_b):
        return None
    finite = [(w, b) for w, b in zip(out, sigma_b) if w is not None]
    if activation in HOMOGENEOUS and len(finite) == 1 and finite[0][1] == 0:
        # phi(a z) = a phi(z): chi_1 = sigma_w^2 E[phi'(z)^2] does not depend on q, so the
        # order/chaos boundary is the vertical line through the sigma_b = 0 critical point
        # (for sigma_b > 0 the variance map has no finite fixed point on it).
        out = [finite[0][0]] * len(sigma_b)
    return out


def dominant_activation(points: Sequence[dict[str, Any]]) -> str | None:
    """The most common activation among the non-output layers (``None`` if there is none)."""
    acts = [p.get("activation") for p in points if p.get("role") != "output"]
    acts = [a for a in acts if a]
    return max(set(acts), key=acts.count) if acts else None


def phase_diagram(points: Sequence[dict[str, Any]],
                  points_before: Sequence[dict[str, Any]] | None = None,
                  *, grid: int = 120) -> PhaseDiagram:
    """The phase diagram of ``points`` (and ``points_before``): extent and the critical line.

    The line is drawn for the dominant hidden activation on ``grid + 1`` sigma_b values from 0
    to the plot's top (:func:`critical_curve`).

    Args:
        points: layer coordinates (:func:`phase_points`).
        points_before: the same before a change, or ``None``.
        grid: sigma_b intervals of the line. Defaults to 120.

    Returns:
        The :class:`~initwise.report.PhaseDiagram` that :func:`initwise.report.render_html`
        draws (from a :class:`~initwise.report.Page`).

    Example:
        >>> pts = [{"name": "0", "kind": "Linear", "fan_in": 8, "sigma_w": 1.4, "sigma_b": 0.0,
        ...         "activation": "relu", "role": "hidden"}]
        >>> round(phase_diagram(pts).sigma_w[0], 4)
        1.4142
    """
    points = list(points)
    before = list(points_before) if points_before else None
    if not points:
        return PhaseDiagram(points=points, points_before=before)
    act = dominant_activation(points)
    every = points + (before or [])
    xmax = max(3.0, 1.1 * max(p["sigma_w"] for p in every))
    ymax = max(0.5, 1.15 * max(p["sigma_b"] for p in every))
    sbs = [ymax * i / grid for i in range(grid + 1)]
    crit = critical_curve(act, sbs) if act else None
    return PhaseDiagram(points=points, points_before=before, activation=act, sigma_b=sbs,
                        sigma_w=crit, homogeneous=act in HOMOGENEOUS, xmax=xmax, ymax=ymax)
