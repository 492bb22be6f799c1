"""`LayerFacts`: what every measurement needs to know about one layer, built once from the graph.

One record per probed module, derived from :func:`initwise.graph.trace` (or, when the forward
cannot be traced, from the model's structure): its kind, the output dimension that indexes its
units, its own weight and bias, the activation that follows it and where that activation is
measured, and the norm / residual / output flags. The doctor, ``initwise.init`` and the training
monitor all read these records, so they agree on what a layer is.

Where an activation is *measured* (:attr:`LayerFacts.act`) differs from the activation that
*follows* (:attr:`LayerFacts.activation`) in two cases: behind a norm the activation reads the
norm's output, so the norm's record carries it; at the end of a residual branch it reads the
residual sum, so no record measures it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from initwise import graph as graph_mod
from initwise.activations import ActivationFacts, activation_facts
from initwise.graph import ModelGraph, activation_of_module, layer_kind, norm_name
from initwise.layers import layer_type
from initwise.modelio import call_model
from initwise.state import COPY_LIMIT, guarded

__all__ = [
    "LayerFacts", "facts_from_graph", "layer_facts", "own_bias", "own_weight", "structural_facts",
    "unit_dim",
]

#: Norms that normalize over channels in dimension 1 (their units are channels).
_CHANNEL_FIRST_NORMS = ("batchnorm", "instancenorm", "groupnorm")


@dataclass(frozen=True)
class LayerFacts:
    """One layer as every measurement sees it.

    Attributes:
        name: qualified module name. module: the module. kind: layer kind
            (:data:`initwise.graph.LAYER_KINDS`). order: rank of its first call.
        calls: how many times one forward calls it (0 if unknown).
        unit_dim: the output dimension that indexes units (1 for convolutions and channel-first
            norms on >2-D outputs, else -1; a 1-D output is one unit over its rows).
        activation: facts of the nonlinearity that follows the layer (``None``: none known).
        act: facts of the nonlinearity that reads this layer's output directly -- where dead and
            saturated units are measured (``None`` when a norm or a residual sum comes first; a
            norm layer carries the activation of the layer it normalizes).
        followed_by_norm: the norm family consuming the output before any nonlinearity.
        normalizes: for a norm layer, the layer whose output it normalizes.
        residual: the output is added to a skip path. is_output: it feeds the model output.
        reads_input: the graph saw it consume the model input. parents: nearest upstream layers.
    """

    name: str
    module: nn.Module = field(repr=False, compare=False)
    kind: str
    order: int = 0
    calls: int = 0
    unit_dim: int = -1
    activation: ActivationFacts | None = None
    act: ActivationFacts | None = None
    followed_by_norm: str | None = None
    normalizes: str | None = None
    residual: bool = False
    is_output: bool = False
    reads_input: bool = False
    parents: tuple[str, ...] = ()

    @property
    def weight(self) -> torch.Tensor | None:
        """The module's own ``weight`` parameter if it has >= 2 dimensions (:func:`own_weight`)."""
        return own_weight(self.module)

    def output_unit_dim(self, y: torch.Tensor) -> int:
        """The unit dimension of one concrete output ``y`` (0 for a 1-D output)."""
        if y.dim() <= 1:
            return 0
        return -1 if self.kind == "norm" and y.dim() == 2 else self.unit_dim  # (N, C): last


def own_weight(module: nn.Module) -> torch.Tensor | None:
    """The module's own ``weight`` parameter if it has >= 2 dimensions, else ``None``."""
    w = module._parameters.get("weight")
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None


def own_bias(module: nn.Module, n_units: int) -> torch.Tensor | None:
    """The module's own ``bias`` parameter if it holds one value per unit, else ``None``."""
    b = module._parameters.get("bias")
    if isinstance(b, torch.Tensor) and b.dim() == 1 and b.numel() == n_units:
        return b
    return None


def unit_dim(module: nn.Module, kind: str) -> int:
    """The output dimension that indexes ``module``'s units: channel-first norms 1, else the
    layer registry's ``unit_dim`` (:func:`initwise.layers.layer_type`: 1 for convolutions),
    else -1 (the last dimension)."""
    if kind == "norm":
        return 1 if norm_name(module) in _CHANNEL_FIRST_NORMS else -1
    t = layer_type(module)
    return t.unit_dim if t is not None and t.unit_dim is not None else -1


def _place_activations(records: list[LayerFacts]) -> list[LayerFacts]:
    """Move each activation to where it is measured (the norm behind a layer; none after a
    residual branch).

    A norm ending a residual branch measures none either: the activation after it reads the
    residual sum. (timm's ResNet blocks end ``conv2 -> bn2 -> += shortcut -> ReLU`` with bn2's
    scale zero-initialized (Goyal et al. 2017, arXiv:1706.02677): bn2's output is exactly 0,
    which read as 100 % dead ReLU units, while the ReLU sees the shortcut and bn2's scale gets a
    non-zero gradient.)"""
    out = list(records)
    for i, rec in enumerate(out):
        if rec.residual:
            out[i] = replace(rec, act=None)
        elif rec.kind != "norm" and rec.followed_by_norm:
            out[i] = replace(rec, act=None)
            for j in range(i + 1, len(out)):
                if out[j].kind == "norm":
                    out[j] = replace(out[j], act=out[j].act or rec.activation,
                                     normalizes=rec.name)
                    break
    return out


