"""Which modules the doctor probes, and what nonlinearity follows each one.

The plan comes from :func:`initwise.graph.trace` (execution order, the activation applied to each
layer's output, module or functional, the norm that follows, residual branches). When the graph
tracer is not importable or fails on a model, a structural fallback reads ``nn.Sequential``
neighbours instead (module activations only) and the diagnosis records that in ``skipped``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from initwise.graph._kinds import norm_name

__all__ = ["ActInfo", "LayerPlan", "act_info", "build_plan", "module_kind"]

#: Activations whose units can die (output exactly zero on a half-line).
_RELU_FAMILY = frozenset({"relu", "relu6", "threshold"})
#: Saturation threshold |z| > t where phi'(z) < 0.1 * max phi' (bounded activations).
_SAT_THRESHOLD = {
    "tanh": math.atanh(math.sqrt(0.9)),  # 1 - tanh^2 < 0.1
    "sigmoid": 2 * math.acosh(math.sqrt(10.0)),  # s (1 - s) < 0.025
    "hardtanh": 1.0,
    "softsign": math.sqrt(10.0) - 1.0,  # 1 / (1 + |z|)^2 < 0.1
    "hardsigmoid": 3.0,
}
_ACT_MODULES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU6, "relu6"), (nn.ReLU, "relu"), (nn.LeakyReLU, "leaky_relu"), (nn.PReLU, "prelu"),
    (nn.SELU, "selu"), (nn.CELU, "celu"), (nn.ELU, "elu"), (nn.GELU, "gelu"), (nn.SiLU, "silu"),
    (nn.Mish, "mish"), (nn.Softplus, "softplus"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
    (nn.Hardtanh, "hardtanh"), (nn.Hardswish, "hardswish"), (nn.Hardsigmoid, "hardsigmoid"),
    (nn.Softsign, "softsign"), (nn.Threshold, "threshold"),
)


@dataclass(frozen=True)
class ActInfo:
    """What the doctor needs to know about a nonlinearity.

    Attributes:
        name: canonical name (``"relu"``, ``"tanh"``...).
        relu_family: units can die (exactly zero on a half-line).
        saturating: bounded; units can saturate.
        sat_threshold: ``|z| > sat_threshold`` counts as saturated (``phi' < 0.1 max phi'``).
        fn: a torch-callable applying the activation, or ``None``.
    """

    name: str
    relu_family: bool
    saturating: bool
    sat_threshold: float | None
    fn: Any = None


def _numeric_sat_threshold(np_fn: Any) -> float | None:
    z = np.linspace(0.0, 20.0, 4001)
    d = np.gradient(np.asarray(np_fn(z), dtype=np.float64), z)
    peak = float(np.max(np.abs(d)))
    if peak <= 0:
        return None
    small = np.nonzero(np.abs(d) < 0.1 * peak)[0]
    small = small[z[small] > 0]
    return float(z[small[0]]) if small.size else None


def act_info(activation: Any, fn: Any = None) -> ActInfo | None:
    """Resolve a name / module / function to :class:`ActInfo` (``None`` if unresolvable)."""
    if activation is None and fn is None:
        return None
    spec = None
    try:
        from initwise.activations import resolve_activation

        spec = resolve_activation(fn if fn is not None else activation)
    except Exception:  # noqa: BLE001 - the table below covers the common names
        spec = None
    if spec is not None:
        name = str(spec.name)
        thr = _SAT_THRESHOLD.get(name)
        if spec.saturating and thr is None:
            thr = _numeric_sat_threshold(spec.np_fn)
        torch_fn = spec.torch_fn or (fn if callable(fn) else None)
        return ActInfo(name, bool(spec.relu_family), bool(spec.saturating), thr, torch_fn)
    name = activation if isinstance(activation, str) else _module_act_name(fn or activation)
    if name is None:
        return None
    return ActInfo(
        name, name in _RELU_FAMILY, name in _SAT_THRESHOLD, _SAT_THRESHOLD.get(name),
        fn if callable(fn) else None,
    )


def _module_act_name(module: Any) -> str | None:
    for cls, name in _ACT_MODULES:
        if isinstance(module, cls):
            return name
    return None


def module_kind(module: nn.Module) -> str | None:
    """The layer kind of a module the doctor probes, ``None`` for containers/activations."""
    table: tuple[tuple[Any, str], ...] = (
        (nn.MultiheadAttention, "attention"), ((nn.RNNBase, nn.RNNCellBase), "rnn"),
        (nn.Linear, "linear"), (_ConvTransposeNd, "conv_transpose"), (_ConvNd, "conv"),
        (nn.EmbeddingBag, "embedding_bag"), (nn.Embedding, "embedding"),
        (nn.Bilinear, "bilinear"),
    )
    for cls, kind in table:
        if isinstance(module, cls):
            return kind
    if norm_name(module) is not None:
        return "norm"
    if _module_act_name(module) is not None:
        return None
    own = any(p is not None for p in module._parameters.values())
    if hasattr(module, "initwise_fans") and own:
        return "linear"
    if own and not any(any(True for _ in c.parameters()) for c in module.children()):
        return "other"
    return None


@dataclass
class LayerPlan:
    """One probed module.

    Attributes:
        name: qualified module name.
        module: the module.
        kind: layer kind (``"linear"``, ``"conv"``, ``"norm"``, ``"other"``...).
        act: the nonlinearity applied to this module's output (``None`` if none / unknown).
        followed_by_norm: the norm kind between this layer and its activation, if any.
        residual: the layer ends a residual branch.
        is_output: the layer produces the model output.
    """

    name: str
    module: nn.Module
    kind: str
    act: ActInfo | None = None
    followed_by_norm: str | None = None
    residual: bool = False
    is_output: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _plan_from_graph(model: nn.Module, inputs: Any) -> dict[str, LayerPlan]:
    from initwise.graph import trace

    graph = trace(model, inputs)
    plans: dict[str, LayerPlan] = {}
    for node in graph.layers:
        act = act_info(node.activation, node.activation_fn) if node.activation else None
        plans[node.name] = LayerPlan(
            node.name, node.module, node.kind, act, node.followed_by_norm,
            bool(node.residual), bool(node.is_output),
        )
    return plans


def _plan_structural(model: nn.Module) -> dict[str, LayerPlan]:
    plans: dict[str, LayerPlan] = {}
    for name, module in model.named_modules():
        kind = module_kind(module)
        if kind is not None:
            plans[name] = LayerPlan(name, module, kind)
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for i, (child_name, _child) in enumerate(children):
            qual = f"{parent_name}.{child_name}" if parent_name else child_name
            plan = plans.get(qual)
            if plan is None or plan.kind == "norm":
                continue
            for _, nxt in children[i + 1:]:
                norm = norm_name(nxt)
                if norm is not None:
                    plan.followed_by_norm = plan.followed_by_norm or norm
                    continue
                act = _module_act_name(nxt)
                if act is not None:
                    plan.act = act_info(act, nxt)
                break
    return plans


def build_plan(model: nn.Module, inputs: Any) -> tuple[dict[str, LayerPlan], str]:
    """Plan the probes: ``({name: LayerPlan}, source)``, source ``"graph"`` or ``"structural"``.

    Args:
        model: the model.
        inputs: the model inputs (as :func:`initwise.modelio.call_model` takes them).

    Returns:
        The plan keyed by qualified module name, and where it came from.
    """
    try:
        plans = _plan_from_graph(model, inputs)
        source = "graph"
    except ImportError:
        plans, source = _plan_structural(model), "structural"
    except Exception as exc:  # noqa: BLE001 - tracing is best effort; the fallback is recorded
        plans, source = _plan_structural(model), f"structural (graph trace failed: {exc!r})"
    for plan in plans.values():
        if plan.residual and plan.kind != "norm" and plan.act is not None:
            # the activation reads the residual sum, not this branch's output
            plan.extra["act_after_residual"] = plan.act.name
            plan.act = None
    # Norm layers carry the activation of the layer they normalize (dead/saturated stats are
    # measured where the activation reads its input).
    order = list(plans.values())
    for i, plan in enumerate(order):
        if plan.followed_by_norm and plan.kind != "norm":
            for nxt in order[i + 1:]:
                if nxt.kind == "norm":
                    if nxt.act is None:
                        nxt.act = plan.act
                    nxt.extra["normalizes"] = plan.name
                    break
            # the activation reads the norm's output, not this layer's
            plan.extra["act_after_norm"] = plan.act.name if plan.act else None
            plan.act = None
    return plans, source
