"""A strict svmlight / libsvm reader: every malformed line is reported by file and line number.

Format, one example per line::

    <label>[,<label>...] [qid:<n>] <index>:<value> <index>:<value> ...  [# comment]

* ``label``: a number (class id or regression target); several comma-separated labels make a
  multi-label row (``1,3 4:1``). Every data line needs one: a line starting with ``idx:val``
  is an error (a multi-label row with no labels cannot be told apart from a missing label).
* ``qid:<n>`` (ranking query ids) is accepted right after the label and ignored.
* indices are integers, strictly increasing within a line (duplicates are errors, not summed).
  ``zero_based="auto"`` (scikit-learn's rule) treats the file as 0-based if any index is 0 and
  1-based otherwise; pass ``True``/``False`` to decide explicitly. Values must be finite numbers.
* ``#`` starts a comment; blank and comment-only lines are skipped but counted in line numbers.
* ``.gz``, ``.bz2`` and ``.xz`` files are decompressed on the fly.

Parsing is vectorized per block of lines (tokens are split in Python, converted by numpy); when a
block fails a check it is re-scanned line by line to name the exact line and token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from initwise.data._textio import open_text
from initwise.data.errors import DataError

__all__ = ["SvmlightData", "read_svmlight"]

_BLOCK = 65536
_FORMAT = "write lines as '<label> <index>:<value> ...', e.g. '1 3:0.5 17:2'"


@dataclass
class SvmlightData:
    """What :func:`read_svmlight` read: the matrix, the raw label tokens, their line numbers."""

    X: sp.csr_matrix
    labels: list[str]
    lines: np.ndarray
    zero_based: bool


class _Block:
    """Tokens of up to ``_BLOCK`` data lines, before numeric conversion."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.feats: list[list[str]] = []
        self.idx: list[str] = []
        self.val: list[str] = []
        self.counts: list[int] = []


def _split_line(path: str, lineno: int, raw: str) -> tuple[str, list[str]] | None:
    toks = raw.split("#", 1)[0].split()
    if not toks:
        return None
    label, feats = toks[0], toks[1:]
    if ":" in label:
        raise DataError(
            path,
            lineno,
            f"missing label: the line starts with the feature {label!r}",
            f"put the label first ({_FORMAT})",
        )
    if feats and feats[0].startswith("qid:"):
        feats = feats[1:]
    return label, feats


def _bad_token(path: str, lineno: int, feats: list[str]) -> DataError:
    """The error for the first malformed ``index:value`` token of a line."""
    for tok in feats:
        i, sep, v = tok.partition(":")
        if not sep or ":" in v:
            problem = f"token {tok!r} is not <index>:<value>"
        else:
            try:
                too_large = abs(int(i)) >= 2**63
            except ValueError:
                problem = f"feature index {i!r} in {tok!r} is not an integer"
            else:
                if too_large:
                    return DataError(path, lineno, f"feature index {i} is too large", _FORMAT)
                try:
                    float(v)
                except ValueError:
                    problem = f"value {v!r} in {tok!r} is not a number"
                else:
                    continue
        return DataError(path, lineno, problem, _FORMAT)
    return DataError(path, lineno, "malformed features", _FORMAT)  # pragma: no cover


