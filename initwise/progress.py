"""Progress lines for long ``init`` / ``doctor`` work, on standard error.

``verbose=None`` (the default of :func:`initwise.init` and :func:`initwise.doctor`) stays silent
for work that ends within :data:`QUIET_SECONDS`; past that it says what it is doing: on a
terminal one line rewritten in place (phase, then ``layer i/n`` and the layer's name), elsewhere
(a log, CI) one line per phase. ``verbose=True`` shows every phase from the start,
``verbose=False`` nothing (the CLI's ``--quiet``). The last line gives the total time.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["QUIET_SECONDS", "Progress", "check_verbose"]

#: Work that ends within this many seconds prints nothing under ``verbose=None``.
QUIET_SECONDS = 2.0


def check_verbose(verbose: object, where: str) -> None:
    """Refuse a ``verbose=`` that is not ``None``, ``True`` or ``False``."""
    if verbose is not None and not isinstance(verbose, bool):
        raise TypeError(f"{where}: verbose must be None (progress on long work), True or False, "
                        f"got {verbose!r}.")


class Progress:
    """Phases and steps of one call, printed per the ``verbose`` rule (module docstring).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = Progress("init", True, stream=out)
        >>> p.phase("calibrating 2 layers")
        >>> p.done()
        >>> out.getvalue().splitlines()[0]
        'init: calibrating 2 layers'
    """

    def __init__(self, what: str, verbose: bool | None, *, stream: IO[str] | None = None,
                 ) -> None:
        self.what = what
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.shown = False
        self._phase = ""
        self._width = 0

    def _on(self) -> bool:
        if self.verbose is False:
            return False
        return self.verbose is True or time.perf_counter() - self.t0 >= QUIET_SECONDS

    def _write(self, text: str, final: bool = False) -> None:
        line = f"{self.what}: {text}"
        if self.tty:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._width = 0 if final else len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.shown = True

    def phase(self, text: str) -> None:
        """A new phase begins (printed once the rule allows)."""
        self._phase = text
        if self._on():
            self._write(text)

    def step(self, i: int, n: int, name: str) -> None:
        """Step ``i`` of ``n`` of the current phase: shown on a terminal only; elsewhere the
        phase line appears once, when printing starts."""
        if not self._on():
            return
        if self.tty:
            self._write(f"{self._phase} [{i}/{n}] {name}")
        elif not self.shown:
            self._write(self._phase)

    def done(self) -> None:
        """The call ended: the total time, if anything was shown."""
        if self.shown and self.verbose is not False:
            self._write(f"done in {time.perf_counter() - self.t0:.1f} s", final=True)
