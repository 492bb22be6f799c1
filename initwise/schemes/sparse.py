"""Martens' sparse initialization: a fixed COUNT of non-zero incoming weights per unit."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = ["sparse_"]

#: Most random keys held at once while choosing positions (elements; 2^24 float32 = 64 MiB).
_KEY_BLOCK = 2**24


def sparse_(tensor: Tensor, nonzeros: int = 15, gain: float = 1.0,
            generator: torch.Generator | None = None) -> Tensor:
    """Give every unit exactly ``nonzeros`` non-zero incoming weights, N(0, gain^2 / nonzeros).

    A unit is a row of the ``(out, in * prod(kernel))`` view (torch's Linear/ConvNd layout).
    In each row, ``nonzeros`` distinct positions, chosen uniformly at random, get
    ``N(0, s^2)`` draws with ``s = gain / sqrt(nonzeros)``; the rest are 0. Defining property:
    exactly ``nonzeros`` non-zeros per row, and each unit's incoming variance

        ``sum_j Var(W_ij) = nonzeros * s^2 = gain^2``,

    which is what the dense variance-preserving rule (``Var(W_ij) = gain^2 / fan_in`` over
    ``fan_in`` weights) gives: for inputs with second moment ``q`` the pre-activation second
    moment is ``gain^2 q`` in both cases, whatever the fan-in. Martens (2010) used 15 unit
    Gaussian weights (``gain = sqrt(15)``); pass ``gain=math.sqrt(nonzeros)`` to get exactly
    that. Unlike a dense init, each unit's scale does not shrink with the fan-in, and units see
    different small subsets of the inputs, so they start diverse.

    Note: ``torch.nn.init.sparse_(tensor, sparsity, std)`` is a different scheme (a FRACTION of
    zeros per column, fixed std, and it draws positions from the global RNG); passing a
    fraction here raises a ``TypeError`` rather than guessing.

    Args:
        tensor: the tensor to fill in place, >= 2 dims.
        nonzeros: non-zero incoming weights per unit, ``1 <= nonzeros <= in * prod(kernel)``.
            Default 15 (Martens).
        gain: the unit's incoming std (the activation's gain). Default 1.
        generator: the random source (positions and values). Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: < 2 dims, or ``nonzeros`` out of range.
        TypeError: ``nonzeros`` not an integer (e.g. a torch-style sparsity fraction).

    References:
        Martens, "Deep learning via Hessian-free optimization", ICML 2010; Sutskever et al.,
        "On the importance of initialization and momentum in deep learning", ICML 2013.
    """
    if isinstance(nonzeros, bool) or not isinstance(nonzeros, numbers.Integral):
        raise TypeError(
            f"sparse_: nonzeros is a COUNT of non-zero incoming weights per unit (Martens 2010), "
            f"got {nonzeros!r}; for torch's fraction-of-zeros semantics use "
            f"torch.nn.init.sparse_, or pass nonzeros=round((1 - sparsity) * fan_in)"
        )
    if tensor.dim() < 2:
        raise ValueError(
            f"sparse_: needs a tensor with at least 2 dimensions (out, in, *kernel), got shape "
            f"{tuple(tensor.shape)}"
        )
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    if not 1 <= nonzeros <= cols:
        raise ValueError(
            f"sparse_: nonzeros={nonzeros} must be in [1, {cols}] (the incoming weights per unit "
            f"of shape {tuple(tensor.shape)})"
        )
    std = gain / math.sqrt(nonzeros)
    with torch.no_grad():
        # the positions are the `nonzeros` smallest of `cols` uniform keys per row, drawn in
        # blocks of rows so a 2^20-input layer never holds a full (rows, cols) key matrix
        # (plus its sort indices); the blocks consume the generator as one draw would
        step = max(1, _KEY_BLOCK // cols)
        positions = torch.cat([
            torch.rand((min(step, rows - r), cols), generator=generator, device=tensor.device)
            .topk(nonzeros, dim=1, largest=False, sorted=True).indices
            for r in range(0, rows, step)
        ])
        values = torch.empty((rows, nonzeros), dtype=tensor.dtype, device=tensor.device)
        values.normal_(0.0, std, generator=generator)
        flat = torch.zeros((rows, cols), dtype=tensor.dtype, device=tensor.device)
        flat.scatter_(1, positions, values)
        tensor.copy_(flat.reshape(tensor.shape))
    return tensor
