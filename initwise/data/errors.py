"""`DataError`: a bad input file, located to the file, line or row, and column; `DataWarning`.

Every reader in :mod:`initwise.data` raises it (never a bare ``ValueError`` from numpy or an
``IndexError`` from deep inside a parser), so a user reading a 40 GB svmlight file learns which line
is wrong, what is wrong with it, and what to do about it.
"""

from __future__ import annotations

__all__ = ["DataError", "DataWarning"]


class DataError(ValueError):
    """A data file (or in-memory array) that cannot be read as a data set.

    Subclass of :class:`ValueError`, so ``except ValueError`` keeps working.

    Attributes:
        path: the file, or ``None`` for in-memory data.
        line: the 1-based line (text formats) or row (binary formats) at fault, or ``None``.
        problem: what is wrong, in words.
        remedy: how to fix it.

    Example:
        >>> err = DataError("bad.svm", 3, "feature index -2 is negative", "use indices >= 0")
        >>> str(err)
        'bad.svm, line 3: feature index -2 is negative; use indices >= 0'
    """

    def __init__(
        self,
        path: str | None,
        line: int | None,
        problem: str,
        remedy: str,
        *,
        unit: str = "line",
    ) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        self.remedy = remedy
        where = path if path is not None else "<in-memory data>"
        if line is not None:
            where = f"{where}, {unit} {line}"
        super().__init__(f"{where}: {problem}; {remedy}")


class DataWarning(UserWarning):
    """A data file was read, but a reader decided something on its own: say what and how to pin it.

    Emitted by :func:`initwise.data.load` (the CLI prints these as notes, or refuses on a
    ``kind="label_column"`` one). Subclass of :class:`UserWarning`.

    Attributes:
        path: the file.
        kind: what was decided: ``"one_based"`` (svmlight indices read 1-based because index 0
            never occurs), ``"delimiter"`` (a CSV delimiter other than ``","`` sniffed from the
            header) or ``"label_column"`` (no target given, but a column looks like a label).
        problem: what was decided or suspected, in words.
        remedy: how to state it explicitly (a keyword argument of ``load``).
        column: the label-looking column (``kind="label_column"``), else ``None``.
    """

    def __init__(
        self, path: str, kind: str, problem: str, remedy: str, *, column: str | None = None
    ) -> None:
        self.path = path
        self.kind = kind
        self.problem = problem
        self.remedy = remedy
        self.column = column
        super().__init__(f"{path}: {problem}; {remedy}")
