"""Fixtures for the bad-input corpus: the CLI helpers of tests/cli, and hostile files.

tests/ is not a package: the CLI fixtures (``work``, ``many``, ``call``, ``archives``,
``one_line_error``) are taken from tests/cli/conftest.py, loaded by path, not copied.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import lzma
from pathlib import Path

import numpy as np
import pytest

_CLI = Path(__file__).resolve().parents[1] / "cli" / "conftest.py"
_spec = importlib.util.spec_from_file_location("initwise_tests_cli_conftest", _CLI)
cli_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli_helpers)

work = cli_helpers.work
many = cli_helpers.many
call = cli_helpers.call
archives = cli_helpers.archives
one_line_error = cli_helpers.one_line_error
N_FEATURES = cli_helpers.N_FEATURES

PAYLOAD_MARK = "initwise-pickle-payload-ran"


class Payload:
    """Unpickling this writes a marker file: proof that a reader ran code from a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, (PAYLOAD_MARK,))


def truncated(raw: bytes, opener) -> bytes:
    """``raw`` compressed with ``opener``'s module, cut in the middle of the stream."""
    packed = {gzip.open: gzip.compress, bz2.open: bz2.compress, lzma.open: lzma.compress}[opener](
        raw)
    return packed[: len(packed) // 2]


def _csv_text(sep: str, label: str = "label") -> str:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, N_FEATURES))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    header = sep.join([f"f{i}" for i in range(N_FEATURES)] + [label])
    rows = [sep.join(f"{v:.4f}" for v in x) + f"{sep}{t}" for x, t in zip(X, y)]
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="session")
def hostile(work: Path, archives: Path) -> Path:
    """Bad files written into ``work``: truncated/corrupt archives, pickles, odd CSVs, a .pt2
    exported with a static batch of 8."""
    import torch

    (work / "semicolon.csv").write_text(_csv_text(";"))
    (work / "tabs.csv").write_text(_csv_text("\t"))
    (work / "grade.csv").write_text(_csv_text(",", label="grade"))  # unnamed label, last column
    raw = (work / "data.svm").read_bytes()
    (work / "truncated.svm.gz").write_bytes(truncated(raw, gzip.open))
    (work / "notgzip.csv.gz").write_bytes(b"\x1f\x8b" + b"this is no deflate stream" * 4)
    (work / "pickled.npy").write_bytes(_pickled_npy(work / "npy-payload-ran"))
    np.savez(work / "pickled.npz", X=np.array([[1.0, Payload(str(work / "npz-payload-ran"))]],
                                               dtype=object), y=np.array([0]))
    torch.save({"0.weight": Payload(str(work / "pt-payload-ran"))}, work / "pickled.pt")
    spec = importlib.util.spec_from_file_location("bad_inputs_model", work / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    program = torch.export.export(mod.mlp().eval(), (torch.zeros(8, N_FEATURES),))
    torch.export.save(program, work / "static8.pt2")
    return work


def _pickled_npy(marker: Path) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([Payload(str(marker)), 1], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.fixture(scope="session")
def payload():
    """The :class:`Payload` class (unpickling one writes its marker file)."""
    return Payload


@pytest.fixture(scope="session")
def cut():
    """:func:`truncated`: ``cut(raw_bytes, gzip.open | bz2.open | lzma.open)``."""
    return truncated
