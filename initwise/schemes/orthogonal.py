"""Norm-preserving structural schemes: orthogonal, delta-orthogonal, identity/Dirac, ZerO.

Layout: dim 0 is the output (rows), everything after it is flattened into the input side, which
is torch's layout for ``Linear`` and ``ConvNd`` weights (``(out, in/groups, *kernel)``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["delta_orthogonal_", "dirac_", "eye_", "hadamard", "identity_", "orthogonal_", "zero_"]


def _check_rank(tensor: Tensor, ranks: tuple[int, ...], where: str, what: str) -> None:
    if tensor.dim() not in ranks:
        raise ValueError(
            f"{where}: needs a tensor with {what} dimensions, got shape {tuple(tensor.shape)}"
        )


def _check_groups(tensor: Tensor, groups: int, where: str) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive int, got {groups!r}")
    if tensor.shape[0] % groups:
        raise ValueError(
            f"{where}: dim 0 of shape {tuple(tensor.shape)} is not divisible by groups={groups}"
        )
    return tensor.shape[0] // groups


def _set_centre_taps(tensor: Tensor, groups: int, block: Callable[[], Tensor]) -> Tensor:
    """Zero ``tensor`` (``(out, in/groups, *kernel)``) and write ``block()``, an
    ``(out/groups, in/groups)`` matrix (called once per group, in group order), on the centre
    tap ``k // 2`` of each group's rows. A 2-D tensor has no kernel: the block is the matrix."""
    per_group = tensor.shape[0] // groups
    centre = tuple(k // 2 for k in tensor.shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            tensor[(slice(g * per_group, (g + 1) * per_group), slice(None), *centre)] = block()
    return tensor


def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None
) -> Tensor:
    """(Semi-)orthogonal matrix on the ``(rows, prod(rest))`` view, times ``gain``.

    Defining property, with ``W`` the ``(out, in * prod(kernel))`` view: ``W W^T = gain^2 I``
    when ``out <= in`` (orthonormal rows), ``W^T W = gain^2 I`` when ``out >= in`` (orthonormal
    columns: the map is a norm-preserving isometry). Drawn from the Haar measure (QR of a
    Gaussian matrix with the sign of ``diag(R)`` fixed). Bit-identical to
    ``torch.nn.init.orthogonal_`` for the same generator on float32/float64 tensors; float16 and
    bfloat16 tensors (where torch raises: QR has no kernel for them) get the float32 result
    rounded once.

    Args:
        tensor: the tensor to fill in place, >= 2 dims.
        gain: multiplier. Default 1.
        generator: the random source. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: a tensor with < 2 dims.

    References:
        Saxe et al., "Exact solutions to the nonlinear dynamics of learning in deep linear
        neural networks", arXiv:1312.6120; Mezzadri, arXiv:math-ph/0609050 (Haar sampling).
    """
    if tensor.dim() < 2:
        raise ValueError(
            f"orthogonal_: needs a tensor with at least 2 dimensions, got shape "
            f"{tuple(tensor.shape)}"
        )
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    # QR has no float16/bfloat16 kernel (torch's own orthogonal_ raises there): draw and
    # factorize in float32, then round once into the tensor. float32/float64: torch's path.
    work = tensor.dtype if tensor.dtype in (torch.float32, torch.float64) else torch.float32
    with torch.no_grad():
        flat = tensor.new_empty((rows, cols), dtype=work).normal_(0, 1, generator=generator)
        if rows < cols:
            flat.t_()
        q, r = torch.linalg.qr(flat)
        q *= torch.diag(r, 0).sign()
        if rows < cols:
            q.t_()
        q *= gain  # before the copy: one rounding into a low-precision tensor
        tensor.copy_(q.reshape(tensor.shape))
    return tensor


def delta_orthogonal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None,
                      *, groups: int = 1) -> Tensor:
    """Delta-orthogonal ConvNd kernel: orthogonal centre tap, every other tap zero.

    Defining property: ``W[:, :, c] = gain * H`` with ``H`` orthogonal (per group) and
    ``c = (k_1 // 2, ..., k_d // 2)``, all other taps 0. With ``out/groups >= in/groups`` (Xiao
    et al.'s requirement) ``H^T H = I``, so the convolution (circular padding) is an isometry:
    ``||conv(x)|| = gain * ||x||`` for every input, which is what lets 10,000-layer vanilla CNNs
    train at the edge of chaos. With fewer outputs than inputs ``H`` has orthonormal ROWS
    (``H H^T = I``) and the map is an orthogonal projection (norm-preserving on its row space
    only); this is the same construction, documented rather than refused, because bottleneck
    1x1 convolutions need it. Even kernel sizes use tap ``k // 2`` (as ``dirac_``).

    Args:
        tensor: a ConvNd weight ``(out, in/groups, *kernel)``, 3 to 5 dims.
        gain: multiplier of the centre tap. Default 1.
        generator: the random source. Default ``None``.
        groups: the convolution's groups; each group's ``(out/groups, in/groups)`` block is an
            independent orthogonal matrix. Default 1.

    Returns:
        ``tensor``.

    Raises:
        ValueError: rank not in 3..5, or dim 0 not divisible by ``groups``.

    References:
        Xiao et al., "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train
        10,000-Layer Vanilla Convolutional Neural Networks", arXiv:1806.05393.
    """
    where = "delta_orthogonal_"
    _check_rank(tensor, (3, 4, 5), where, "3, 4 or 5 (a Conv1d/2d/3d weight)")
    per_group = _check_groups(tensor, groups, where)
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    return _set_centre_taps(tensor, groups, lambda: orthogonal_(
        tensor.new_empty((per_group, tensor.shape[1])), gain, generator))


