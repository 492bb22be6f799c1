"""Fixtures for the bad-input corpus: the CLI helpers of tests/cli, hostile files, and a
snapshot of everything a call may change.

tests/ is not a package: the CLI fixtures (``work``, ``many``, ``call``, ``archives``,
``one_line_error``) are taken from tests/cli/conftest.py, loaded by path, not copied.

:class:`Snapshot` records, in plain torch (not through ``initwise.state``, the code under test),
a model's parameters and buffers (bits, dtype, ``requires_grad``), module modes, every hook
dict's size, and the caller's global RNG; :meth:`Snapshot.assert_same` says what differs.
:func:`refused` (fixture ``refuse``) runs a call that must raise, checks the message's key
words, and that nothing changed.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import lzma
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

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


# --- the model and the RNG are exactly as before -------------------------------------------

HOOK_DICTS = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and values (a NaN equals a NaN in the same place)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if torch.equal(a, b):
        return True
    return bool(a.is_floating_point() and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


class Snapshot:
    """Everything about ``model`` (and the global RNG) a call could change."""

    def __init__(self, model: nn.Module | None) -> None:
        self.rng = torch.get_rng_state()
        self.model = model
        if model is None or not isinstance(model, nn.Module):
            return
        self.params = {n: (p, p.detach().clone(), p.requires_grad)
                       for n, p in model.named_parameters()
                       if not isinstance(p, nn.parameter.UninitializedParameter)
                       and p.device.type != "meta"}
        self.lazy = [n for n, p in model.named_parameters()
                     if isinstance(p, nn.parameter.UninitializedParameter)]
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()
                        if b.device.type != "meta"
                        and not isinstance(b, nn.parameter.UninitializedBuffer)}
        self.names = [n for n, _ in model.named_parameters()] + \
            [n for n, _ in model.named_buffers()]
        self.modes = {n: m.training for n, m in model.named_modules()}
        self.hooks = {n: tuple(len(getattr(m, d, {}) or {}) for d in HOOK_DICTS)
                      for n, m in model.named_modules()}

    def differences(self) -> list[str]:
        """What differs from the snapshot (``[]``: nothing)."""
        out = []
        if not torch.equal(torch.get_rng_state(), self.rng):
            out.append("the global RNG advanced")
        m = self.model
        if m is None or not isinstance(m, nn.Module):
            return out
        now = dict(m.named_parameters())
        for n, (p, value, rg) in self.params.items():
            q = now.get(n)
            if q is not p:
                out.append(f"parameter {n} replaced")
            elif not _same(q.detach(), value):
                out.append(f"parameter {n} changed")
            elif q.requires_grad != rg:
                out.append(f"parameter {n} requires_grad changed")
        out += [f"lazy parameter {n} materialized" for n in self.lazy
                if not isinstance(now.get(n), nn.parameter.UninitializedParameter)]
        bufs = dict(m.named_buffers())
        for n, value in self.buffers.items():
            b = bufs.get(n)
            if b is None or not _same(b, value):
                out.append(f"buffer {n} changed")
        names = [n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers()]
        if names != self.names:
            out.append(f"tensors added or removed: {sorted(set(names) ^ set(self.names))}")
        if {n: x.training for n, x in m.named_modules()} != self.modes:
            out.append("train/eval modes changed")
        hooks = {n: tuple(len(getattr(x, d, {}) or {}) for d in HOOK_DICTS)
                 for n, x in m.named_modules()}
        if hooks != self.hooks:
            out.append("hooks added or removed")
        return out

    def assert_same(self) -> None:
        """Fail naming what changed."""
        diff = self.differences()
        assert not diff, "; ".join(diff)


def refused(model: Any, call: Callable[[], Any], exc: type[BaseException],
            *words: str) -> str:
    """Run ``call``, which must raise ``exc`` whose message holds every one of ``words``
    (case-insensitive); assert the model and the global RNG are exactly as before.

    Returns:
        The message, for further checks.
    """
    snap = Snapshot(model)
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    missing = [w for w in words if not re.search(re.escape(w), msg, re.IGNORECASE)]
    assert not missing, f"message lacks {missing}: {msg}"
    snap.assert_same()
    return msg


@pytest.fixture
def snapshot() -> Callable[[Any], Snapshot]:
    """``snapshot(model)`` -> a :class:`Snapshot` to ``assert_same()`` later."""
    return Snapshot


@pytest.fixture
def refuse() -> Callable[..., str]:
    """:func:`refused` as a fixture: ``refuse(model, call, exc, *words) -> message``."""
    return refused
