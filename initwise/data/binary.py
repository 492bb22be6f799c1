"""Readers for binary array files: ``.npy``, ``.npz`` (scipy sparse or dense arrays), Parquet.

Rows in error messages are 1-based (``row 1`` is the first example).
"""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np
import scipy.sparse as sp

from initwise.data.errors import DataError
from initwise.data.tabular import Table, check_finite, target_index

__all__ = ["read_npy", "read_npz", "read_parquet"]

_F32_MAX = float(np.finfo(np.float32).max)
_SPARSE_KEYS = {"format", "shape", "indptr", "indices", "data"}
_PICKLED = "Object arrays cannot be loaded when allow_pickle=False"


def _pickled(path: str, what: str) -> DataError:
    """The error for pickled Python objects, which initwise never loads (unpickling runs code)."""
    return DataError(
        path,
        None,
        f"not a readable numeric file: {what} holds pickled Python objects (an object array), "
        f"which initwise never loads (allow_pickle=False: unpickling a file can run code)",
        "save a numeric array instead, e.g. np.save(path, X.astype(np.float32))",
    )


def _empty(path: str, shape: tuple) -> DataError:
    return DataError(
        path,
        None,
        f"no examples (array shape {shape})",
        "save a non-empty (n_rows, n_features) array",
    )


def _check_2d(path: str, X: Any) -> None:
    if X.ndim != 2:
        raise DataError(
            path,
            None,
            f"expected a 2-D (n_rows, n_features) array; got shape {X.shape}",
            "save X.reshape(len(X), -1)",
        )
    if X.shape[0] == 0:
        raise _empty(path, X.shape)


def _numeric(path: str, X: np.ndarray, what: str) -> np.ndarray:
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise DataError(
            path,
            None,
            f"{what} has dtype {X.dtype}, not numeric",
            "save numbers, e.g. np.save(path, X.astype(np.float32))",
        )
    return X


def _check_sparse_finite(path: str, X: sp.csr_matrix) -> None:
    """Raise at the first stored NaN/Inf or value beyond float32's range (row named, 1-based)."""
    X.sum_duplicates()  # the check must see the values the Dataset will hold
    data = np.asarray(X.data, dtype=np.float64)
    for bad, what, remedy in (
        (~np.isfinite(data), "is not finite", "impute or drop non-finite values"),
        (np.abs(data) > _F32_MAX, "overflows float32 (|x| > 3.4e38)", "rescale it (e.g. log1p)"),
    ):
        hits = np.flatnonzero(bad)
        if hits.size:
            k = int(hits[0])
            row = int(np.searchsorted(X.indptr, k, side="right") - 1)
            raise DataError(
                path,
                row + 1,
                f"column {int(X.indices[k])}: value {X.data[k]} {what}",
                remedy,
                unit="row",
            )


def read_npy(path: str, *, target: int | None = None) -> Table:
    """Read a 2-D numeric ``.npy`` array; ``target`` is the index of a label column, if any.

    Raises:
        DataError: unreadable or pickled file, not 2-D, no rows, non-numeric, NaN/Inf (row and
            column named), target index out of range.
        ValueError: ``target`` given as a name (``.npy`` has no column names).
    """
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if _PICKLED in str(exc):
            raise _pickled(path, "the .npy array") from None
        raise DataError(
            path,
            None,
            f"not a readable numeric .npy file ({exc})",
            "save with np.save(path, X) from a numeric array",
        ) from None
    if not isinstance(X, np.ndarray):
        raise DataError(
            path, None, "holds several arrays (an .npz archive?)", "load it with format='npz'"
        )
    _check_2d(path, X)
    _numeric(path, X, "the array")
    check_finite(path, X, [str(j) for j in range(X.shape[1])], np.arange(1, len(X) + 1), "row")
    t = target_index(path, None, X.shape[1], target)
    if t is None:
        return Table(X=X, target=None, feature_names=None)
    keep = [j for j in range(X.shape[1]) if j != t]
    return Table(X=X[:, keep], target=X[:, t], feature_names=None)


