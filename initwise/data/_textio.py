"""Opening text data files (plain, .gz, .bz2, .xz) with errors that name the file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any

from initwise.data.errors import DataError

__all__ = ["TextFile", "open_text", "strip_compression"]

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_TOOLS = {".gz": "gzip -t", ".bz2": "bzip2 -t", ".xz": "xz -t"}
# What a decompressor raises on a corrupt or truncated stream (gzip.BadGzipFile and bz2's
# "Invalid data stream" are OSErrors; a truncated stream is an EOFError).
_CORRUPT = (EOFError, OSError, zlib.error, lzma.LZMAError)


def strip_compression(path: str) -> tuple[str, str | None]:
    """Split ``"a.svm.gz"`` into ``("a.svm", ".gz")``; ``(path, None)`` if not compressed."""
    root, ext = os.path.splitext(path)
    return (root, ext.lower()) if ext.lower() in _OPENERS else (path, None)


class TextFile:
    """Lines of a text file; a corrupt or truncated compressed stream raises a DataError.

    A context manager and an iterator of lines, as the file object it wraps; ``lines_read``
    counts the lines handed out, so the error names the line where the stream broke.
    """

    def __init__(self, path: str, stream: IO[str], compression: str | None) -> None:
        self.path = path
        self.compression = compression
        self.lines_read = 0
        self._stream = stream

    def __enter__(self) -> TextFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (a corrupt stream may also fail on close: that is ignored)."""
        try:
            self._stream.close()
        except _CORRUPT:
            pass

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._stream)
        except StopIteration:
            raise
        except _CORRUPT as exc:
            raise self._error(exc) from exc
        self.lines_read += 1
        return line

    def _error(self, exc: BaseException) -> DataError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if self.compression is None:
            return DataError(self.path, self.lines_read + 1, f"cannot be read ({reason})",
                             "check the file (and the disk it is on)")
        kind = self.compression.lstrip(".")
        after = f" after {self.lines_read} complete lines" if self.lines_read else ""
        return DataError(
            self.path,
            self.lines_read + 1,
            f"corrupt or truncated {kind} data{after} ({type(exc).__name__}: {reason})",
            f"download or compress the file again (check it with `{_TOOLS[self.compression]} "
            f"{os.path.basename(self.path)}`), or give the uncompressed file",
        )


def open_text(path: str) -> TextFile:
    """Open ``path`` for reading text (UTF-8, a leading BOM dropped), decompressing by extension.

    Raises:
        DataError: if the file does not exist or is a directory; reading its lines raises a
            DataError (naming the file and the line) on a corrupt or truncated ``.gz``, ``.bz2``
            or ``.xz`` stream.
    """
    if not os.path.exists(path):
        raise DataError(path, None, "no such file", "check the path (relative to the cwd)")
    if os.path.isdir(path):
        raise DataError(path, None, "is a directory, not a data file", "pass a file path")
    _, comp = strip_compression(path)
    opener = _OPENERS.get(comp, open)
    return TextFile(path, opener(path, "rt", encoding="utf-8-sig", newline=""), comp)
