"""Streaming feature statistics: one pass over row chunks, O(n_features + chunk nnz) memory.

What data-aware initialization needs to know about an input matrix before it touches a model:
how often each feature fires, its mean and second moment, how many features a row has, and
``E[sum_j x_j^2]`` -- the *effective fan-in* that replaces ``n_features`` in a fan-in rule when
most inputs are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from initwise.data.convert import as_csr

__all__ = ["FeatureStats", "feature_stats"]

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Statistics of a feature matrix ``X`` (n_rows, n_features).

    Per-feature arrays have shape ``(n_features,)`` and count implicit zeros of sparse rows as
    zeros (statistics of the data, not of the stored entries). Compared by identity (it holds
    arrays); compare fields with numpy.

    Attributes:
        n_rows: number of rows.
        n_features: number of columns.
        nnz: number of non-zero entries.
        doc_freq: rows in which each feature is non-zero (int64).
        mean: ``E[x_j]`` over rows (float64).
        second_moment: ``E[x_j^2]`` over rows (float64).
        variance: ``Var[x_j]`` (float64; Chan's pairwise update, no cancellation on offsets).
        max_abs: ``max |x_j|`` (float64; 0 for a feature never seen).
        min_value: smallest value in ``X`` (0 when a row has implicit zeros).
        max_value: largest value in ``X``.
        nnz_per_row_hist: ``hist[k]`` = number of rows with exactly ``k`` non-zeros.
    """

    n_rows: int
    n_features: int
    nnz: int
    doc_freq: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    second_moment: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)
    max_abs: np.ndarray = field(repr=False)
    min_value: float
    max_value: float
    nnz_per_row_hist: np.ndarray = field(repr=False)

    @property
    def frequency(self) -> np.ndarray:
        """Fraction of rows in which each feature is non-zero."""
        return self.doc_freq / max(self.n_rows, 1)

    @property
    def std(self) -> np.ndarray:
        """Per-feature standard deviation ``sqrt(Var[x_j])``."""
        return np.sqrt(self.variance)

    @property
    def density(self) -> float:
        """``nnz / (n_rows * n_features)``."""
        return self.nnz / max(self.n_rows * self.n_features, 1)

    @property
    def sparsity(self) -> float:
        """``1 - density``: the fraction of zero entries."""
        return 1.0 - self.density

    @property
    def effective_fan_in(self) -> float:
        r"""``E[\sum_j x_j^2]`` = ``sum(second_moment)``: the mean squared row norm.

        For ``y = W x`` with i.i.d. ``W_ij ~ (0, s^2)``, ``E[y_i^2] = s^2 E[\sum_j x_j^2]``, so a
        unit-variance first layer has ``s = 1/sqrt(effective_fan_in)``, not ``1/sqrt(n_features)``.
        """
        return float(self.second_moment.sum())

    @property
    def nnz_per_row_mean(self) -> float:
        """Mean non-zeros per row."""
        return self.nnz / max(self.n_rows, 1)

    @property
    def nnz_per_row_min(self) -> int:
        """Fewest non-zeros in a row (0 for an empty matrix)."""
        hit = np.flatnonzero(self.nnz_per_row_hist)
        return int(hit[0]) if hit.size else 0

    @property
    def nnz_per_row_max(self) -> int:
        """Most non-zeros in a row."""
        hit = np.flatnonzero(self.nnz_per_row_hist)
        return int(hit[-1]) if hit.size else 0

    def nnz_per_row_quantile(self, q: float) -> int:
        """The ``q``-quantile of non-zeros per row (lower, i.e. ``np.quantile(method="lower")``)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q: expected a quantile in [0, 1]; got {q}")
        if self.n_rows == 0:
            return 0
        rank = int(np.floor(q * (self.n_rows - 1)))
        return int(np.searchsorted(np.cumsum(self.nnz_per_row_hist), rank, side="right"))

    @property
    def nonnegative(self) -> bool:
        """True when no value is negative (counts, TF-IDF, one-hot): ReLU units can die."""
        return self.min_value >= 0.0

    @property
    def unused_features(self) -> int:
        """Number of columns that are zero in every row."""
        return int(np.count_nonzero(self.doc_freq == 0))

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe dict (no per-feature arrays), e.g. for a doctor's data profile."""
        used = self.doc_freq > 0
        scale = np.sqrt(self.second_moment[used]) if used.any() else np.zeros(1)
        return {
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "nnz": self.nnz,
            "sparsity": self.sparsity,
            "nnz_per_row": {
                "mean": self.nnz_per_row_mean,
                "min": self.nnz_per_row_min,
                "max": self.nnz_per_row_max,
                **{f"q{q:g}": self.nnz_per_row_quantile(q) for q in QUANTILES},
            },
            "effective_fan_in": self.effective_fan_in,
            "unused_features": self.unused_features,
            "nonnegative": self.nonnegative,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "feature_rms": {
                "min": float(scale.min()),
                "median": float(np.median(scale)),
                "max": float(scale.max()),
            },
        }