def read_npz(path: str, *, target: str | None = None) -> Table:
    """Read an ``.npz``: a ``scipy.sparse.save_npz`` matrix, or arrays ``X`` (+ ``y``).

    Optional string arrays ``feature_names`` and ``class_names`` are picked up. The target key
    defaults to ``"y"`` when present; a ``save_npz`` archive may carry it as an extra key.

    Raises:
        DataError: unreadable file, no ``X`` and not a sparse matrix, unknown target key,
            ``y`` of the wrong length, no rows, NaN/Inf (row named).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            path,
            None,
            f"not a readable .npz archive ({exc})",
            "save with np.savez(path, X=X, y=y) or scipy.sparse.save_npz",
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(path, None, "holds one array, not an archive", "load it as format='npy'")
    try:
        with archive:
            return _read_archive(path, archive, target)
    except ValueError as exc:
        if _PICKLED in str(exc) and not isinstance(exc, DataError):
            raise _pickled(path, "an array of the .npz archive") from None
        raise


def _read_archive(path: str, archive: Any, target: str | None) -> Table:
    """The table of an open ``.npz`` archive (closed by the caller)."""
    keys = set(archive.files)
    if _SPARSE_KEYS <= keys:
        X = sp.load_npz(path).tocsr()
    elif "X" in keys:
        X = _numeric(path, archive["X"], "X")
    else:
        raise DataError(
            path,
            None,
            f"no feature matrix: keys are {sorted(keys)}",
            "save arrays X (and y) with np.savez, or a scipy.sparse matrix with "
            "scipy.sparse.save_npz",
        )
    key = target if target is not None else ("y" if "y" in keys else None)
    if key is not None and key not in keys:
        raise DataError(
            path,
            None,
            f"unknown target key {key!r}; keys are {sorted(keys)}",
            "pass one of them as target=",
        )
    y = None if key is None else archive[key]
    names = {
        k: [str(v) for v in archive[k]] for k in ("feature_names", "class_names") if k in keys
    }
    _check_2d(path, X)
    if sp.issparse(X):
        _check_sparse_finite(path, X)
    else:
        check_finite(path, X, [str(j) for j in range(X.shape[1])], np.arange(1, len(X) + 1), "row")
    if y is not None and len(y) != X.shape[0]:
        raise DataError(
            path,
            None,
            f"{key!r} has {len(y)} entries for {X.shape[0]} rows",
            "save one target per row",
        )
    return Table(
        X=X,
        target=y,
        feature_names=names.get("feature_names"),
        class_names=names.get("class_names"),
    )


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading Parquet files needs pyarrow: pip install initwise[parquet] "
            "(or pip install pyarrow)"
        ) from None
    return pq


def read_parquet(path: str, *, target: str | None = None) -> Table:
    """Read a Parquet file (needs ``pyarrow``: ``pip install initwise[parquet]``).

    Feature columns must be numeric or boolean; the target column may hold strings.

    Raises:
        ImportError: if pyarrow is not installed.
        DataError: unreadable file, no rows, unknown target column, a non-numeric feature column
            (named), a null (missing) value or NaN/Inf (row and column named).
    """
    pq = _import_parquet()
    import pyarrow as pa

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            path,
            None,
            f"not a readable Parquet file ({exc})",
            "check the path and that the file is Parquet",
        ) from None
    names = [str(n) for n in table.column_names]
    if table.num_rows == 0:
        raise _empty(path, (0, len(names)))
    t = target_index(path, names, len(names), target)
    cols = []
    for j, name in enumerate(names):
        col = table.column(j)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
            what = "missing label" if j == t else "missing (null) value"
            raise DataError(
                path, row, f"column {name!r}: {what}", "fill in or drop missing values", unit="row"
            )
        if j == t:
            continue
        if not (
            pa.types.is_integer(col.type)
            or pa.types.is_floating(col.type)
            or pa.types.is_boolean(col.type)
            or pa.types.is_decimal(col.type)
        ):
            raise DataError(
                path,
                None,
                f"column {name!r} has type {col.type}, not numeric",
                "encode categorical columns as numbers (one-hot or hashed) or drop them",
            )
        cols.append(col.to_numpy().astype(np.float64))
    X = np.stack(cols, axis=1) if cols else np.zeros((table.num_rows, 0))
    feat = [n for j, n in enumerate(names) if j != t]
    check_finite(path, X, feat, np.arange(1, len(X) + 1), "row")
    y = None if t is None else table.column(t).to_numpy()
    return Table(X=X.astype(np.float32), target=y, feature_names=feat)
