"""The graph without running the model: torch.fx symbolic tracing, else nn.Sequential adjacency.

``trace_structure`` is what :func:`initwise.policy.apply` uses when no example inputs are given,
and it works on meta-device models (nothing is computed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from initwise.graph._kinds import (
    activation_of_function,
    activation_of_module,
    aliases_of,
    function_role,
    layer_kind,
    layer_modules,
    norm_name,
    norm_of_function,
    qualified_names,
)
from initwise.graph._model import ModelGraph, Node, build_graph
from initwise.modelio import select_output

__all__ = ["trace_structure"]

_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Softmin)


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if layer_kind(m) is not None or activation_of_module(m) is not None:
            return True
        return super().is_leaf_module(m, module_qualified_name)


class _Builder:
    def __init__(self, model: nn.Module) -> None:
        self.names = qualified_names(model)
        self.nodes: list[Node] = []
        self.returned: list[int] = []  # every node whose tensor the model returns

    def add(self, op: str, target: str, role: str, inputs: tuple[int, ...] = (),
            **fields: Any) -> int:
        self.nodes.append(Node(len(self.nodes), op, target, role, inputs, **fields))
        return len(self.nodes) - 1

    def add_module(self, name: str, m: nn.Module, inputs: tuple[int, ...]) -> int:
        kind, act = layer_kind(m), activation_of_module(m)
        if kind is not None:
            return self.add("module", name, "layer", inputs, kind=kind, norm=norm_name(m),
                            module=m)
        if act is not None:
            return self.add("module", name, "activation", inputs, activation=act,
                            activation_fn=m, module=m)
        role = "stop" if isinstance(m, _SOFTMAX_MODULES) or any(
            True for _ in m.parameters()) else "op"
        return self.add("module", name, role, inputs, module=m)


def _fx_value(model: nn.Module, node: fx.Node) -> Any:
    if node.op == "get_attr":
        obj: Any = model
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj
    return node


def _fx_output(arg: Any) -> tuple[Any, str]:
    # a ModelOutput(logits=...) constructor call is a node whose kwargs hold the logits
    if isinstance(arg, fx.Node) and arg.op == "call_function" and "logits" in arg.kwargs:
        return arg.kwargs["logits"], "output.logits"
    return select_output(arg, lambda v: isinstance(v, fx.Node)) or (arg, "output")


def _from_fx(model: nn.Module) -> tuple[_Builder, int | None, str]:
    graph = _LeafTracer().trace(model)
    b = _Builder(model)
    index: dict[fx.Node, int] = {}
    out_index, source = None, ""
    for node in graph.nodes:
        inputs = _producers(node, index)
        if node.op == "placeholder":
            index[node] = b.add("input", node.name, "input")
        elif node.op == "call_module":
            m = model.get_submodule(str(node.target))
            index[node] = b.add_module(b.names.get(id(m), str(node.target)), m, inputs)
        elif node.op in ("call_function", "call_method"):
            index[node] = _add_fx_function(b, model, node, inputs)
        elif node.op == "output":
            target, source = _fx_output(node.args[0])
            out_index = index.get(target) if isinstance(target, fx.Node) else None
            b.returned.extend(_producers(node, index))
    return b, out_index, source


def _producers(node: fx.Node, index: dict[fx.Node, int]) -> tuple[int, ...]:
    found: list[int] = []
    fx.node.map_arg((node.args, node.kwargs),
                    lambda a: found.append(index[a]) if a in index else None)
    return tuple(found)


def _add_fx_function(b: _Builder, model: nn.Module, node: fx.Node,
                     inputs: tuple[int, ...]) -> int:
    func: Any = node.target
    if isinstance(func, str):
        func = getattr(torch.Tensor, func, None) or _Named(func)
    args = fx.node.map_arg(node.args, lambda a: _fx_value(model, a))
    kwargs = fx.node.map_arg(node.kwargs, lambda a: _fx_value(model, a))
    role = function_role(func, tuple(args), dict(kwargs))
    fields: dict[str, Any] = {}
    if role == "activation":
        act = activation_of_function(func, tuple(args), dict(kwargs))
        if act is not None:
            fields["activation"], fields["activation_fn"] = act
    elif role == "norm":
        fields["norm"] = norm_of_function(func)
    name = getattr(func, "__name__", str(func)).strip("_")
    return b.add("function", name, role, inputs, **fields)


class _Named:
    def __init__(self, name: str) -> None:
        self.__name__ = name


def _from_sequential(model: nn.Module) -> tuple[_Builder, int | None, bool]:
    b = _Builder(model)
    emitted: set[int] = set()
    found_chain = False
    out_index = None

    def chain(seq: nn.Sequential, prefix: str, prev: int) -> int:
        emitted.add(id(seq))
        for name, m in seq.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(m, nn.Sequential):
                prev = chain(m, full, prev)
                continue
            prev = b.add_module(b.names.get(id(m), full), m, (prev,))
            emitted.add(id(m))
        return prev

    inside_layer: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in inside_layer:
            continue
        if layer_kind(m) is not None:
            inside_layer.update(id(c) for c in m.modules() if c is not m)
        if id(m) in emitted:
            continue
        if isinstance(m, nn.Sequential):
            found_chain = True
            last = chain(m, name, b.add("input", f"input:{name}", "input"))
            if m is model:
                out_index = last
        elif layer_kind(m) is not None:
            emitted.add(id(m))
            b.add_module(b.names.get(id(m), name), m, ())
    return b, out_index, found_chain


def trace_structure(model: nn.Module) -> ModelGraph:
    """The model's graph from its code or structure alone (no inputs, nothing computed).

    Tries ``torch.fx`` symbolic tracing (layers and activation modules are leaves), which sees
    functional calls and skip connections exactly; when the forward cannot be traced (data-
    dependent control flow...), falls back to ``nn.Sequential`` adjacency: inside every
    ``nn.Sequential`` each child feeds the next; layers outside any ``nn.Sequential`` get no
    facts. ``ModelGraph.method`` says which (``"fx"``, ``"sequential"``, or ``"modules"`` when
    there is no Sequential at all) and ``ModelGraph.warnings`` why fx failed.

    Args:
        model: the model (may live on the meta device).

    Returns:
        The :class:`ModelGraph`; facts not derivable by the method are left at their defaults
        (``activation=None``, ``residual=False``, ``is_output=False``).

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}.")
    common = {"all_layers": layer_modules(model), "aliases": aliases_of(model)}
    if layer_kind(model) is not None:
        b = _Builder(model)
        i = b.add_module("", model, (b.add("input", "input", "input"),))
        return build_graph(b.nodes, i, output_source="output", method="fx", **common)
    try:
        b, out_index, source = _from_fx(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure falls back, with its reason
        reason = f"torch.fx could not trace the forward ({type(exc).__name__}: {exc})"
    else:
        return build_graph(b.nodes, out_index, output_source=source, method="fx",
                           returned=b.returned, **common)
    b, out_index, found = _from_sequential(model)
    graph = build_graph(b.nodes, out_index, output_source="output" if out_index is not None else "",
                        method="sequential" if found else "modules", **common)
    graph.warnings.append(
        f"{reason}; used {graph.method} adjacency instead: activations are known only inside "
        f"nn.Sequential containers. Pass example inputs for a traced graph."
    )
    return graph