def facts_from_graph(graph: ModelGraph) -> dict[str, LayerFacts]:
    """``{name: LayerFacts}`` for every layer of a traced graph, in execution order."""
    records = []
    for node in graph.layers:
        act = activation_facts(node.activation_fn or node.activation) \
            if node.activation else None
        records.append(LayerFacts(
            name=node.name, module=node.module, kind=node.kind, order=node.order,
            calls=node.calls, unit_dim=unit_dim(node.module, node.kind), activation=act,
            act=act, followed_by_norm=node.followed_by_norm, residual=bool(node.residual),
            is_output=bool(node.is_output), reads_input="<input>" in node.parents,
            parents=tuple(node.parents)))
    return {r.name: r for r in _place_activations(records)}


def structural_facts(model: nn.Module) -> dict[str, LayerFacts]:
    """Facts from the module tree alone (``nn.Sequential`` neighbours give the activations).

    The fallback when a forward cannot be traced: module activations only, no residual or output
    flags, calls unknown (0).
    """
    records: dict[str, LayerFacts] = {}
    for order, (name, module) in enumerate(model.named_modules()):
        kind = layer_kind(module)
        if kind is not None:
            records[name] = LayerFacts(name=name, module=module, kind=kind, order=order,
                                       unit_dim=unit_dim(module, kind))
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for i, (child_name, _child) in enumerate(children):
            qual = f"{parent_name}.{child_name}" if parent_name else child_name
            rec = records.get(qual)
            if rec is None or rec.kind == "norm":
                continue
            for _, nxt in children[i + 1:]:
                norm = norm_name(nxt)
                if norm is not None:
                    rec = replace(rec, followed_by_norm=rec.followed_by_norm or norm)
                    continue
                if activation_of_module(nxt) is not None:
                    act = activation_facts(nxt)
                    rec = replace(rec, activation=act, act=act)
                break
            records[qual] = rec
    return {r.name: r for r in _place_activations(list(records.values()))}


def layer_facts(model: nn.Module, inputs: Any = None, *,
                graph: ModelGraph | None = None) -> tuple[dict[str, LayerFacts], str]:
    """The facts of every layer, and where they came from.

    Args:
        model: the model.
        inputs: model inputs for one traced forward (:func:`initwise.graph.trace`).
        graph: an already traced graph (then ``inputs`` is not used).

    Returns:
        ``({name: LayerFacts}, source)``; ``source`` is ``"graph"``, or ``"structural (...)"``
        with the reason when the tracer could not follow the forward (module activations only).

    Raises:
        ValueError: lazy (unmaterialized) or meta-device parameters
            (:func:`initwise.graph.check_materialized`).
        Exception: whatever the model's own forward raises (a broken model is never
            diagnosed from its structure alone). The fallback is taken only for the tracer's
            own failures: an error raised by code outside initwise (the model's forward) is
            re-raised; one raised inside initwise is re-raised if a forward without the tracer
            raises too.
    """
    if graph is not None:
        return facts_from_graph(graph), "graph"
    graph_mod.check_materialized(
        model, then="measure it",
        meta_remedy="call model.to_empty(device=...) and initialize it first.")
    try:
        return facts_from_graph(graph_mod.trace(model, inputs)), "graph"
    except Exception as exc:  # noqa: BLE001 - the tracer's own failure is recorded below
        in_model, by_initwise = _origin(exc)
        if in_model and not by_initwise:
            raise  # the model's forward (a Python error of its own, e.g. on the first call)
        if in_model:
            _plain_forward(model, inputs)  # raises the model's own error, if it is one
        return structural_facts(model), f"structural (graph trace failed: {exc!r})"


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _origin(exc: BaseException) -> tuple[bool, bool]:
    """``(raised while the model ran, innermost Python frame is initwise's own code)``."""
    tb, in_model, last = exc.__traceback__, False, None
    while tb is not None:
        in_model = in_model or tb.tb_frame.f_code is call_model.__code__
        last, tb = tb, tb.tb_next
    if last is None:
        return False, False
    path = os.path.abspath(last.tb_frame.f_code.co_filename)
    return in_model, path.startswith(_PACKAGE_DIR + os.sep)


def _plain_forward(model: nn.Module, inputs: Any) -> None:
    """One forward without the tracer, changing nothing (the trace's own guard)."""
    with guarded(model, restore="always", copy_limit=COPY_LIMIT, grads=False), \
            torch.no_grad():
        call_model(model, inputs)

