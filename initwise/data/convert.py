"""scipy.sparse -> torch without densifying: a sparse CSR tensor or an EmbeddingBag triple.

Both conversions cost O(nnz + n_rows) memory whatever the number of columns, so a batch of a
2^24-wide hashed matrix (64 MiB per row if dense) stays a few kilobytes.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["as_csr", "csr_to_bag", "csr_to_torch"]


def as_csr(x: Any, *, name: str = "X", dtype: Any = np.float32) -> sp.csr_matrix:
    """A canonical CSR copy-or-view of ``x`` in ``dtype``: sorted indices, no duplicates or zeros.

    The caller's matrix is never modified: a matrix that is not canonical (duplicate or unsorted
    column indices within a row, or explicitly stored zeros) is copied before duplicates are summed
    and zeros dropped.

    Args:
        x: a ``scipy.sparse`` matrix or array (any format).
        name: argument name for error messages. Default ``"X"``.
        dtype: value dtype. Default ``np.float32``.

    Returns:
        A ``scipy.sparse.csr_matrix`` with ``has_canonical_format`` true.

    Raises:
        TypeError: if ``x`` is not a scipy.sparse matrix.
        ValueError: if ``x`` is not 2-D.
    """
    if not sp.issparse(x):
        raise TypeError(f"{name}: expected a scipy.sparse matrix; got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D sparse matrix; got shape {x.shape}")
    csr = sp.csr_matrix(x, dtype=dtype)
    explicit_zeros = bool((csr.data == 0).any())
    if not csr.has_canonical_format or explicit_zeros:
        csr = csr.copy()
        csr.sum_duplicates()
        csr.eliminate_zeros()
    return csr


def _check_csr(csr: Any) -> sp.csr_matrix:
    if not sp.issparse(csr):
        raise TypeError(
            f"csr: expected a scipy.sparse matrix; got {type(csr).__name__}. For a dense array "
            "use torch.from_numpy, or scipy.sparse.csr_matrix(x) to make it sparse."
        )
    return csr if csr.format == "csr" else csr.tocsr()


def csr_to_torch(
    csr: Any,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert a scipy.sparse matrix to a ``torch.sparse_csr_tensor`` without densifying.

    Args:
        csr: a ``scipy.sparse`` matrix (CSR preferred; other formats are converted to CSR).
        dtype: value dtype of the result. Default ``torch.float32``.
        device: target device; ``None`` keeps the CPU.

    Returns:
        A sparse CSR tensor of shape ``csr.shape`` with int64 ``crow_indices``/``col_indices``.

    Raises:
        TypeError: if ``csr`` is not a scipy.sparse matrix.

    Example:
        >>> import scipy.sparse as sp
        >>> t = csr_to_torch(sp.csr_matrix([[0, 2.0], [1.0, 0]]))
        >>> t.layout, t.to_dense().tolist()
        (torch.sparse_csr, [[0.0, 2.0], [1.0, 0.0]])
    """
    csr = _check_csr(csr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        t = torch.sparse_csr_tensor(
            torch.from_numpy(np.asarray(csr.indptr, dtype=np.int64)),
            torch.from_numpy(np.asarray(csr.indices, dtype=np.int64)),
            torch.from_numpy(np.asarray(csr.data)).to(dtype),
            size=csr.shape,
            check_invariants=False,
        )
    return t if device is None else t.to(device)


def csr_to_bag(
    csr: Any,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Convert a scipy.sparse matrix to an ``nn.EmbeddingBag`` triple without densifying.

    Row ``i`` becomes the bag ``indices[offsets[i]:offsets[i+1]]`` with weights
    ``per_sample_weights[offsets[i]:offsets[i+1]]``, so that
    ``nn.EmbeddingBag(n_features, d, mode="sum")(indices, offsets, per_sample_weights)`` equals
    ``X @ W`` for the bag's weight table ``W`` (n_features, d). Empty rows give empty bags (a zero
    row of output). ``offsets`` has one entry per row (``include_last_offset=False``).

    Args:
        csr: a ``scipy.sparse`` matrix (other formats are converted to CSR).
        dtype: dtype of ``per_sample_weights``. Default ``torch.float32``.
        device: target device; ``None`` keeps the CPU.

    Returns:
        ``(indices, offsets, per_sample_weights)``: int64 (nnz,), int64 (n_rows,), ``dtype`` (nnz,).

    Raises:
        TypeError: if ``csr`` is not a scipy.sparse matrix.

    Example:
        >>> import scipy.sparse as sp
        >>> idx, off, w = csr_to_bag(sp.csr_matrix([[0, 2.0, 3.0], [0, 0, 0], [1.0, 0, 0]]))
        >>> idx.tolist(), off.tolist(), w.tolist()
        ([1, 2, 0], [0, 2, 2], [2.0, 3.0, 1.0])
    """
    csr = _check_csr(csr)
    indices = torch.from_numpy(np.asarray(csr.indices, dtype=np.int64))
    offsets = torch.from_numpy(np.asarray(csr.indptr[:-1], dtype=np.int64))
    weights = torch.from_numpy(np.asarray(csr.data)).to(dtype)
    if device is not None:
        indices, offsets, weights = indices.to(device), offsets.to(device), weights.to(device)
    return indices, offsets, weights
