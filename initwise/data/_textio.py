"""Opening text data files (plain, .gz, .bz2, .xz) with errors that name the file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from typing import IO

from initwise.data.errors import DataError

__all__ = ["open_text", "strip_compression"]

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def strip_compression(path: str) -> tuple[str, str | None]:
    """Split ``"a.svm.gz"`` into ``("a.svm", ".gz")``; ``(path, None)`` if not compressed."""
    root, ext = os.path.splitext(path)
    return (root, ext.lower()) if ext.lower() in _OPENERS else (path, None)


def open_text(path: str) -> IO[str]:
    """Open ``path`` for reading text (UTF-8, a leading BOM dropped), decompressing by extension.

    Raises:
        DataError: if the file does not exist or is a directory.
    """
    if not os.path.exists(path):
        raise DataError(path, None, "no such file", "check the path (relative to the cwd)")
    if os.path.isdir(path):
        raise DataError(path, None, "is a directory, not a data file", "pass a file path")
    _, comp = strip_compression(path)
    opener = _OPENERS.get(comp, open)
    return opener(path, "rt", encoding="utf-8-sig", newline="")