def _convert(path: str, block: _Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block tokens -> (indices, values, row_ptr) with per-row checks; raises on the first fault."""
    try:
        idx = np.array(block.idx, dtype=np.int64)
        val = np.array(block.val, dtype=np.float64)
    except (ValueError, OverflowError):
        for lineno, feats in zip(block.lines, block.feats):
            if not _tokens_parse(feats):
                raise _bad_token(path, lineno, feats) from None
        raise
    ptr = np.zeros(len(block.counts) + 1, dtype=np.int64)
    np.cumsum(block.counts, out=ptr[1:])

    def line_of(pos: int) -> int:
        return block.lines[int(np.searchsorted(ptr, pos, side="right") - 1)]

    bad = np.flatnonzero(~np.isfinite(val))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            path,
            line_of(k),
            f"value {block.val[k]!r} of feature {block.idx[k]} is not finite",
            "impute or drop it before writing the file",
        )
    with np.errstate(over="ignore"):
        val = val.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(val))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            path,
            line_of(k),
            f"value {block.val[k]!r} of feature {block.idx[k]} overflows float32 (|x| > 3.4e38)",
            "rescale the feature (e.g. log1p) before writing the file",
        )
    bad = np.flatnonzero(idx < 0)
    if bad.size:
        k = int(bad[0])
        raise DataError(
            path,
            line_of(k),
            f"feature index {idx[k]} is negative",
            "indices start at 0 (0-based) or 1 (1-based)",
        )
    step = np.diff(idx)
    first_in_row = np.zeros(len(idx), dtype=bool)
    first_in_row[ptr[:-1][ptr[:-1] < len(idx)]] = True
    bad = np.flatnonzero((step <= 0) & ~first_in_row[1:])
    if bad.size:
        k = int(bad[0]) + 1
        what = "duplicate" if idx[k] == idx[k - 1] else "decreasing"
        raise DataError(
            path,
            line_of(k),
            f"{what} feature index {idx[k]} after {idx[k - 1]}",
            "indices must be strictly increasing within a line; sort them and sum duplicates",
        )
    return idx, val, ptr


def _tokens_parse(feats: list[str]) -> bool:
    try:
        for tok in feats:
            i, _, v = tok.partition(":")
            if abs(int(i)) >= 2**63:
                return False
            float(v)
    except ValueError:
        return False
    return True


def _read_blocks(path: str, block_lines: int):
    """Yield token blocks of data lines, checking the line syntax on the way."""
    block, labels = _Block(), []
    lineno = 0
    with open_text(path) as f:
        try:
            for lineno, raw in enumerate(f, 1):  # noqa: B007 - lineno used after the loop
                parsed = _split_line(path, lineno, raw)
                if parsed is None:
                    continue
                label, feats = parsed
                joined = " ".join(feats)
                flat = joined.replace(":", " ").split()
                if joined.count(":") != len(feats) or len(flat) != 2 * len(feats):
                    raise _bad_token(path, lineno, feats)
                labels.append(label)
                block.lines.append(lineno)
                block.feats.append(feats)
                block.idx.extend(flat[0::2])
                block.val.extend(flat[1::2])
                block.counts.append(len(feats))
                if len(block.lines) >= block_lines:
                    yield block, labels
                    block, labels = _Block(), []
        except UnicodeDecodeError as exc:
            raise DataError(
                path,
                lineno + 1,
                f"not UTF-8 text ({exc.reason})",
                "svmlight files are plain ASCII text; check that this is the right file",
            ) from None
    if block.lines:
        yield block, labels


def read_svmlight(
    path: str,
    *,
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    block_lines: int = _BLOCK,
) -> SvmlightData:
    """Read an svmlight/libsvm file strictly (format in the module docstring).

    Args:
        path: the file (``.gz``/``.bz2``/``.xz`` are decompressed).
        n_features: the number of columns; ``None`` uses the largest index + 1. Indices at or
            beyond it are errors.
        zero_based: ``True``, ``False`` or ``"auto"`` (0-based if any index is 0). Default
            ``"auto"``.
        block_lines: lines converted per vectorized block. Default 65536.

    Returns:
        :class:`SvmlightData` with ``X`` a canonical CSR float32 matrix and the label tokens.

    Raises:
        DataError: naming the file, the 1-based line and the fault: a missing label, a token that
            is not ``index:value``, a non-numeric index or value, NaN/Inf, a negative index,
            index 0 in a 1-based file, an index ``>= n_features``, duplicate or decreasing
            indices, non-UTF-8 bytes, or a file without data lines.
    """
    if n_features is not None and (isinstance(n_features, bool) or int(n_features) < 1):
        raise ValueError(f"n_features: expected a positive int or None; got {n_features!r}")
    if zero_based not in (True, False, "auto"):
        raise ValueError(f"zero_based: expected True, False or 'auto'; got {zero_based!r}")
    parts, labels, lines, ptrs = [], [], [], []
    for block, block_labels in _read_blocks(path, block_lines):
        idx, val, ptr = _convert(path, block)
        parts.append((idx, val))
        ptrs.append(ptr)
        labels.extend(block_labels)
        lines.extend(block.lines)
    if not lines:
        raise DataError(
            path,
            None,
            "no data lines (the file is empty or holds only comments/blank lines)",
            f"check the file; {_FORMAT}",
        )
    idx = np.concatenate([p[0] for p in parts])
    val = np.concatenate([p[1] for p in parts])
    indptr = _join_ptrs(ptrs)
    lines_arr = np.asarray(lines, dtype=np.int64)
    base_zero = bool(zero_based) if zero_based != "auto" else bool(idx.size and idx.min() == 0)
    if not base_zero:
        _check_index(
            path,
            idx,
            indptr,
            lines_arr,
            idx == 0,
            "index 0 in a 1-based file",
            "pass zero_based=True if the file is 0-based",
        )
        idx = idx - 1
    width = int(idx.max()) + 1 if n_features is None and idx.size else int(n_features or 0)
    _check_index(
        path,
        idx,
        indptr,
        lines_arr,
        idx >= width,
        f"feature index out of range for n_features={width}",
        "pass a larger n_features (or None to infer it)",
        shown_offset=0 if base_zero else 1,
    )
    X = sp.csr_matrix((val, idx, indptr), shape=(len(lines_arr), width))
    X.has_sorted_indices = True
    X.eliminate_zeros()
    return SvmlightData(X=X, labels=labels, lines=lines_arr, zero_based=base_zero)


def _join_ptrs(ptrs: list[np.ndarray]) -> np.ndarray:
    out, shift = [np.zeros(1, dtype=np.int64)], 0
    for ptr in ptrs:
        out.append(ptr[1:] + shift)
        shift += int(ptr[-1])
    return np.concatenate(out)


def _check_index(
    path: str,
    idx: np.ndarray,
    indptr: np.ndarray,
    lines: np.ndarray,
    bad_mask: np.ndarray,
    problem: str,
    remedy: str,
    shown_offset: int = 0,
) -> None:
    bad = np.flatnonzero(bad_mask)
    if bad.size:
        k = int(bad[0])
        row = int(np.searchsorted(indptr, k, side="right") - 1)
        shown = int(idx[k]) + shown_offset
        raise DataError(path, int(lines[row]), f"{problem} (index {shown})", remedy)