class _Accumulator:
    """Running per-feature sums over row chunks.

    Sparse chunks touch only the columns present in them (O(nnz log nnz) per chunk, no
    full-width temporaries, so a 2^24-wide matrix streams fast); their variance is
    ``E[x^2] - E[x]^2`` from float64 sums, exact up to rounding unless a feature is non-zero in
    almost every row *and* has a large offset. Dense chunks use Chan, Golub & LeVeque's pairwise
    update, which has no cancellation on offsets.
    """

    def __init__(self, n_features: int) -> None:
        self.n = 0
        self.nnz = 0
        self.doc_freq = np.zeros(n_features, dtype=np.int64)
        self.total = np.zeros(n_features)  # sparse mode: sum of x
        self.mean = np.zeros(n_features)  # dense mode: running mean
        self.m2 = np.zeros(n_features)  # dense mode: running sum of squared deviations
        self.sumsq = np.zeros(n_features)
        self.max_abs = np.zeros(n_features)
        self.min_value = np.inf
        self.max_value = -np.inf
        self.hist = np.zeros(1, dtype=np.int64)
        self.sparse = False

    def add_sparse(self, chunk: sp.csr_matrix) -> None:
        self.sparse = True
        data = chunk.data.astype(np.float64)
        cols, inv = np.unique(chunk.indices, return_inverse=True)
        self.doc_freq[cols] += np.bincount(inv, minlength=len(cols))
        self.total[cols] += np.bincount(inv, weights=data, minlength=len(cols))
        self.sumsq[cols] += np.bincount(inv, weights=data * data, minlength=len(cols))
        mx = np.zeros(len(cols))
        np.maximum.at(mx, inv, np.abs(data))
        self.max_abs[cols] = np.maximum(self.max_abs[cols], mx)
        row_nnz = np.diff(chunk.indptr)
        lo = float(data.min()) if data.size else 0.0
        hi = float(data.max()) if data.size else 0.0
        if (row_nnz < chunk.shape[1]).any():  # implicit zeros are values too
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        self._rows(row_nnz, lo, hi)

    def add_dense(self, chunk: np.ndarray) -> None:
        x = np.asarray(chunk, dtype=np.float64)
        n_c = x.shape[0]
        nonzero = x != 0
        self.doc_freq += nonzero.sum(axis=0)
        mean_c = x.mean(axis=0)
        m2_c = ((x - mean_c) ** 2).sum(axis=0)
        n_new = self.n + n_c
        delta = mean_c - self.mean
        self.mean += delta * (n_c / n_new)
        self.m2 += m2_c + delta**2 * (self.n * n_c / n_new)
        self.sumsq += (x * x).sum(axis=0)
        np.maximum(self.max_abs, np.abs(x).max(axis=0), out=self.max_abs)
        self._rows(nonzero.sum(axis=1), float(x.min()), float(x.max()))

    def _rows(self, row_nnz: np.ndarray, lo: float, hi: float) -> None:
        self.n += len(row_nnz)
        self.nnz += int(row_nnz.sum())
        self.min_value, self.max_value = min(self.min_value, lo), max(self.max_value, hi)
        counts = np.bincount(row_nnz)
        if len(counts) > len(self.hist):
            self.hist = np.pad(self.hist, (0, len(counts) - len(self.hist)))
        self.hist[: len(counts)] += counts

    def result(self, n_features: int) -> FeatureStats:
        n = max(self.n, 1)
        second = self.sumsq / n
        if self.sparse:
            mean = self.total / n
            variance = np.maximum(second - mean * mean, 0.0)
        else:
            mean, variance = self.mean, self.m2 / n
        return FeatureStats(
            n_rows=self.n,
            n_features=n_features,
            nnz=self.nnz,
            doc_freq=self.doc_freq,
            mean=mean,
            second_moment=second,
            variance=variance,
            max_abs=self.max_abs,
            min_value=float(self.min_value) if self.n else 0.0,
            max_value=float(self.max_value) if self.n else 0.0,
            nnz_per_row_hist=self.hist if self.n else np.zeros(1, dtype=np.int64),
        )


