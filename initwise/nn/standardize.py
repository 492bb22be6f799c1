"""Input standardization that lives on a layer: ``layer(x)`` computes ``layer((x - m) * r)``.

:func:`initwise.init` adds it to a dense data layer whose input columns are badly scaled
(raw tabular columns: sizes, counts, amounts up to 1e9). Folding ``1/s_j`` into the weights fixes
the first forward but not training: the optimizer then steps on weights whose useful scales
differ by the columns' scale ratio (one Adam step moved the loss from 2.5 to 1.2e6; SGD gave NaN).
Standardizing the *input* instead makes training exactly training on ``(x - m) / s``, the
preprocessing the user forgot.

Mechanism: two persistent buffers on the layer, ``initwise_input_shift`` (``m``) and
``initwise_input_inv_scale`` (``r = 1/s``), shaped to broadcast against the input (``(C,)`` for
a Linear, ``(C, 1, ..)`` for a ConvNd), and a forward pre-hook, a module-level function that
reads the buffers of the module it is called on. Trade-offs, against a weight parametrization
(``W = V * r``, bias ``c - W m``):

* the trainable parameters keep their names (``weight``, ``bias``) and meaning, optimizers and
  weight decay see them as usual, and centering stays exact while the weights train (a
  parametrized bias cannot depend on the weight);
* the buffers are in ``state_dict`` (``<layer>.initwise_input_shift`` / ``..._inv_scale``) and move
  with ``.to()``; ``copy.deepcopy`` and ``torch.save(model)`` keep the hook (the function is
  stateless, the buffers are copied). Loading such a ``state_dict`` into a fresh model needs the
  fresh model to have the standardization too (:func:`add_input_standardization` with any
  values, then ``load_state_dict``), or bake it first;
* :func:`bake_input_standardization` folds it into ``weight``/``bias`` and removes it (same
  function, plain layer); :func:`remove_input_standardization` removes it without folding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "SHIFT",
    "INV_SCALE",
    "add_input_standardization",
    "bake_input_standardization",
    "has_input_standardization",
    "remove_input_standardization",
]

SHIFT = "initwise_input_shift"
INV_SCALE = "initwise_input_inv_scale"


def _standardize_input(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Forward pre-hook: replace the layer's input ``x`` by ``(x - shift) * inv_scale``."""
    shift, inv = module._buffers[SHIFT], module._buffers[INV_SCALE]
    if args:
        x = args[0]
        return ((x - shift.to(x.dtype)) * inv.to(x.dtype), *args[1:]), kwargs
    if "input" in kwargs:
        x = kwargs["input"]
        return args, {**kwargs, "input": (x - shift.to(x.dtype)) * inv.to(x.dtype)}
    return None


def has_input_standardization(layer: nn.Module) -> bool:
    """Whether ``layer`` carries an input standardization added by this module."""
    return SHIFT in layer._buffers and INV_SCALE in layer._buffers


def _column_axis(layer: nn.Module) -> tuple[int, int]:
    """``(weight axis of input columns, number of trailing kernel dims)`` of a supported layer."""
    if isinstance(layer, nn.modules.conv._ConvNd) and not isinstance(
            layer, nn.modules.conv._ConvTransposeNd):
        if layer.groups != 1:
            raise ValueError(f"input standardization: grouped {type(layer).__name__} "
                             f"(groups={layer.groups}) is not supported; standardize the data.")
        return 1, layer.weight.dim() - 2
    if isinstance(layer, nn.Linear):
        return 1, 0
    raise TypeError(f"input standardization: expected nn.Linear or nn.ConvNd; got "
                    f"{type(layer).__name__}.")


