"""Where the monitor's numbers go: CSV, JSON lines, TensorBoard, and a progress-bar line.

A sink is anything with ``write(step, scalars)`` and ``close()`` (:class:`Sink`). The monitor
calls ``write`` once per synchronization (every ``sync_every`` steps) with a flat dict of
scalars -- ``loss_ema``, ``loss_noise``, ``grad_norm``, ``update_ratio/<param>``,
``dead_fraction/<layer>`` -- one scalar per layer per check, never a histogram (per-step
histograms are what users of W&B and TensorBoard turn off first).

* :class:`CSVSink` -- a long ("tidy") table ``step,name,value``: a new layer or parameter adds
  rows, never columns, so the file stays valid while the set of names grows.
* :class:`JSONLinesSink` -- one ``{"step": ..., "scalars": {...}}`` object per write, with the
  project's JSON rule for non-finite values (:mod:`initwise.jsonio`).
* :class:`TensorBoardSink` -- ``SummaryWriter.add_scalar`` per name (extra ``monitor``).
* :class:`ProgressLine` -- the current alarms as one short line for a tqdm/rich postfix.

Every file sink opens its file on the first write and appends after a ``close()``, so a sink
can outlive one ``fit`` and serve the next (a resumed run keeps one log).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "monitor.csv"
    >>> with CSVSink(path) as sink:
    ...     sink.write(16, {"loss_ema": 0.5, "dead_fraction/fc1": 0.25})
    >>> print(path.read_text().strip())
    step,name,value
    16,loss_ema,0.5
    16,dead_fraction/fc1,0.25
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from initwise.jsonio import dumps

__all__ = ["CSVSink", "JSONLinesSink", "ProgressLine", "Sink", "TensorBoardSink"]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@runtime_checkable
class Sink(Protocol):
    """What the monitor logs to: ``write(step, scalars)`` every synchronization, ``close()``."""

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Called with the scalars of one synchronization (a flat name -> float dict)."""

    def close(self) -> None:
        """Called when the monitor closes (flush and release the file or writer)."""


def _scalars(where: str, step: Any, scalars: Any) -> tuple[int, dict[str, float]]:
    """Validate one ``write`` call at the public boundary."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"{where}.write: step must be an int, got {type(step).__name__}.")
    if not isinstance(scalars, Mapping):
        raise TypeError(f"{where}.write: scalars must be a mapping name -> float, got "
                        f"{type(scalars).__name__}.")
    out = {}
    for name, value in scalars.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}.write: scalar names must be str, got {name!r}.")
        try:
            out[name] = float(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}.write: scalar {name!r} = {value!r} is not a number; "
                            "log one float per name (no tensors of several elements).") from e
    return step, out


class _FileSink:
    """A text file opened on the first write ("w", or "a" with ``append``), reopened "a"."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{type(self).__name__}: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}.")
        self.path = Path(path)
        self._fh: Any = None
        self._opened = append  # after the first open, always append

    def _file(self) -> Any:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self._opened or not self.path.exists() or self.path.stat().st_size == 0
            self._fh = open(self.path, "w" if not self._opened else "a", newline="",
                            encoding="utf-8")
            self._opened = True
            if fresh:
                self._start(self._fh)
        return self._fh

    def _start(self, fh: Any) -> None:
        """Write a header into a new, empty file."""

    def close(self) -> None:
        """Flush and close the file (idempotent; a later write appends)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> _FileSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class CSVSink(_FileSink):
    """The monitor's scalars as a long CSV table ``step,name,value`` (one row per scalar).

    Non-finite values are written as ``nan`` / ``inf`` / ``-inf`` (``float()`` reads them back).

    Args:
        path: the file; its folder is created. Overwritten on the first write unless
            ``append``.
        append: keep an existing file and add rows (no second header). Default False.

    Example:
        >>> import tempfile, pathlib, csv
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
        >>> sink = CSVSink(path)
        >>> sink.write(1, {"grad_norm": float("inf")}); sink.close()
        >>> [dict(r) for r in csv.DictReader(path.open())]
        [{'step': '1', 'name': 'grad_norm', 'value': 'inf'}]
    """

    def _start(self, fh: Any) -> None:
        csv.writer(fh).writerow(["step", "name", "value"])

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Append one row per scalar and flush (a crash keeps every synchronized step)."""
        step, values = _scalars("CSVSink", step, scalars)
        fh = self._file()
        w = csv.writer(fh)
        for name, v in values.items():
            w.writerow([step, name, repr(v) if math.isfinite(v) else str(v)])
        fh.flush()


