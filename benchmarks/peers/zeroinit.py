"""ZerO (Zhao, Schaefer, Anandkumar 2021): deterministic init from identities and Hadamards.

Algorithm 1 of the paper, for a weight ``W`` of shape ``(P_out, P_in)``:

* ``P_out == P_in``: ``W = I`` (the identity);
* ``P_out < P_in``: ``W = I*``, the partial identity (``I*_{ij} = 1`` iff ``i == j``);
* ``P_out > P_in``: ``W = c I* H_m I*``, ``H_m`` the ``2^m x 2^m`` Sylvester Hadamard matrix,
  ``m = ceil(log2 P_out)``, ``c = 2 ** (-m / 2)`` so that ``c H_m`` is orthogonal.

A convolution gets that matrix at the centre tap of its kernel and zeros elsewhere; biases 0.
A plain net of square layers and ReLUs is therefore the identity map on non-negative inputs.
For residual nets (a model with Fixup-style ``blocks``, see :mod:`peers.fixup`) the last layer
of every residual branch and the classification head start at 0, so every block is the
identity at init.

Deviations from the reference: the normalization ``c = 2 ** (-m / 2)`` is the one of the
authors' code and of the ``zero-init`` 0.3 package (orthonormal ``H``); on residual nets the
authors' code zeros *both* convs of a block because their "augmented" block adds a second skip
inside the branch; our block has none, and two zero layers in a row would leave the branch with
zero gradient forever, so only the branch's last layer is zeroed and the first follows
Algorithm 1. The authors' ReLU passes gradient at exactly 0; we use torch's.

Reference:
    Zhao, Schaefer, Anandkumar, "ZerO Initialization: Initializing Neural Networks with only
    Zeros and Ones", TMLR 2022, arXiv:2110.12661.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ._cost import Batch, Cost, LossFn, PeerResult

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def hadamard(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Sylvester's Hadamard matrix of size ``n`` (a power of two), entries +-1."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard: n must be a power of two, got {n}.")
    h = torch.ones(1, 1, dtype=dtype)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def zero_matrix(p_out: int, p_in: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Algorithm 1's ``(p_out, p_in)`` matrix (see the module docstring)."""
    if p_out <= p_in:
        return torch.eye(p_out, p_in, dtype=dtype)
    m = math.ceil(math.log2(p_out))
    h = hadamard(2 ** m) * 2.0 ** (-m / 2)
    return h[:p_out, :p_in].to(dtype)


def zero_(weight: torch.Tensor) -> torch.Tensor:
    """Fill a Linear ``(out, in)`` or conv ``(out, in, *k)`` weight with ZerO, in place."""
    w = zero_matrix(weight.shape[0], weight.shape[1], weight.dtype)
    with torch.no_grad():
        if weight.dim() == 2:
            return weight.copy_(w)
        if any(k % 2 == 0 for k in weight.shape[2:]):
            raise ValueError(f"zero_: kernel {tuple(weight.shape[2:])} has an even side; "
                             "ZerO puts the matrix at the centre tap, which needs odd sides.")
        weight.zero_()
        weight[(slice(None), slice(None)) + tuple(k // 2 for k in weight.shape[2:])] = w
    return weight


def zero_init(model: nn.Module, batches: Iterable[Batch] | None = None, *,
              loss_fn: LossFn | None = None, seed: int = 0) -> PeerResult:
    """ZerO on every Linear / ConvNd of ``model``, in place (deterministic, data-free).

    Args:
        model: any model; one with Fixup-style ``blocks`` and ``head`` gets the residual rule.
        batches: unused. loss_fn: unused. seed: unused (ZerO draws nothing).

    Returns:
        PeerResult with zero passes; notes hold the layer count and whether the residual rule
        applied.
    """
    cost = Cost("zero")
    n = 0
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            zero_(m.weight)
            n += 1
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    blocks = list(getattr(model, "blocks", None) or [])
    residual = bool(blocks) and all(hasattr(b, "layers") for b in blocks)
    if residual:
        with torch.no_grad():
            for b in blocks:
                b.layers[-1].weight.zero_()
                for p in getattr(b, "biases", []):
                    p.zero_()
                if hasattr(b, "scale"):
                    b.scale.fill_(1.0)
            head = getattr(model, "head", None)
            if isinstance(head, nn.Linear):
                head.weight.zero_()
    return cost.result(layers=n, residual=residual)
