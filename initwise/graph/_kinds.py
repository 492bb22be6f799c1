"""What a module or a torch function *is* for the graph: a layer, an activation, a norm, a stop.

One answer per question, so the tracer (runtime) and the structural tracers (torch.fx,
``nn.Sequential``) classify nodes the same way: layer kinds come from the layer registry
(:mod:`initwise.layers`), activation modules and activation function names from the activation
registry (:mod:`initwise.activations`), so a registered type is a node of the right role.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from initwise.activations import (
    activation_function_names,
    module_activation,
    registered_function,
)
from initwise.layers import LAYER_KINDS, layer_kind

__all__ = [
    "LAYER_KINDS",
    "activation_of_function",
    "activation_of_module",
    "aliases_of",
    "function_role",
    "layer_kind",
    "layer_modules",
    "norm_name",
    "normalize_function_name",
    "qualified_names",
]

_NORM_FUNCTIONS = {
    "batch_norm": "batchnorm", "layer_norm": "layernorm", "group_norm": "groupnorm",
    "instance_norm": "instancenorm", "rms_norm": "rmsnorm",
}
# Functions that mix features like a layer, or end the elementwise chain (softmax): searches stop.
_STOP_FUNCTIONS = frozenset({
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "embedding", "embedding_bag", "softmax", "log_softmax", "softmin",
    "scaled_dot_product_attention", "multi_head_attention_forward", "lstm", "gru", "rnn_tanh",
    "rnn_relu",
})
# Matrix products stop a search only when a Parameter is an operand (a functional layer).
_PRODUCT_FUNCTIONS = frozenset({"matmul", "mm", "bmm", "einsum", "addmm", "rmatmul"})
_ADD_FUNCTIONS = frozenset({"add", "iadd", "radd"})


def qualified_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> qualified name`` (a shared module keeps its first name)."""
    names: dict[int, str] = {}
    for name, m in model.named_modules():
        names.setdefault(id(m), name)
    return names


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every layer module of ``model`` by first qualified name, not descending into layers.

    Submodules of a layer (``nn.MultiheadAttention.out_proj``) belong to that layer.

    Args:
        model: the model.

    Returns:
        ``{qualified name: module}`` in registration order (see :func:`layer_kind`).
    """
    found: dict[str, nn.Module] = {}
    seen: set[int] = set()

    def walk(m: nn.Module, prefix: str) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        if layer_kind(m) is not None:
            found[prefix] = m
            return
        for name, child in m.named_children():
            walk(child, f"{prefix}.{name}" if prefix else name)

    walk(model, "")
    return found


def aliases_of(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """Other qualified names of modules registered under several names, by first name."""
    first: dict[int, str] = {}
    extra: dict[str, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        if id(m) in first:
            extra.setdefault(first[id(m)], []).append(name)
        else:
            first[id(m)] = name
    return {k: tuple(v) for k, v in extra.items()}


def normalize_function_name(func: Any) -> str:
    """``F.relu``, ``Tensor.relu_``, ``Tensor.__iadd__`` -> ``"relu"``, ``"relu"``, ``"iadd"``."""
    name = getattr(func, "__name__", None) or str(func)
    return name.strip("_")


def norm_name(module: nn.Module) -> str | None:
    """The norm family of a norm layer, or ``None`` for any other module.

    Args:
        module: any module.

    Returns:
        ``"batchnorm"`` (incl. SyncBatchNorm), ``"layernorm"``, ``"groupnorm"``,
        ``"instancenorm"``, ``"rmsnorm"``, or ``None``.
    """
    if isinstance(module, _InstanceNorm):
        return "instancenorm"
    if isinstance(module, (_BatchNorm, nn.SyncBatchNorm)):
        return "batchnorm"
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    if isinstance(module, nn.GroupNorm):
        return "groupnorm"
    rms = getattr(nn, "RMSNorm", None)
    if rms is not None and isinstance(module, rms):
        return "rmsnorm"
    return None


def activation_of_module(module: nn.Module) -> str | None:
    """The activation name of an activation module, or ``None`` for any other module.

    Args:
        module: any module.

    Returns:
        The name the activation registry gives it (``nn.GELU(approximate="tanh")`` ->
        ``"gelu_tanh"``; a registered user class -> its registered name), or ``None``.

    Example:
        >>> activation_of_module(nn.LeakyReLU(0.2)), activation_of_module(nn.Linear(2, 2))
        ('leaky_relu', None)
    """
    return module_activation(module)


def _arg(args: tuple, kwargs: dict, pos: int, key: str, default: Any) -> Any:
    if key in kwargs:
        return kwargs[key]
    return args[pos] if len(args) > pos else default


def activation_of_function(
    func: Any, args: tuple, kwargs: dict
) -> tuple[str, Any] | None:
    """``(name, activation_fn)`` for an activation call, or ``None`` if ``func`` is not one.

    Parametrized functional activations become the equivalent module so that the parameters
    survive: ``F.leaky_relu(x, 0.2)`` -> ``("leaky_relu", nn.LeakyReLU(0.2))``.
    """
    name = normalize_function_name(func)
    if name not in activation_function_names():
        return None
    user = registered_function(name)
    if user is not None:
        return name, user
    if name == "leaky_relu":
        return name, nn.LeakyReLU(float(_arg(args, kwargs, 1, "negative_slope", 0.01)))
    if name in ("elu", "celu"):
        alpha = float(_arg(args, kwargs, 1, "alpha", 1.0))
        return name, (nn.ELU(alpha) if name == "elu" else nn.CELU(alpha))
    if name == "gelu":
        approximate = _arg(args, kwargs, 1, "approximate", "none")
        return ("gelu_tanh" if approximate == "tanh" else "gelu"), nn.GELU(approximate)
    if name == "softplus":
        beta = float(_arg(args, kwargs, 1, "beta", 1.0))
        threshold = float(_arg(args, kwargs, 2, "threshold", 20.0))
        return name, nn.Softplus(beta, threshold)
    if name == "hardtanh":
        lo = float(_arg(args, kwargs, 1, "min_val", -1.0))
        hi = float(_arg(args, kwargs, 2, "max_val", 1.0))
        return ("relu6", nn.ReLU6()) if (lo, hi) == (0.0, 6.0) else (name, nn.Hardtanh(lo, hi))
    if name == "threshold":
        th = float(_arg(args, kwargs, 1, "threshold", 0.0))
        return name, nn.Threshold(th, float(_arg(args, kwargs, 2, "value", 0.0)))
    if name in ("softshrink", "hardshrink"):
        lambd = float(_arg(args, kwargs, 1, "lambd", 0.5))
        return name, (nn.Softshrink(lambd) if name == "softshrink" else nn.Hardshrink(lambd))
    if name == "rrelu":
        lower = float(_arg(args, kwargs, 1, "lower", 1.0 / 8))
        return name, nn.RReLU(lower, float(_arg(args, kwargs, 2, "upper", 1.0 / 3)))
    if name == "prelu":
        weight = _arg(args, kwargs, 1, "weight", None)
        init = float(weight.detach().float().mean()) if isinstance(weight, torch.Tensor) else 0.25
        return name, nn.PReLU(init=init)
    return name, func


def function_role(func: Any, args: tuple, kwargs: dict) -> str:
    """Role of a function node: ``"activation"``, ``"norm"``, ``"add"``, ``"stop"``, ``"op"``."""
    name = normalize_function_name(func)
    if name in activation_function_names():
        return "activation"
    if name in _NORM_FUNCTIONS:
        return "norm"
    if name in _ADD_FUNCTIONS:
        return "add"
    if name in _STOP_FUNCTIONS:
        return "stop"
    if name in _PRODUCT_FUNCTIONS:
        operands = list(args) + list(kwargs.values())
        if any(isinstance(a, nn.Parameter) for a in operands):
            return "stop"
    return "op"


def norm_of_function(func: Any) -> str | None:
    """``F.layer_norm`` -> ``"layernorm"`` etc.; ``None`` for other functions."""
    return _NORM_FUNCTIONS.get(normalize_function_name(func))