def add_input_standardization(layer: nn.Module, shift: torch.Tensor,
                              inv_scale: torch.Tensor) -> None:
    """Make ``layer(x)`` compute ``layer((x - shift) * inv_scale)`` per input column/channel.

    Args:
        layer: an ``nn.Linear`` (columns = last input dim) or ungrouped ``nn.ConvNd``
            (channels = dim 1).
        shift: per-column shift ``m``, shape ``(n_columns,)``.
        inv_scale: per-column factor ``1/s``, shape ``(n_columns,)``, finite and positive.

    Raises:
        TypeError: ``layer`` is another module type.
        ValueError: it already has one, or the shapes/values do not fit.

    Example:
        >>> lin = torch.nn.Linear(2, 1)
        >>> add_input_standardization(lin, torch.tensor([10., 0.]), torch.tensor([0.5, 1.]))
        >>> x = torch.tensor([[12., 3.]])
        >>> bool(torch.allclose(lin(x), lin.weight @ torch.tensor([1., 3.]) + lin.bias))
        True
    """
    axis, k = _column_axis(layer)
    if has_input_standardization(layer):
        raise ValueError(f"input standardization: {type(layer).__name__} already has one; "
                         f"bake_input_standardization() or remove_input_standardization() first.")
    n = layer.weight.shape[axis]
    shift, inv_scale = (torch.as_tensor(t).detach().reshape(-1) for t in (shift, inv_scale))
    if shift.numel() != n or inv_scale.numel() != n:
        raise ValueError(f"input standardization: shift/inv_scale need {n} values (input "
                         f"columns of the layer); got {shift.numel()} and {inv_scale.numel()}.")
    if not (torch.isfinite(shift).all() and torch.isfinite(inv_scale).all()
            and (inv_scale > 0).all()):
        raise ValueError("input standardization: shift must be finite and inv_scale finite and "
                         "positive.")
    shape = (n,) + (1,) * k
    w = layer.weight
    layer.register_buffer(SHIFT, shift.to(w.device, w.dtype).reshape(shape).clone())
    layer.register_buffer(INV_SCALE, inv_scale.to(w.device, w.dtype).reshape(shape).clone())
    layer.register_forward_pre_hook(_standardize_input, with_kwargs=True, prepend=True)


def remove_input_standardization(layer: nn.Module) -> None:
    """Remove the hook and buffers without folding them (the layer's function changes).

    Raises:
        ValueError: ``layer`` has no input standardization.
    """
    if not has_input_standardization(layer):
        raise ValueError(f"input standardization: {type(layer).__name__} has none to remove.")
    for key in [k for k, fn in layer._forward_pre_hooks.items() if fn is _standardize_input]:
        del layer._forward_pre_hooks[key]
        layer._forward_pre_hooks_with_kwargs.pop(key, None)
        getattr(layer, "_forward_pre_hooks_always_called", {}).pop(key, None)
    del layer._buffers[SHIFT]
    del layer._buffers[INV_SCALE]


def bake_input_standardization(layer: nn.Module) -> None:
    """Fold the standardization into ``weight``/``bias`` and remove it: same function, plain layer.

    ``W' = W * r`` per input column; ``b' = b - W' m`` (summed over kernel taps for a
    convolution, exact when the convolution does not pad: zero padding of ``x - m`` is not zero
    padding of ``x``).

    Raises:
        ValueError: no standardization, or a non-zero shift on a layer without a bias (the
            centering cannot be expressed; keep it or remove it).
    """
    if not has_input_standardization(layer):
        raise ValueError(f"input standardization: {type(layer).__name__} has none to bake.")
    shift, inv = layer._buffers[SHIFT], layer._buffers[INV_SCALE]
    if layer.bias is None and bool((shift != 0).any()):
        raise ValueError("input standardization: the layer has no bias, so the centering cannot "
                         "be baked into it; keep the standardization or remove it.")
    axis, k = _column_axis(layer)
    w = layer.weight
    with torch.no_grad():
        w.mul_(inv.reshape((1, -1) + (1,) * k))
        if layer.bias is not None:
            wsum = w.sum(dim=tuple(range(2, w.dim()))) if k else w
            layer.bias.sub_(wsum @ shift.reshape(-1))
    remove_input_standardization(layer)


def summary(layer: nn.Module) -> dict[str, Any]:
    """Shift and scale of a layer's standardization as plain lists (for reports)."""
    return {"shift": layer._buffers[SHIFT].reshape(-1).tolist(),
            "scale": (1.0 / layer._buffers[INV_SCALE].reshape(-1)).tolist()}