class JSONLinesSink(_FileSink):
    """One JSON object per write: ``{"step": 16, "scalars": {"loss_ema": 0.5, ...}}``.

    The project's JSON rule holds (:mod:`initwise.jsonio`): NaN is ``null``, infinities are the
    strings ``"inf"`` / ``"-inf"`` (:func:`initwise.jsonio.loads` gives them back as floats).

    Args:
        path: the file; its folder is created. Overwritten on the first write unless
            ``append``.
        append: keep an existing file and add lines. Default False.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> with JSONLinesSink(path) as sink:
        ...     sink.write(16, {"loss_ema": 0.5, "grad_norm": float("nan")})
        >>> path.read_text()
        '{"step": 16, "scalars": {"loss_ema": 0.5, "grad_norm": null}}\\n'
    """

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Append one line and flush."""
        step, values = _scalars("JSONLinesSink", step, scalars)
        fh = self._file()
        fh.write(dumps({"step": step, "scalars": values}, indent=None) + "\n")
        fh.flush()


class TensorBoardSink:
    """The monitor's scalars in TensorBoard: ``add_scalar(prefix + name, value, step)``.

    Needs the ``tensorboard`` package (``pip install 'initwise[monitor]'``); it is imported when
    the sink is built from a folder, never by ``import initwise``.

    Args:
        writer_or_logdir: a ``torch.utils.tensorboard.SummaryWriter`` (or anything with
            ``add_scalar`` and ``flush``), which stays the caller's to close; or a folder, for
            which the sink opens (and closes) its own writer.
        prefix: prepended to every name (TensorBoard groups by the part before ``/``).
            Default "initwise/".

    Raises:
        ImportError: a folder was given and ``tensorboard`` is not installed.
        TypeError: ``writer_or_logdir`` is neither a writer nor a path.
    """

    def __init__(self, writer_or_logdir: Any, prefix: str = "initwise/") -> None:
        self.prefix = prefix
        self.logdir: Path | None = None
        if isinstance(writer_or_logdir, (str, os.PathLike)):
            self.logdir = Path(writer_or_logdir)
            self._writer: Any = None
            self._summary_writer()  # fail now, not at the first synchronization
            self._owned = True
        elif callable(getattr(writer_or_logdir, "add_scalar", None)):
            self._writer, self._owned = writer_or_logdir, False
        else:
            raise TypeError("TensorBoardSink: writer_or_logdir must be a SummaryWriter or a "
                            f"log folder, got {type(writer_or_logdir).__name__}.")

    def _summary_writer(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError(
                    "TensorBoardSink: writing TensorBoard logs needs the 'tensorboard' package: "
                    "pip install 'initwise[monitor]' (or pip install tensorboard); or log with "
                    "CSVSink / JSONLinesSink, which need nothing.") from e
            self._writer = SummaryWriter(log_dir=str(self.logdir))
        return self._writer

    @property
    def writer(self) -> Any:
        """The ``SummaryWriter`` in use (opened again after a ``close`` of an owned one)."""
        return self._summary_writer()

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """One ``add_scalar`` per name at ``global_step=step``."""
        step, values = _scalars("TensorBoardSink", step, scalars)
        w = self.writer
        for name, v in values.items():
            w.add_scalar(self.prefix + name, v, global_step=step)

    def close(self) -> None:
        """Close an owned writer (a later write opens a new one); flush a borrowed one."""
        if self._writer is None:
            return
        if self._owned:
            self._writer.close()
            self._writer = None
        elif callable(getattr(self._writer, "flush", None)):
            self._writer.flush()


class ProgressLine:
    """The monitor's current alarms as one short line, for a progress bar's postfix.

    ``check@where`` per finding (``where`` left out for the whole model), errors first, at most
    ``max_items`` named and the rest counted: ``"2 alarms: units.dying@fc2, train.plateau"``.

    Args:
        monitor: a :class:`~initwise.Monitor` (anything with a ``findings`` list).
        max_items: findings named before "+N more". Default 3.
        quiet: the text when there is no alarm. Default "no alarm".

    Example:
        >>> from initwise.doctor import Finding
        >>> class Mon:
        ...     findings = [Finding(check="train.plateau", severity="warning", where="model",
        ...                         evidence="", why="", fix=""),
        ...                 Finding(check="units.dying", severity="error", where="fc2",
        ...                         evidence="", why="", fix="")]
        >>> str(ProgressLine(Mon()))
        '2 alarms: units.dying@fc2, train.plateau'

        With tqdm: ``bar.set_postfix_str(line())``; with rich:
        ``progress.update(task, description=line())``.
    """

    def __init__(self, monitor: Any, max_items: int = 3, quiet: str = "no alarm") -> None:
        if not hasattr(monitor, "findings"):
            raise TypeError("ProgressLine: monitor must have a 'findings' list (an "
                            f"initwise.Monitor), got {type(monitor).__name__}.")
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"ProgressLine: max_items={max_items!r}; expected a positive int.")
        self.monitor, self.max_items, self.quiet = monitor, max_items, quiet

    def items(self) -> list[str]:
        """``check@where`` of every current alarm, errors first, each once."""
        seen: dict[str, int] = {}
        for f in self.monitor.findings:
            label = f.check if f.where in ("model", "") else f"{f.check}@{f.where}"
            rank = _SEVERITY_ORDER.get(f.severity, 3)
            seen[label] = min(rank, seen.get(label, rank))
        return sorted(seen, key=lambda k: seen[k])  # stable: first seen first within a rank

    def __call__(self) -> str:
        items = self.items()
        if not items:
            return self.quiet
        shown = ", ".join(items[: self.max_items])
        more = len(items) - self.max_items
        tail = f", +{more} more" if more > 0 else ""
        return f"{len(items)} alarm{'s' if len(items) != 1 else ''}: {shown}{tail}"

    def __str__(self) -> str:
        return self()
