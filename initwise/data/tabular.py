"""The CSV reader (stdlib csv + numpy, no pandas) and what all tabular readers share.

Each reader returns a :class:`Table` (features, raw target column, names) and raises
:class:`~initwise.data.DataError` naming the file, the line (text) or row (binary, 1-based), the
column and the fault.
"""

from __future__ import annotations

import csv
import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.data._textio import open_text
from initwise.data.errors import DataError, DataWarning

__all__ = ["LABEL_NAMES", "SNIFFED_DELIMITERS", "Table", "label_like_column", "read_csv",
           "sniff_delimiter"]

_BLOCK = 65536
_F32_MAX = float(np.finfo(np.float32).max)
_NON_FINITE = {"nan", "inf", "infinity"}
_CATEGORICAL = (
    "encode categorical columns as numbers (one-hot or hashed) or drop them; impute missing values"
)


@dataclass
class Table:
    """A read table: features, the raw target column (or ``None``), and column names."""

    X: Any
    target: np.ndarray | None
    feature_names: list[str] | None
    class_names: list[str] | None = None


def target_index(path: str, names: list[str] | None, n_cols: int, target: Any) -> int | None:
    if target is None:
        return None
    if isinstance(target, str):
        if names is None:
            raise ValueError(
                f"target: {path} has no column names; pass the target column's index (int)"
            )
        if target not in names:
            raise DataError(
                path,
                1 if path.lower().endswith((".csv", ".tsv")) else None,
                f"unknown target column {target!r}; the columns are {names}",
                "pass one of them as target=",
            )
        return names.index(target)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not -n_cols <= target < n_cols:
            raise DataError(
                path,
                None,
                f"target column index {target} out of range for {n_cols} columns",
                f"pass an index in [0, {n_cols})",
            )
        return int(target) % n_cols
    raise TypeError(f"target: expected a column name (str), index (int) or None; got {target!r}")


def check_finite(path: str, X: np.ndarray, names: list[str], lines: Any, unit: str) -> None:
    """Raise a DataError at the first NaN/Inf, or value beyond float32's range, of ``X``."""
    if X.dtype.kind not in "fc":
        return
    for bad, what, remedy in (
        (~np.isfinite(X), "is not finite", "impute or drop non-finite values"),
        (np.abs(X) > _F32_MAX, "overflows float32 (|x| > 3.4e38)", "rescale it (e.g. log1p)"),
    ):
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            raise DataError(
                path,
                int(lines[r]),
                f"column {names[c]!r}: value {X[r, c]} {what}",
                remedy,
                unit=unit,
            )


# --------------------------------------------------------------------------------------- CSV
SNIFFED_DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(header: str) -> str:
    """The delimiter of a CSV header line, by a count rule.

    The candidate among :data:`SNIFFED_DELIMITERS` (``,`` ``;`` tab ``|``) that occurs most
    often in the header line (outside double quotes) wins; a tie, or a header with none of
    them (one column), gives ``","``.

    Example:
        >>> sniff_delimiter("a;b;c"), sniff_delimiter("a,b;c"), sniff_delimiter("x")
        (';', ',', ',')
    """
    unquoted = "".join(header.split('"')[0::2])
    counts = {d: unquoted.count(d) for d in SNIFFED_DELIMITERS}
    best = max(SNIFFED_DELIMITERS, key=lambda d: counts[d])  # first on ties: ","
    return best if counts[best] > counts[","] else ","


def _check_delimiter(delimiter: Any) -> None:
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        raise ValueError(
            f"delimiter: expected one character (e.g. ',', ';', '\\t'), not a quote or a line "
            f"break; got {delimiter!r}"
        )


def read_csv(path: str, *, target: Any = None, delimiter: str | None = None) -> Table:
    """Read a CSV file with a header row into a dense float32 feature matrix.

    Args:
        path: the file (``.gz``/``.bz2``/``.xz`` decompressed); ``.tsv`` defaults to tabs.
        target: the label column's name or index; ``None`` for no targets.
        delimiter: field separator; ``None`` -> tab for ``.tsv``, else sniffed from the header
            line (:func:`sniff_delimiter`: ``;``, tab or ``|`` when it occurs more often than
            ``,``; a :class:`~initwise.data.DataWarning` says so).

    Returns:
        A :class:`Table`; the target column is returned as strings (encoded by the caller).

    Raises:
        DataError: for an empty file, duplicate column names, an unknown target column, a row
            with the wrong number of fields, a non-numeric or empty feature value (naming the
            column), NaN/Inf, a missing label, or no data rows.
        ValueError: a ``delimiter`` that is not one character.
    """
    if delimiter is not None:
        _check_delimiter(delimiter)
    with open_text(path) as f:
        try:
            first = next(f, "")
        except UnicodeDecodeError as exc:
            raise DataError(
                path, 1, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8"
            ) from None
        sep = delimiter or ("\t" if ".tsv" in path.lower() else sniff_delimiter(first))
        if delimiter is None and sep != "," and ".tsv" not in path.lower():
            _warn_delimiter(path, sep, first)
        reader = csv.reader(itertools.chain([first] if first else [], f), delimiter=sep)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise DataError(
                    path,
                    1,
                    "empty file (no header row)",
                    "write a header row naming the columns, then one row per example",
                )
            names = _header(path, header)
            t = target_index(path, names, len(names), target)
            feat_cols = [j for j in range(len(names)) if j != t]
            blocks, labels, rows, lines = [], [], [], []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(names):
                    raise DataError(
                        path,
                        reader.line_num,
                        f"{len(row)} fields, but the header has {len(names)}",
                        f"give every row one value per column (quote fields containing {sep!r})",
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) >= _BLOCK:
                    blocks.append(_csv_block(path, rows, lines[-len(rows) :], feat_cols, names))
                    labels.extend(_csv_labels(path, rows, lines[-len(rows) :], t, names))
                    rows = []
        except csv.Error as exc:
            raise DataError(
                path, reader.line_num, f"malformed CSV ({exc})", "check the quoting"
            ) from None
        except UnicodeDecodeError as exc:
            raise DataError(
                path,
                reader.line_num + 1,
                f"not UTF-8 text ({exc.reason})",
                "save the file as UTF-8",
            ) from None
    if rows:
        blocks.append(_csv_block(path, rows, lines[-len(rows) :], feat_cols, names))
        labels.extend(_csv_labels(path, rows, lines[-len(rows) :], t, names))
    if not lines:
        raise DataError(
            path,
            None,
            "no data rows after the header",
            "write one row per example below the header",
        )
    X = np.concatenate(blocks)
    y = None if t is None else np.asarray(labels)
    return Table(X=X, target=y, feature_names=[names[j] for j in feat_cols])