def eye_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Identity matrix (``W[i, i] = 1``, rectangular allowed); same as ``torch.nn.init.eye_``.

    Args:
        tensor: a 2-D tensor.
        generator: unused (deterministic scheme; accepted for a uniform interface).

    Returns:
        ``tensor``.

    Raises:
        ValueError: a tensor that is not 2-D.
    """
    _check_rank(tensor, (2,), "eye_", "2")
    with torch.no_grad():
        tensor.zero_()
        n = min(tensor.shape)
        tensor[torch.arange(n), torch.arange(n)] = 1
    return tensor


def dirac_(tensor: Tensor, groups: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
    """Dirac delta ConvNd kernel: the convolution copies its input channels (per group).

    Defining property: ``W[g*m + d, d, k_1//2, ..., k_n//2] = 1`` for ``d < min(m, in/groups)``,
    ``m = out/groups``; all else 0. Same values as ``torch.nn.init.dirac_``.

    Args:
        tensor: a ConvNd weight, 3 to 5 dims.
        groups: number of groups. Default 1.
        generator: unused (deterministic scheme; accepted for a uniform interface).

    Returns:
        ``tensor``.

    Raises:
        ValueError: rank not in 3..5, or dim 0 not divisible by ``groups``.

    References:
        Zagoruyko & Komodakis, "DiracNets: Training Very Deep Neural Networks Without
        Skip-Connections", arXiv:1706.00388.
    """
    _check_rank(tensor, (3, 4, 5), "dirac_", "3, 4 or 5")
    per_group = _check_groups(tensor, groups, "dirac_")
    if tensor.is_meta:
        return tensor
    eye = torch.eye(per_group, tensor.shape[1], dtype=tensor.dtype, device=tensor.device)
    return _set_centre_taps(tensor, groups, lambda: eye)


def identity_(tensor: Tensor, groups: int = 1, *,
              generator: torch.Generator | None = None) -> Tensor:
    """Identity map: :func:`eye_` for a 2-D weight, :func:`dirac_` for a ConvNd weight.

    Args:
        tensor: 2 to 5 dims.
        groups: conv groups (3-5 dims only). Default 1.
        generator: unused (deterministic scheme).

    Returns:
        ``tensor``.

    Raises:
        ValueError: rank not in 2..5, or ``groups != 1`` for a 2-D tensor.

    References:
        Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
        Units", arXiv:1504.00941 (identity init); DiracNets, arXiv:1706.00388.
    """
    _check_rank(tensor, (2, 3, 4, 5), "identity_", "2 (Linear) or 3-5 (ConvNd)")
    if tensor.dim() == 2:
        if groups != 1:
            raise ValueError(f"identity_: groups={groups} needs a ConvNd weight, got 2-D")
        return eye_(tensor)
    return dirac_(tensor, groups)


def hadamard(rows: int, cols: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """The top-left ``rows x cols`` block of Sylvester's Hadamard matrix ``H_m``, ``2^m >= rows``.

    ``H_m[i, j] = (-1)^popcount(i & j)``, the same matrix as the recursion
    ``H_m = [[H, H], [H, -H]]`` (``scipy.linalg.hadamard``), without building ``2^m x 2^m``.

    Example:
        >>> hadamard(2, 2)
        tensor([[ 1.,  1.],
                [ 1., -1.]])
    """
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    bits = i & j
    parity = torch.zeros_like(bits)
    while bool(bits.any()):
        parity ^= bits & 1
        bits = bits >> 1
    return (1 - 2 * parity).to(dtype)


def _zero_matrix(rows: int, cols: int, dtype: torch.dtype) -> Tensor:
    if rows <= cols:  # identity, or the partial identity I* (propagate the first `rows` inputs)
        return torch.eye(rows, cols, dtype=dtype)
    m = (rows - 1).bit_length()  # ceil(log2(rows))
    c = 2.0 ** (-(m - 1) / 2)
    return c * hadamard(rows, cols, dtype=torch.float64).to(dtype)


def zero_(tensor: Tensor, groups: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
    """ZerO: deterministic init from zeros, ones and a Hadamard transform (Zhao et al. 2022).

    For ``W`` of shape ``(P, Q)`` (out, in) (Algorithm 1 of the paper):

    - ``P == Q``: ``W = I`` (identity);
    - ``P < Q``: ``W = I*``, the partial identity (propagates the first ``P`` inputs);
    - ``P > Q``: ``W = c I* H_m I*`` = ``c * H_m[:P, :Q]``, with ``m = ceil(log2 P)``,
      ``c = 2^(-(m-1)/2)`` and ``H_m`` Sylvester's Hadamard matrix (entries +-1), so the
      columns are orthogonal when ``P`` is a power of two (``W^T W = 2 I``) and no two inputs
      are mapped to the same direction (the "training degeneracy" the Hadamard avoids).

    A ConvNd weight gets that matrix on its centre tap and zeros elsewhere (Algorithm 2);
    ``groups`` applies it per group. Deterministic: no random numbers at all.

    Args:
        tensor: 2 to 5 dims.
        groups: conv groups (3-5 dims). Default 1.
        generator: unused (deterministic scheme; accepted for a uniform interface).

    Returns:
        ``tensor``.

    Raises:
        ValueError: rank not in 2..5, or dim 0 not divisible by ``groups``.

    References:
        Zhao, Schäfer & Anandkumar, "ZerO Initialization: Initializing Neural Networks with
        only Zeros and Ones", TMLR 2022, arXiv:2110.12661.
    """
    _check_rank(tensor, (2, 3, 4, 5), "zero_", "2 (Linear) or 3-5 (ConvNd)")
    per_group = _check_groups(tensor, groups, "zero_")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    block = _zero_matrix(per_group, tensor.shape[1], tensor.dtype).to(tensor.device)
    return _set_centre_taps(tensor, groups, lambda: block)