def _as_matrix(X: Any) -> Any:
    inner = getattr(X, "X", None)
    if sp.issparse(inner) or isinstance(inner, np.ndarray):
        # A Dataset, recognized by its matrix attribute ``X``: this module sits below
        # initwise.data.dataset in the import graph (Dataset.stats() calls feature_stats).
        return inner
    if isinstance(X, torch.Tensor):
        if X.layout == torch.strided:
            return X.detach().cpu().numpy()
        coo = X.detach().cpu().to_sparse_coo().coalesce()
        rows, cols = coo.indices().numpy()
        return sp.csr_matrix((coo.values().numpy(), (rows, cols)), shape=tuple(coo.shape))
    if sp.issparse(X):
        return as_csr(X, dtype=np.float64)
    if isinstance(X, np.ndarray):
        return X
    raise TypeError(
        f"X: expected a Dataset, scipy.sparse matrix, numpy array or torch tensor; "
        f"got {type(X).__name__}"
    )


def feature_stats(X: Any, chunk_rows: int = 8192) -> FeatureStats:
    r"""Per-feature and per-row statistics of ``X`` in one streaming pass over row chunks.

    Memory is O(n_features + nnz of one chunk): a sparse matrix is never densified (and a
    sparse chunk only touches its own columns), a dense one is read ``chunk_rows`` rows at a
    time. Implicit zeros count as zeros. For dense input, variances are merged across chunks
    with the pairwise update of Chan, Golub & LeVeque (1979):
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n`` with ``delta = mean_b - mean_a``; for sparse
    input they are ``E[x^2] - E[x]^2`` from float64 sums.

    Args:
        X: a :class:`~initwise.data.Dataset` (any object whose attribute ``X`` is a scipy
            sparse matrix or numpy array), ``scipy.sparse`` matrix, 2-D numpy array, or torch
            tensor (dense, COO or CSR), shape (n_rows, n_features).
        chunk_rows: rows per chunk. Default 8192.

    Returns:
        A :class:`FeatureStats`.

    Raises:
        TypeError: if ``X`` is none of the accepted types.
        ValueError: if ``X`` is not 2-D, ``chunk_rows < 1``, or ``X`` holds NaN/Inf (the
            message names the first bad column).

    Example:
        >>> import numpy as np
        >>> st = feature_stats(np.array([[0.0, 2.0], [0.0, 4.0], [1.0, 0.0]]))
        >>> st.doc_freq.tolist(), st.mean.tolist(), st.second_moment.tolist()
        ([1, 2], [0.3333333333333333, 2.0], [0.3333333333333333, 6.666666666666667])
        >>> st.nnz_per_row_mean, st.effective_fan_in
        (1.0, 7.0)
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)):
        raise TypeError(f"chunk_rows: expected a positive int; got {chunk_rows!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows: expected a positive int; got {chunk_rows}")
    M = _as_matrix(X)
    if M.ndim != 2:
        raise ValueError(f"X: expected 2-D (n_rows, n_features); got shape {M.shape}")
    n_rows, n_features = M.shape
    acc = _Accumulator(n_features)
    for start in range(0, n_rows, chunk_rows):
        chunk = M[start : start + chunk_rows]
        values = chunk.data if sp.issparse(chunk) else chunk
        if not np.isfinite(values).all():
            _raise_non_finite(chunk, start)
        if chunk.shape[0] and sp.issparse(chunk):
            acc.add_sparse(chunk)
        elif chunk.shape[0]:
            acc.add_dense(chunk)
    return acc.result(n_features)


def _raise_non_finite(chunk: Any, start: int) -> None:
    if sp.issparse(chunk):
        coo = chunk.tocoo()
        k = int(np.flatnonzero(~np.isfinite(coo.data))[0])
        row, col, val = int(coo.row[k]), int(coo.col[k]), coo.data[k]
    else:
        row, col = (int(v) for v in np.argwhere(~np.isfinite(chunk))[0])
        val = chunk[row, col]
    raise ValueError(
        f"X: non-finite value {val} at row {start + row}, column {col} (0-based); impute or drop "
        "it first (np.nan_to_num, or a per-column median)"
    )