def _warn_delimiter(path: str, sep: str, header: str) -> None:
    shown = {"\t": "tab"}.get(sep, repr(sep))
    warnings.warn(
        DataWarning(
            path,
            "delimiter",
            f"read with the delimiter {shown}, sniffed from the header line (it has "
            f"{header.count(sep)} x {shown} and {header.count(',')} x ',')",
            f"pass delimiter={sep!r} to state it, or the right one if that is wrong",
        ),
        stacklevel=5,
    )


def _header(path: str, header: list[str]) -> list[str]:
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for j, n in enumerate(names):
        if not n:
            raise DataError(path, 1, f"column {j} has an empty name", "name every column")
        if n in seen:
            raise DataError(
                path,
                1,
                f"duplicate column name {n!r} (columns {seen[n]} and {j})",
                "give every column a unique name",
            )
        seen[n] = j
    return names


def _csv_block(path: str, rows: list, lines: list, cols: list[int], names: list[str]) -> Any:
    try:
        X = np.array([[r[j] for j in cols] for r in rows], dtype=np.float64)
    except ValueError:
        for r, line in zip(rows, lines):
            for j in cols:
                try:
                    float(r[j])
                except ValueError:
                    value = r[j].strip()
                    what = "missing value" if not value else f"value {value!r} is not a number"
                    raise DataError(
                        path, line, f"column {names[j]!r}: {what}", _CATEGORICAL
                    ) from None
        raise  # pragma: no cover
    X = X.reshape(len(rows), len(cols))
    check_finite(path, X, [names[j] for j in cols], lines, "line")
    return X.astype(np.float32)


def _csv_labels(path: str, rows: list, lines: list, t: int | None, names: list[str]) -> list:
    if t is None:
        return []
    out = []
    for r, line in zip(rows, lines):
        v = r[t].strip()
        if not v:
            raise DataError(
                path,
                line,
                f"missing label in target column {names[t]!r}",
                "fill in the label or drop the row",
            )
        if v.lower().lstrip("+-") in _NON_FINITE:
            raise DataError(
                path,
                line,
                f"label {v!r} in target column {names[t]!r} is not finite",
                "fill in the label or drop the row",
            )
        out.append(v)
    return out


# ------------------------------------------------------------------------- label-like columns
LABEL_NAMES = ("label", "labels", "target", "targets", "y", "class")
_MAX_LABEL_VALUES = 20


def label_like_column(names: list[str], X: np.ndarray) -> tuple[str, str] | None:
    """The column of a table read without a target that looks like a label, and why.

    A column looks like a label when (checked in this order):

    1. its name, stripped and lower-cased, is one of :data:`LABEL_NAMES` (``label``,
       ``labels``, ``target``, ``targets``, ``y``, ``class``); or
    2. it is the last of at least two columns, every value in it is an integer, it takes
       between 2 and 20 distinct values, and some other column holds a non-integer value (so
       an all-integer table, counts or one-hot columns, never triggers this rule).

    Args:
        names: the column names (one per column of ``X``).
        X: the dense feature matrix (n_rows, n_columns).

    Returns:
        ``(name, reason)``, or ``None`` when no column looks like a label.

    Example:
        >>> import numpy as np
        >>> label_like_column(["a", "Class"], np.zeros((3, 2)))
        ('Class', "it is named 'Class'")
        >>> X = np.array([[0.5, 0], [1.5, 1], [2.5, 2], [0.1, 1]])
        >>> label_like_column(["a", "b"], X)[1]
        'it is the last column and holds only integers, 3 distinct values (0..2), while other columns hold real numbers'
    """  # noqa: E501 - a doctest output line
    for name in names:
        if name.strip().lower() in LABEL_NAMES:
            return name, f"it is named {name!r}"
    if X.ndim != 2 or X.shape[1] < 2 or X.shape[0] < 2:
        return None
    last = np.asarray(X[:, -1], dtype=np.float64)
    if not np.array_equal(last, np.round(last)):
        return None
    values = np.unique(last)
    if not 2 <= values.size <= _MAX_LABEL_VALUES or not _has_real_values(X[:, :-1]):
        return None
    return names[-1], (
        f"it is the last column and holds only integers, {values.size} distinct values "
        f"({values[0]:g}..{values[-1]:g}), while other columns hold real numbers"
    )


def _has_real_values(X: np.ndarray) -> bool:
    for start in range(0, X.shape[0], _BLOCK):  # blocks: no full-size temporaries
        block = X[start : start + _BLOCK]
        if not np.array_equal(block, np.round(block)):
            return True
    return False
