"""Record one real forward: leaf-module calls (hooks) and torch functions (a TorchFunctionMode).

Every tensor that a node produces is keyed by ``id`` and held by a strong reference until the
trace ends, so ids cannot be reused; in-place ops (``relu_``, ``+=``, ``x[i] = v``) make their node
the new producer of the tensor they modify. Ops inside a leaf module (a layer or an activation
module) are not recorded: the module is the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from initwise.graph._kinds import (
    activation_of_function,
    activation_of_module,
    function_role,
    layer_kind,
    norm_name,
    norm_of_function,
    normalize_function_name,
    qualified_names,
)
from initwise.graph._model import Node

__all__ = ["Recorder", "flatten_tensors"]


def flatten_tensors(obj: Any, _depth: int = 0) -> list[torch.Tensor]:
    """All tensors in ``obj`` (a tensor, or nested tuples/lists/dicts/ModelOutputs of tensors)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if _depth > 8:
        return []
    if isinstance(obj, Mapping):
        items = list(obj.values())
    elif isinstance(obj, (tuple, list)):
        items = list(obj)
    else:
        return []
    return [t for item in items for t in flatten_tensors(item, _depth + 1)]


class _Mode(TorchFunctionMode):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.recorder.leaf_depth == 0:
            self.recorder.record_function(func, args, kwargs, out)
        return out


class Recorder:
    """Collects :class:`Node` objects during one forward of ``model``."""

    def __init__(self, model: nn.Module) -> None:
        self.names = qualified_names(model)
        self.nodes: list[Node] = []
        self.producer: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []
        self.leaf_depth = 0
        self._model = model
        self._handles: list[Any] = []

    def _add(self, op: str, target: str, role: str, consumed: list[torch.Tensor],
             produced: list[torch.Tensor], **fields: Any) -> Node:
        inputs = tuple(self.producer[id(t)] for t in consumed if id(t) in self.producer)
        node = Node(len(self.nodes), op, target, role, inputs, **fields)
        self.nodes.append(node)
        for t in produced:
            self.producer[id(t)] = node.index
            self.keep.append(t)
        return node

    def add_inputs(self, inputs: Any) -> None:
        """One ``"input"`` node per tensor of the model inputs."""
        for i, t in enumerate(flatten_tensors(inputs)):
            self._add("input", f"input[{i}]", "input", [], [t])

    def record_function(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Record a torch function call that returned (or, for ``__setitem__``, wrote) tensors."""
        name = normalize_function_name(func)
        produced = flatten_tensors(out)
        if name == "setitem" and args and isinstance(args[0], torch.Tensor):
            produced = [args[0]]
        if not produced:
            return
        consumed = flatten_tensors(tuple(args)) + flatten_tensors(kwargs)
        role = function_role(func, args, kwargs)
        fields: dict[str, Any] = {}
        if role == "activation":
            act = activation_of_function(func, args, kwargs)
            if act is not None:
                fields["activation"], fields["activation_fn"] = act
        elif role == "norm":
            fields["norm"] = norm_of_function(func)
        self._add("function", name, role, consumed, produced, **fields)

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.leaf_depth += 1

    def _post(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        self.leaf_depth -= 1
        if self.leaf_depth > 0:
            return
        consumed = flatten_tensors(args) + flatten_tensors(kwargs)
        produced = [t for t in flatten_tensors(out) if not any(t is c for c in consumed)] or (
            flatten_tensors(out)
        )
        name = self.names.get(id(module), type(module).__name__)
        act = activation_of_module(module)
        if act is not None:
            self._add("module", name, "activation", consumed, produced, activation=act,
                      activation_fn=module, module=module)
            return
        self._add("module", name, "layer", consumed, produced, kind=layer_kind(module),
                  norm=norm_name(module), module=module)

    def attach(self) -> None:
        """Register pre/post forward hooks on every leaf module (layers and activations)."""
        for m in self._model.modules():
            if layer_kind(m) is None and activation_of_module(m) is None:
                continue
            self._handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._post, with_kwargs=True))

    def detach(self) -> None:
        """Remove every hook this recorder registered."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def mode(self) -> TorchFunctionMode:
        """The torch function mode that records functional ops."""
        return _Mode(self)
