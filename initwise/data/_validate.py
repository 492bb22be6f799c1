"""Argument checks for :class:`initwise.data.Dataset` (features, targets, batch sizes, rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from initwise.data.convert import as_csr


def check_features(X: Any) -> np.ndarray | sp.csr_matrix:
    """``X`` as canonical CSR float32 or a C-contiguous float32 array; finite, 2-D."""
    if sp.issparse(X):
        with np.errstate(over="ignore"):  # values beyond float32 become inf: reported below
            X = as_csr(X)
        values = X.data
    elif isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(
                f"X: expected a 2-D array (n_rows, n_features); got shape {X.shape}. "
                "Reshape with X.reshape(len(X), -1)."
            )
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
            raise TypeError(f"X: expected a numeric array; got dtype {X.dtype}")
        with np.errstate(over="ignore"):
            X = np.ascontiguousarray(X, dtype=np.float32)
        values = X
    else:
        raise TypeError(
            f"X: expected a scipy.sparse matrix or a 2-D numpy array; got {type(X).__name__}. "
            "Convert tensors with .numpy(), data frames with .to_numpy()."
        )
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values))[0]
        row = int(np.searchsorted(X.indptr, bad, side="right") - 1) if sp.issparse(X) else None
        row = row if row is not None else int(bad // max(X.shape[1], 1))
        raise ValueError(
            f"X: non-finite value (NaN, Inf, or beyond float32's +-3.4e38) in row {row} "
            "(0-based); impute, rescale or drop it first, e.g. np.nan_to_num(X) or a median "
            "per column."
        )
    return X


def check_targets(y: Any, n_rows: int) -> np.ndarray | None:
    """``y`` as int64 labels (1-D integers >= 0) or float32 values, one per row; finite."""
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != n_rows:
        raise ValueError(
            f"y: expected shape ({n_rows},) or ({n_rows}, k) to match X's {n_rows} rows; "
            f"got shape {y.shape}"
        )
    if y.dtype == np.bool_:
        y = y.astype(np.float32)
    if not np.issubdtype(y.dtype, np.number):
        raise TypeError(
            f"y: expected numeric targets; got dtype {y.dtype}. Map class names to 0..K-1 "
            "with np.unique(y, return_inverse=True) and pass the names as class_names."
        )
    if np.issubdtype(y.dtype, np.integer):
        if y.ndim == 1 and y.size and y.min() < 0:
            raise ValueError(
                f"y: class labels must be 0..K-1; found {int(y.min())}. Remap with "
                "np.unique(y, return_inverse=True)."
            )
        return np.ascontiguousarray(y, dtype=np.int64) if y.ndim == 1 else y.astype(np.float32)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.isfinite(y).all():
        raise ValueError("y: targets contain NaN or Inf; drop or impute those rows first")
    return y


def check_batch_size(batch_size: int) -> None:
    """Raise unless ``batch_size`` is a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size: expected a positive int; got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int; got {batch_size}")


def check_rows(rows: Any, n_rows: int) -> Any:
    """Row selector (slice, integer indices or boolean mask) checked against ``n_rows``."""
    if isinstance(rows, slice):
        return rows
    rows = np.asarray(rows)
    if rows.dtype == np.bool_:
        if rows.shape != (n_rows,):
            raise ValueError(f"rows: boolean mask of shape {rows.shape}; expected ({n_rows},)")
        return np.flatnonzero(rows)
    if not np.issubdtype(rows.dtype, np.integer) or rows.ndim != 1:
        raise TypeError(f"rows: expected 1-D integer indices, a slice or a mask; got {rows.dtype}")
    if rows.size and (rows.min() < -n_rows or rows.max() >= n_rows):
        raise ValueError(f"rows: indices must lie in [-{n_rows}, {n_rows}); got out-of-range")
    return rows
