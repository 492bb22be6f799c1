"""The CSV reader (stdlib csv + numpy, no pandas) and what all tabular readers share.

Each reader returns a :class:`Table` (features, raw target column, names) and raises
:class:`~initwise.data.DataError` naming the file, the line (text) or row (binary, 1-based), the
column and the fault.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.data._textio import open_text
from initwise.data.errors import DataError

__all__ = ["Table", "read_csv"]

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
def read_csv(path: str, *, target: Any = None, delimiter: str | None = None) -> Table:
    """Read a CSV file with a header row into a dense float32 feature matrix.

    Args:
        path: the file (``.gz``/``.bz2``/``.xz`` decompressed); ``.tsv`` defaults to tabs.
        target: the label column's name or index; ``None`` for no targets.
        delimiter: field separator; ``None`` -> tab for ``.tsv``, else comma.

    Returns:
        A :class:`Table`; the target column is returned as strings (encoded by the caller).

    Raises:
        DataError: for an empty file, duplicate column names, an unknown target column, a row
            with the wrong number of fields, a non-numeric or empty feature value (naming the
            column), NaN/Inf, a missing label, or no data rows.
    """
    sep = delimiter or ("\t" if ".tsv" in path.lower() else ",")
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=sep)
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
