"""What the Lightning and Hugging Face adapters share: one Monitor per run, driven from hooks.

A framework calls its hooks per micro-batch and per optimizer step; the monitor wants one
:meth:`~initwise.Monitor.step` per optimizer step with that step's loss. This base keeps the
micro-batch losses on the device until the step (no host synchronization), turns a
:class:`~initwise.monitor.TrainingDiverged` (or a finding named in ``stop_on``) into a request to
stop that the adapter passes to its framework, and holds the monitor's state between a
checkpoint's restore and the monitor's creation (frameworks restore callbacks before fitting).
No framework is imported here.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from initwise.doctor import Finding
from initwise.monitor.core import Monitor, TrainingDiverged

ON_DIVERGENCE = ("stop", "raise")


class MonitorAdapter:
    """One :class:`~initwise.Monitor` driven from a framework's hooks (the adapters' base).

    Args:
        on_divergence: ``"stop"`` (default): a non-finite loss or gradient stops training
            cleanly through the framework and warns; the exception stays in :attr:`diverged`.
            ``"raise"``: stop the same way, then raise it when training has ended.
        stop_on: finding codes that also stop training (e.g. ``("train.divergence",)``).
        **monitor_kwargs: passed to :class:`~initwise.Monitor` (``every``, ``sync_every``,
            ``checks``, ``repair``, ``log``, ...).

    Raises:
        ValueError: an unknown ``on_divergence``. TypeError: a keyword Monitor does not take.
    """

    def __init__(self, *, on_divergence: str = "stop", stop_on: Iterable[str] = (),
                 **monitor_kwargs: Any) -> None:
        where = type(self).__name__
        if on_divergence not in ON_DIVERGENCE:
            raise ValueError(f"{where}: on_divergence={on_divergence!r}; valid: "
                             + ", ".join(repr(v) for v in ON_DIVERGENCE) + ".")
        codes = (stop_on,) if isinstance(stop_on, str) else tuple(stop_on)
        if not all(isinstance(c, str) for c in codes):
            raise TypeError(f"{where}: stop_on must be finding codes (str), got {stop_on!r}.")
        if "model" in monitor_kwargs:
            raise TypeError(f"{where}: do not pass model=; the monitor watches the model the "
                            "framework trains.")
        try:
            inspect.signature(Monitor).bind(nn.Module(), **monitor_kwargs)
        except TypeError as e:
            valid = ", ".join(list(inspect.signature(Monitor).parameters)[1:])
            raise TypeError(f"{where}: {e} (the keywords are Monitor's: {valid}).") from e
        self.on_divergence, self.stop_on = on_divergence, codes
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None
        self.diverged: TrainingDiverged | None = None
        self.stopped_by: Finding | None = None
        self._pending: dict[str, Any] | None = None
        self._loss_sum: torch.Tensor | None = None
        self._loss_n = 0
        self._rank_zero = True  # the adapter sets it: one warning per run, from rank 0

    # ---- the monitor's life --------------------------------------------------------------
    def _make_monitor(self, model: nn.Module) -> Monitor:
        if self.monitor is not None:
            self.monitor.close()
        self.monitor = Monitor(model, **self.monitor_kwargs)
        self.diverged, self.stopped_by = None, None
        self._loss_sum, self._loss_n = None, 0
        if self._pending is not None:
            self.monitor.load_state_dict(self._pending)
            self._pending = None
        return self.monitor

    def _close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()

    def _state(self) -> dict[str, Any]:
        if self.monitor is not None:
            return {"monitor": self.monitor.state_dict()}
        return {"monitor": self._pending} if self._pending is not None else {}

    def _load_state(self, state: dict[str, Any]) -> None:
        mon = state.get("monitor")
        if mon is None:
            return
        if self.monitor is not None:
            self.monitor.load_state_dict(mon)
        else:
            self._pending = mon

    # ---- one optimizer step --------------------------------------------------------------
    def _add_loss(self, loss: Any) -> None:
        """Fold one micro-batch's loss in (a tensor stays on its device)."""
        if isinstance(loss, torch.Tensor):
            t = loss.detach().float().reshape(-1).mean()
        elif isinstance(loss, (int, float)) and not isinstance(loss, bool):
            t = torch.tensor(float(loss))
        else:
            return
        self._loss_sum = t if self._loss_sum is None else self._loss_sum + t.to(
            self._loss_sum.device)
        self._loss_n += 1

    def _take_loss(self, scale: float = 1.0) -> torch.Tensor | None:
        """The step's loss: ``scale`` x the mean of the micro-batch losses; then start over."""
        if self._loss_sum is None:
            return None
        loss = self._loss_sum * (scale / self._loss_n)
        self._loss_sum, self._loss_n = None, 0
        return loss

    def _step(self, loss: torch.Tensor | None, optimizer: Any) -> tuple[list[Finding], bool]:
        """One monitor step: (the new findings, whether training should stop)."""
        if self.monitor is None or self.diverged is not None or self.stopped_by is not None:
            return [], False
        try:
            new = self.monitor.step(loss=loss, optimizer=optimizer)
        except TrainingDiverged as e:
            self.diverged = e
            self._warn(f"{e} Training was stopped by {type(self).__name__}"
                       + (" and the error is raised when training ends."
                          if self.on_divergence == "raise" else
                          " (on_divergence='raise' raises it when training ends)."))
            return [e.finding], True
        stop = [f for f in new if f.check in self.stop_on]
        if stop:
            self.stopped_by = stop[0]
            self._warn(f"initwise.Monitor: {stop[0].check} at {stop[0].where} (step "
                       f"{stop[0].step}): {stop[0].evidence}; training stopped "
                       f"(stop_on={self.stop_on}). {stop[0].fix}")
        return new, bool(stop)

    def _synced(self) -> bool:
        """Whether the last step was a synchronization (the monitor's scalars are fresh)."""
        mon = self.monitor
        return mon is not None and mon.steps > 0 and mon.steps % mon.sync_every == 0

    def _raise_if_asked(self) -> None:
        if self.diverged is not None and self.on_divergence == "raise":
            raise self.diverged

    def _warn(self, msg: str) -> None:
        if self._rank_zero:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)


def framework_class(name: str, adapter: type, base: type, module: str) -> type:
    """The public callback class: ``adapter``'s behaviour on the framework's ``base`` class,
    named ``name`` in ``module`` (built when first accessed, so the framework is imported only
    then)."""
    cls = type(name, (adapter, base), {"__doc__": adapter.__doc__, "__module__": module})
    cls.__qualname__ = name
    return cls
