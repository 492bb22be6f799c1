"""Fan-in, fan-out and receptive field of a weight, for a bare tensor or a weight in its module.

Two entry points:

- :func:`fans` ``(obj, name="weight") -> Fans``: ``obj`` is a bare tensor (torch's layout rule,
  identical to ``torch.nn.init._calculate_fan_in_and_fan_out``) or a module (module-aware rules
  below, which fix the cases where the tensor layout lies about the computation).
- :func:`blocks` ``(module, name) -> list[Block]``: splits packed weights into the blocks that
  are separate matrices in the computation (MultiheadAttention's ``in_proj`` into q, k, v; an
  LSTM's ``weight_ih_l0`` into its 4 gates; a GRU's into 3), each with its own fans.

Conventions (``fan_in`` = number of terms summed into one output element in the forward pass,
``fan_out`` = number of terms summed into one input-gradient element in the backward pass, both
averaged over positions away from the borders; ``receptive_field`` = number of kernel taps):

================== ======================================== ======================================
module             fan_in                                   fan_out
================== ======================================== ======================================
Linear             in_features                              out_features
Bilinear           in1 * in2                                out * in2 (gradient w.r.t. input 1)
ConvNd             in/groups * prod(k)                      out/groups * prod(k) / prod(stride)
ConvTransposeNd    in/groups * prod(k) / prod(stride)       out/groups * prod(k)
Embedding(Bag)     1 (one row per lookup)                   embedding_dim
MHA in_proj q/k/v  embed_dim / kdim / vdim                  embed_dim
MHA bias_k/bias_v  1 (a learned key/value row)              embed_dim
RNN/LSTM/GRU       weight.shape[1] (input or hidden size)   hidden_size (rows of one gate)
bias of any above  the fans of the weight it is added to
================== ======================================== ======================================

Dilation never changes a fan (it spreads the taps, it does not add any). Stride divides the
number of kernel taps that land on one position: a transposed convolution with kernel 4 and
stride 2 sums ``in * 2 * 2`` terms per 2-d output element, not ``in * 16``, and torch's helper
(which reads the ``(in, out/groups, *k)`` weight as if it were ``(out, in, *k)``) gets both fans
wrong. Fractional averages (kernel 3, stride 2) are rounded half up, to at least 1.

Embeddings: an output element is one row of the table (``mode="sum"`` bags add one row per
lookup), so the variance-relevant fan-in is 1 per lookup; the bag size is a property of the data
(see ``initwise.datainit``). The one-hot view ``fan_in = num_embeddings`` is available as
``module.weight.shape[0]`` for policies that want it.

Extension points: a module defining ``initwise_fans(self, name) -> Fans`` is asked first (and
``initwise_blocks(self, name) -> list[Block]`` for :func:`blocks`); then the layer registry
(:func:`initwise.layers.layer_type`), whose built-in entries hold the rules of the table above
and to which :func:`initwise.register_layer` adds ``fans=`` / ``blocks=`` for new types.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from initwise.layers import REMEDY, Block, Fans, layer_type

__all__ = ["Block", "Fans", "blocks", "fans", "tensor_fans"]


def tensor_fans(tensor: torch.Tensor) -> Fans:
    """Fans of a bare tensor in torch's ``(out, in, *kernel)`` layout.

    ``fan_in = size(1) * prod(size[2:])``, ``fan_out = size(0) * prod(size[2:])``: the same
    numbers as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    Args:
        tensor: a tensor with at least 2 dimensions.

    Returns:
        The :class:`Fans`.

    Raises:
        ValueError: if the tensor has fewer than 2 dimensions.

    Example:
        >>> tensor_fans(torch.empty(8, 3, 5, 5))
        Fans(fan_in=75, fan_out=200, receptive_field=25)
    """
    if tensor.dim() < 2:
        raise ValueError(
            f"fans need a tensor with at least 2 dimensions (out, in, *kernel), got shape "
            f"{tuple(tensor.shape)}; for a bias or other vector, {REMEDY}"
        )
    rf = math.prod(tensor.shape[2:])
    return Fans(int(tensor.shape[1]) * rf, int(tensor.shape[0]) * rf, rf)


def fans(obj: torch.Tensor | nn.Module, name: str = "weight") -> Fans:
    """Fans of a bare tensor (torch layout) or of parameter ``name`` of a module (module-aware).

    See the module docstring for the rule of every layer type. A dotted ``name``
    (``"out_proj.weight"``) is looked up in the submodule; the names that parametrizations give
    the raw tensor (``"parametrizations.weight.original"``, ``"weight_orig"``) mean
    ``"weight"``. For a packed weight (MHA ``in_proj_weight``, RNN gates) the fans of ONE block
    are returned; use :func:`blocks` for the row ranges.

    Args:
        obj: a tensor, or a module owning parameter ``name``.
        name: the parameter name (ignored for a tensor). Default ``"weight"``.

    Returns:
        The :class:`Fans`.

    Raises:
        ValueError: unknown module type or parameter, a lazy parameter not yet materialized, or
            a tensor with fewer than 2 dimensions; the message says how to fix it.
        TypeError: ``obj`` is neither a tensor nor a module, or ``initwise_fans`` returned
            something other than :class:`Fans`.

    Example:
        >>> fans(nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2))
        Fans(fan_in=64, fan_out=128, receptive_field=16)
    """
    if isinstance(obj, torch.Tensor):
        return tensor_fans(obj)
    if not isinstance(obj, nn.Module):
        raise TypeError(f"fans() takes a tensor or an nn.Module, got {type(obj).__name__}")
    module, name = _resolve(obj, name)
    custom = getattr(module, "initwise_fans", None)
    if callable(custom):
        result = custom(name)
        if not isinstance(result, Fans):
            raise TypeError(
                f"{type(module).__name__}.initwise_fans({name!r}) must return Fans, "
                f"got {type(result).__name__}"
            )
        return result
    _check_param(module, name)
    registered = layer_type(module)
    if registered is not None and registered.fans is not None:
        return registered.fans(module, name)
    raise ValueError(
        f"initwise does not know the fans of {type(module).__name__}.{name}; {REMEDY}, or use "
        f"fans(module.{name}) for the torch-layout fans of the bare tensor"
    )


def blocks(module: nn.Module, name: str = "weight") -> list[Block]:
    """Split parameter ``name`` of ``module`` into the blocks that are separate matrices.

    MultiheadAttention ``in_proj_weight``/``in_proj_bias`` -> ``q``, ``k``, ``v``; LSTM
    (``weight_ih_l{k}``, ``weight_hh_l{k}``, biases, ``_reverse`` too) -> ``input``, ``forget``,
    ``cell``, ``output`` (torch's gate order); GRU -> ``reset``, ``update``, ``new``;
    LSTMCell/GRUCell likewise. Any other parameter is one block labelled ``"all"``.

    Args:
        module: the owning module.
        name: the parameter name (dotted names descend into submodules). Default ``"weight"``.

    Returns:
        The blocks, in row order, covering dim 0 exactly.

    Raises:
        ValueError: as :func:`fans`.

    Example:
        >>> [b.label for b in blocks(nn.LSTM(4, 8), "weight_ih_l0")]
        ['input', 'forget', 'cell', 'output']
    """
    module, name = _resolve(module, name)
    custom = getattr(module, "initwise_blocks", None)
    if callable(custom):
        return list(custom(name))
    registered = layer_type(module)
    if registered is not None and registered.blocks is not None:
        _check_param(module, name)
        return list(registered.blocks(module, name))
    f = fans(module, name)
    rows = int(getattr(module, name).shape[0]) if getattr(module, name).dim() else 1
    return [Block("all", slice(0, rows), f)]


# ---------------------------------------------------------------------------------------------
# lookup helpers


def _resolve(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    """Descend a dotted parameter name to (owning submodule, leaf name).

    ``parametrizations.<p>.original`` (torch.nn.utils.parametrize) and ``<p>_orig`` (old-style
    ``spectral_norm``) resolve to parameter ``<p>`` of the owning module.
    """
    parts = name.split(".")
    if len(parts) >= 3 and parts[-3] == "parametrizations" and parts[-1].startswith("original"):
        parts = parts[:-3] + [parts[-2]]
    if parts[-1].endswith("_orig"):
        parts[-1] = parts[-1][: -len("_orig")]
    *path, leaf = parts
    for part in path:
        child = getattr(module, part, None)
        if not isinstance(child, nn.Module):
            known = [n for n, _ in module.named_parameters()][:8]
            raise ValueError(
                f"fans: {type(module).__name__} has no submodule {part!r} (looking up {name!r}); "
                f"pass a parameter name as module.named_parameters() gives it, e.g. {known}"
            )
        module = child
    return module, leaf


def _check_param(module: nn.Module, name: str) -> None:
    value = getattr(module, name, None)
    if not isinstance(value, torch.Tensor):
        known = [n for n, _ in module.named_parameters(recurse=False)]
        raise ValueError(
            f"{type(module).__name__} has no parameter {name!r}; its parameters are {known}"
        )
    if isinstance(value, nn.parameter.UninitializedParameter):
        raise ValueError(
            f"{type(module).__name__}.{name} is a lazy parameter that is not materialized yet; "
            f"run one forward pass (or call initwise after the first batch) so its shape is known"
        )
