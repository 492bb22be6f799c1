"""The monitor as a Lightning callback: ``Trainer(callbacks=[InitwiseCallback(every=100)])``.

:class:`InitwiseCallback` is built on first access (PEP 562), so importing
:mod:`initwise.monitor` or this module never imports Lightning; it needs the ``lightning``
extra (``pip install 'initwise[lightning]'``, Lightning >= 2.0, ``lightning.pytorch``).

What it does in the fit, hook by hook:

* ``setup`` (stage "fit"): a :class:`~initwise.Monitor` on the ``LightningModule``, with the
  callback's keywords. A checkpoint's monitor state, restored by Lightning just after
  ``setup``, is loaded into it, so a resumed run keeps its history.
* ``on_before_optimizer_step``: notes that this batch ends an optimizer step.
* ``on_train_batch_end``: the batch's loss (``outputs["loss"]``, or ``outputs`` when a tensor)
  stays on the device; on a batch that stepped the optimizer, one ``Monitor.step`` with the
  step's loss (the mean over its ``accumulate_grad_batches`` micro-batches) and
  ``trainer.optimizers[0]``: the monitor counts optimizer steps, as ``trainer.global_step``
  does. Gradients are read there as the precision plugin left them (unscaled under AMP).
* on the monitor's synchronization steps, its scalars go to ``pl_module.log`` under
  ``initwise/`` (one per layer per check, ``on_step=True``), with ``initwise/alarms``, the
  number of findings so far (on the progress bar with ``prog_bar=True``).
* a :class:`~initwise.monitor.TrainingDiverged` sets ``trainer.should_stop`` (the fit ends
  after that batch, as with ``EarlyStopping``) and warns; with ``on_divergence="raise"`` it is
  raised from ``on_train_end``, after Lightning has stopped cleanly.
* ``on_validation_end``: the logged ``val_loss`` goes to :meth:`~initwise.Monitor.epoch_end`
  with the epoch (the epoch-2 cliff check).
* ``state_dict`` / ``load_state_dict``: the monitor's state in the checkpoint, under the
  callback's ``state_key``; ``teardown``: the monitor's hooks are removed, its sinks closed.

Example:
    >>> from initwise.monitor.lightning import InitwiseCallback  # doctest: +SKIP
    >>> cb = InitwiseCallback(every=50, sync_every=10)            # doctest: +SKIP
    >>> trainer = lightning.pytorch.Trainer(max_steps=1000, callbacks=[cb])  # doctest: +SKIP
    >>> trainer.fit(module, loader); print(cb.monitor.report())   # doctest: +SKIP
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from initwise.monitor._adapters import MonitorAdapter, framework_class

__all__ = ["InitwiseCallback"]  # noqa: F822 (built by __getattr__)


class _LightningAdapter(MonitorAdapter):
    """The callback's behaviour; the Lightning class adds only ``lightning.pytorch.Callback``.

    Args:
        on_divergence: ``"stop"`` (default) or ``"raise"`` (see :mod:`initwise.monitor.lightning`).
        stop_on: finding codes that also stop the fit, e.g. ``("train.divergence",)``.
            Default ().
        val_loss_key: the logged metric that is the validation loss, reported to
            :meth:`~initwise.Monitor.epoch_end` after each validation run (the epoch-2 cliff of
            sparse CTR models needs two or more per epoch: ``val_check_interval`` < 1);
            None: not reported. Default "val_loss".
        log_to_lightning: send the monitor's scalars to ``pl_module.log``. Default True.
        prog_bar: show ``initwise/alarms`` on the progress bar. Default True.
        **monitor_kwargs: :class:`~initwise.Monitor`'s keywords (``every``, ``sync_every``,
            ``checks``, ``repair``, ``log`` sinks, ``restore_last_good``, ...).

    Attributes:
        monitor: the :class:`~initwise.Monitor` of the current (or last) fit, or None.
        diverged: the :class:`~initwise.monitor.TrainingDiverged` that stopped the fit, or None.
        stopped_by: the finding (one of ``stop_on``) that stopped the fit, or None.
    """

    def __init__(self, *, on_divergence: str = "stop", stop_on: Any = (),
                 val_loss_key: str | None = "val_loss", log_to_lightning: bool = True,
                 prog_bar: bool = True, **monitor_kwargs: Any) -> None:
        super().__init__(on_divergence=on_divergence, stop_on=stop_on, **monitor_kwargs)
        self.val_loss_key = val_loss_key
        self.log_to_lightning, self.prog_bar = bool(log_to_lightning), bool(prog_bar)
        self._stepped = False

    # Lightning's hooks (the signatures of lightning.pytorch.Callback)
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Called when fit begins: a Monitor on ``pl_module``."""
        if stage == "fit":
            self._make_monitor(pl_module)
            self._stepped = False
            self._rank_zero = bool(getattr(trainer, "is_global_zero", True))

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Called when fit begins (after the checkpoint's restore)."""
        if self.monitor is None or self.monitor.model is not pl_module:
            self._make_monitor(pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Called when training starts."""
        if self.monitor is not None:
            self.monitor.on_train_start()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        """Called before ``optimizer.step()``: this batch ends an optimizer step."""
        self._stepped = True

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Called when a training batch ends: the loss; one monitor step per optimizer step."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._add_loss(loss)
        if not self._stepped:
            return
        self._stepped = False
        # automatic optimization divides each micro-batch loss by accumulate_grad_batches
        auto = getattr(pl_module, "automatic_optimization", True)
        scale = float(getattr(trainer, "accumulate_grad_batches", 1)) if auto else 1.0
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        _, stop = self._step(self._take_loss(scale), optimizer)
        if stop:
            trainer.should_stop = True
        if self.log_to_lightning and self._synced() and self.monitor is not None:
            self._log(pl_module)

    def _log(self, pl_module: Any) -> None:
        mon = self.monitor
        values = {f"initwise/{k}": float(v) for k, v in mon.scalars.items()}
        pl_module.log_dict(values, on_step=True, on_epoch=False, prog_bar=False,
                           batch_size=1)
        pl_module.log("initwise/alarms", float(len(mon.findings)), on_step=True,
                      on_epoch=False, prog_bar=self.prog_bar, batch_size=1)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Called when a validation run ends: its loss, for the epoch-2 cliff."""
        value = trainer.callback_metrics.get(self.val_loss_key) if self.val_loss_key else None
        if self.monitor is None or value is None or trainer.sanity_checking:
            return
        self.monitor.epoch_end(float(value), epoch=int(trainer.current_epoch))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Called when training ends: hooks removed, sinks closed; ``on_divergence="raise"``
        raises the divergence now."""
        if self.monitor is not None:
            self.monitor.on_train_end()
        self._raise_if_asked()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Called when fit ends: the monitor's hooks removed, its sinks closed."""
        if stage == "fit":
            self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Called when the fit raises: the monitor's hooks removed."""
        self._close()

    def state_dict(self) -> dict[str, Any]:
        """Called when a checkpoint is saved: the monitor's state."""
        return self._state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called when a checkpoint is restored (before ``on_fit_start``)."""
        self._load_state(state_dict)


@functools.cache
def _build() -> type:
    try:
        from lightning.pytorch import Callback
    except ImportError as e:
        raise ImportError(
            "initwise.monitor.lightning.InitwiseCallback needs Lightning >= 2.0 "
            "(lightning.pytorch): pip install 'initwise[lightning]'. In a plain loop use "
            "initwise.Monitor directly.") from e

    return framework_class("InitwiseCallback", _LightningAdapter, Callback, __name__)


def __getattr__(name: str) -> Any:
    if name == "InitwiseCallback":  # built once, on first access (functools.cache)
        return _build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
