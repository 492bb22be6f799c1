"""Turning label columns into targets: class ids with names, multi-hot rows, or real values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["TASKS", "encode_targets", "multilabel_targets"]

TASKS = ("auto", "classification", "regression", "multilabel")


def check_task(task: str) -> None:
    """Raise ``ValueError`` unless ``task`` is one of :data:`TASKS`."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}; got {task!r}")


def _name(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.17g}"


def encode_targets(values: np.ndarray, task: str = "auto") -> tuple[np.ndarray, list[str] | None]:
    """Encode one label per row as targets for :class:`~initwise.data.Dataset`.

    * strings -> classes, ids in sorted order of the names;
    * numbers with ``task="auto"``: all integral -> classes (sorted values -> ids 0..K-1, so
      ``-1/+1`` becomes ``0/1`` with ``class_names == ["-1", "1"]``), otherwise regression;
    * integer arrays already in 0..K-1 keep their ids (names ``"0"``..``"K-1"``).

    Args:
        values: a 1-D array of numbers or strings (no missing values).
        task: ``"auto"``, ``"classification"`` or ``"regression"``. Default ``"auto"``.

    Returns:
        ``(y, class_names)``: int64 ids and names for classes, float32 values and ``None`` for
        regression.

    Raises:
        ValueError: for string labels with ``task="regression"``, or an unknown ``task``.

    Example:
        >>> y, names = encode_targets(np.array([1.0, -1.0, 1.0]))
        >>> y.tolist(), names
        ([1, 0, 1], ['-1', '1'])
    """
    check_task(task)
    values = np.asarray(values)
    if task == "multilabel":
        raise ValueError("task='multilabel': use multilabel_targets for label sets")
    if values.dtype.kind in "USO":
        if task == "regression":
            raise ValueError(
                "task='regression', but the labels are not numbers; pass task='classification'"
            )
        names, y = np.unique(values.astype(str), return_inverse=True)
        return y.astype(np.int64), [str(n) for n in names]
    numbers = values.astype(np.float64)
    integral = bool(np.all(np.mod(numbers, 1.0) == 0.0))
    if task == "regression" or (task == "auto" and not integral):
        return numbers.astype(np.float32), None
    if values.dtype.kind in "iu" and numbers.size and numbers.min() >= 0:
        k = int(numbers.max()) + 1
        return values.astype(np.int64), [str(i) for i in range(k)]
    uniq, y = np.unique(numbers, return_inverse=True)
    return y.astype(np.int64), [_name(v) for v in uniq]


def multilabel_targets(label_sets: Sequence[Sequence[float]]) -> tuple[np.ndarray, list[str]]:
    """Multi-hot targets (n_rows, n_labels) float32 from one set of label values per row.

    Label values are mapped to columns in sorted order; ``class_names`` are the values.

    Example:
        >>> y, names = multilabel_targets([[1, 3], [3], []])
        >>> y.tolist(), names
        ([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]], ['1', '3'])
    """
    flat = np.array([v for s in label_sets for v in s], dtype=np.float64)
    uniq = np.unique(flat)
    y = np.zeros((len(label_sets), len(uniq)), dtype=np.float32)
    rows = np.repeat(np.arange(len(label_sets)), [len(s) for s in label_sets])
    y[rows, np.searchsorted(uniq, flat)] = 1.0
    return y, [_name(v) for v in uniq]
