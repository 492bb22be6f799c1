"""`load(path)`: one entry point for svmlight/libsvm, ``.npz``, ``.npy``, CSV/TSV and Parquet."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from initwise.data import binary, tabular
from initwise.data._textio import open_text, strip_compression
from initwise.data.dataset import Dataset
from initwise.data.errors import DataError, DataWarning
from initwise.data.svmlight import read_svmlight
from initwise.data.targets import check_task, encode_targets, multilabel_targets

__all__ = ["FORMATS", "detect_format", "load"]

FORMATS = ("svmlight", "npz", "npy", "csv", "parquet")
_EXTENSIONS = {
    ".svm": "svmlight",
    ".svmlight": "svmlight",
    ".libsvm": "svmlight",
    ".npz": "npz",
    ".npy": "npy",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_ALIASES = {"libsvm": "svmlight", "svm": "svmlight", "tsv": "csv", "pq": "parquet"}


def detect_format(path: str) -> str:
    """The format of ``path`` from its extension, else by sniffing the first data line.

    A file without a known extension whose first data line looks like ``label idx:val ...`` is
    svmlight (libsvm data sets often have no extension).

    Raises:
        DataError: if the format cannot be told; pass ``format=`` then.
    """
    root, _ = strip_compression(path)
    ext = os.path.splitext(root)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    with open_text(path) as f:
        try:
            for line in f:
                toks = line.split("#", 1)[0].split()
                if toks:
                    if len(toks) > 1 and ":" not in toks[0] and ":" in toks[1]:
                        return "svmlight"
                    break
        except UnicodeDecodeError:
            pass
    raise DataError(
        path,
        None,
        f"cannot tell the format from the extension {ext!r}",
        f"pass format= one of {FORMATS}",
    )


def load(
    path: str | os.PathLike,
    *,
    target: str | int | None = None,
    format: str | None = None,  # noqa: A002 - the public name the interface fixes
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    task: str = "auto",
    delimiter: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a data file into a :class:`~initwise.data.Dataset`.

    Formats (``format=None`` detects from the extension, compressed text ``.gz/.bz2/.xz`` too):

    * ``"svmlight"`` (``.svm``, ``.svmlight``, ``.libsvm``, or sniffed): labels from the first
      field (``1,3`` -> multi-label), ``qid:`` ignored, ``#`` comments, indices strictly
      increasing, 0- or 1-based (``zero_based``), sparse CSR features; see
      :mod:`initwise.data.svmlight`.
    * ``"npz"``: a ``scipy.sparse.save_npz`` matrix or arrays ``X`` (+ ``y``); ``target`` names
      the label key (default ``"y"`` if present).
    * ``"npy"``: a 2-D numeric array; ``target`` is a column index, or ``None`` (no labels).
    * ``"csv"`` (``.csv``, ``.tsv``): a header row; ``target`` names (or indexes) the label column;
      every other column must be numeric. The delimiter is sniffed from the header line unless
      given (see ``delimiter``).
    * ``"parquet"``: needs ``pip install initwise[parquet]``; like CSV.

    Decisions the reader takes on its own are announced with a
    :class:`~initwise.data.DataWarning` (``kind`` in brackets), so that none is silent:

    * [``one_based``] an svmlight file read with ``zero_based="auto"`` in which index 0 never
      occurs is read 1-based (scikit-learn's rule: index 1 is column 0); pass ``zero_based=``.
    * [``delimiter``] a CSV whose header has more ``;``, tabs or ``|`` than commas is read with
      that delimiter; pass ``delimiter=``.
    * [``label_column``] a CSV/Parquet table read with ``target=None`` that has a column that
      looks like a label (named ``label``/``labels``/``target``/``targets``/``y``/``class``, or
      a last column of 2..20 distinct integers next to real-valued columns; see
      :func:`initwise.data.tabular.label_like_column`): the column stays a feature (label
      leakage if it is the label), so pass ``target=`` naming it. The CLI refuses this case.

    Labels: strings become classes; numbers become classes when all integral (sorted values ->
    ids 0..K-1, names kept in ``class_names``; ``-1/+1`` -> ``0/1``), real values otherwise.
    ``task`` forces the reading.

    Args:
        path: the file.
        target: the label column (name, or index for npy/csv), ``None`` for none. Not used by
            svmlight (labels are the first field).
        format: one of :data:`FORMATS` (aliases ``libsvm``, ``tsv``, ``pq``), or ``None``.
        n_features: number of columns. svmlight: the width (indices beyond it are errors);
            others: a check. ``None`` infers.
        zero_based: svmlight indices, ``True`` (0-based), ``False`` (1-based) or ``"auto"``
            (0-based if index 0 occurs, else 1-based with a warning). Default ``"auto"``; only
            for svmlight.
        task: ``"auto"``, ``"classification"``, ``"regression"`` or ``"multilabel"``.
        delimiter: CSV separator, one character; ``None`` (default): tab for ``.tsv``, else
            sniffed from the header line (``,`` unless ``;``, tab or ``|`` occurs more often,
            with a warning). Only for CSV.
        name: the dataset's name; default the file name without extensions.

    Returns:
        A :class:`~initwise.data.Dataset` (sparse CSR for svmlight/sparse npz, dense otherwise).

    Raises:
        DataError: (a ``ValueError``) for a bad file, naming the file, line/row, fault and remedy.
        ValueError: for a bad argument (unknown format or task, a ``delimiter`` that is not one
            character, ``delimiter`` for a non-CSV file, ``zero_based`` for a non-svmlight one).
        ImportError: Parquet without pyarrow.

    Warns:
        DataWarning: a decision the reader took on its own (listed above).
    """
    path = os.fspath(path)
    check_task(task)
    fmt = _ALIASES.get(format, format) if format is not None else detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS} or None; got {format!r}")
    _check_format_options(path, fmt, zero_based, delimiter)
    base = os.path.basename(strip_compression(path)[0])
    name = os.path.splitext(base)[0] if name is None else name
    if fmt == "svmlight":
        return _load_svmlight(path, target, n_features, zero_based, task, name)
    table = _read_table(fmt, path, target, delimiter)
    if target is None and fmt in ("csv", "parquet") and table.feature_names:
        _warn_label_like(path, table)
    if n_features is not None and table.X.shape[1] != n_features:
        raise DataError(
            path,
            None,
            f"{table.X.shape[1]} feature columns, but n_features={n_features}",
            "pass n_features=None or the right file",
        )
    y, class_names = table.target, table.class_names
    if y is not None:
        y, found = _table_targets(path, np.asarray(y), task)
        class_names = class_names or found
    return Dataset(
        table.X, y, feature_names=table.feature_names, class_names=class_names, name=name
    )


def _check_format_options(path: str, fmt: str, zero_based: Any, delimiter: Any) -> None:
    if delimiter is not None and fmt != "csv":
        raise ValueError(
            f"delimiter: only CSV files have a delimiter; {path} is read as {fmt}; drop it"
        )
    if zero_based != "auto" and fmt != "svmlight":
        raise ValueError(
            f"zero_based: only svmlight files have 0- or 1-based indices; {path} is read as "
            f"{fmt}; drop it"
        )


def _warn_label_like(path: str, table: Any) -> None:
    found = tabular.label_like_column(table.feature_names, table.X)
    if found is None:
        return
    column, reason = found
    warnings.warn(
        DataWarning(
            path,
            "label_column",
            f"no target given, but column {column!r} looks like a label ({reason}); as a "
            f"feature it would leak the label into the inputs",
            f"pass target={column!r} to read it as the target",
            column=column,
        ),
        stacklevel=3,
    )


def _read_table(fmt: str, path: str, target: Any, delimiter: str | None) -> Any:
    if fmt == "csv":
        return tabular.read_csv(path, target=target, delimiter=delimiter)
    if fmt == "npy":
        if isinstance(target, str):
            raise ValueError(f"target: {path} (.npy) has no column names; pass a column index")
        return binary.read_npy(path, target=target)
    if fmt == "npz":
        return binary.read_npz(path, target=target)
    return binary.read_parquet(path, target=target)


def _table_targets(path: str, y: np.ndarray, task: str) -> tuple[np.ndarray, list[str] | None]:
    if y.dtype.kind in "USO":
        try:
            y = y.astype(np.float64)  # numeric labels written as text (CSV)
        except ValueError:
            pass  # class names
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))[0]) + 1
        raise DataError(
            path,
            row,
            "the label is not finite (NaN or Inf)",
            "fill in the label or drop the row",
            unit="row",
        )
    if task == "multilabel" or y.ndim == 2:
        if y.ndim != 2:
            raise DataError(
                path,
                None,
                "task='multilabel' needs a 2-D multi-hot target array",
                "save y with shape (n_rows, n_labels)",
            )
        return y.astype(np.float32), None
    if (
        y.dtype.kind in "iu"
        and task in ("auto", "classification")
        and (y.size == 0 or y.min() >= 0)
    ):
        return y.astype(np.int64), None
    try:
        return encode_targets(y, task)
    except ValueError as exc:
        raise DataError(path, None, str(exc), "pass the right task= or target=") from None


def _load_svmlight(
    path: str, target: Any, n_features: int | None, zero_based: Any, task: str, name: str
) -> Dataset:
    if target is not None:
        raise ValueError(
            "target: svmlight files carry the label as each line's first field; leave target=None"
        )
    data = read_svmlight(path, n_features=n_features, zero_based=zero_based)
    if task == "multilabel" or (task == "auto" and any("," in t for t in data.labels)):
        sets = [_label_set(path, t, line) for t, line in zip(data.labels, data.lines)]
        y, class_names = multilabel_targets(sets)
    else:
        values = np.array([_number(path, t, line) for t, line in zip(data.labels, data.lines)])
        y, class_names = encode_targets(values, task)
    dataset = Dataset(data.X, y, class_names=class_names, name=name)
    if zero_based == "auto" and not data.zero_based:
        warnings.warn(
            DataWarning(
                path,
                "one_based",
                "read as a 1-based svmlight file (index 1 is column 0), because feature index "
                "0 never occurs in it",
                "pass zero_based=True if it is 0-based (index 0 is then an empty column), or "
                "zero_based=False to state 1-based",
            ),
            stacklevel=3,
        )
    return dataset


def _number(path: str, token: str, line: int) -> float:
    try:
        v = float(token)
    except ValueError:
        raise DataError(
            path,
            int(line),
            f"label {token!r} is not a number",
            "write a numeric label first on the line",
        ) from None
    if not np.isfinite(v):
        raise DataError(path, int(line), f"label {token!r} is not finite", "fix the label")
    return v


def _label_set(path: str, token: str, line: int) -> list[float]:
    parts = token.split(",")
    if any(not p for p in parts):
        raise DataError(
            path,
            int(line),
            f"empty label in the label list {token!r}",
            "write labels as '1,3' without empty entries",
        )
    return [_number(path, p, line) for p in parts]
