"""The monitor as a Hugging Face ``TrainerCallback``: ``Trainer(..., callbacks=[cb])``.

:class:`InitwiseTrainerCallback` is built on first access (PEP 562), so importing
:mod:`initwise.monitor` or this module never imports ``transformers``; it needs the ``hf``
extra (``pip install 'initwise[hf]'``, transformers >= 4.42 for ``on_optimizer_step``).

What it does in ``Trainer.train()``, hook by hook; it acts on the run only through ``control``
and never raises inside the loop (unless ``on_divergence="raise"``, and then only at the end):

* ``on_train_begin``: a :class:`~initwise.Monitor` on ``kwargs["model"]`` with the callback's
  keywords, and a forward hook on that model that keeps each training forward's
  ``output.loss`` on the device. The Trainer gives callbacks no per-step loss: its running sum
  is a local of the loop, and ``state.log_history`` holds a mean over ``logging_steps`` only
  when it logs (one host synchronization each time); the model's own output is the step's loss
  without either. With gradient accumulation the step's loss is the mean over its micro-batches
  (a model that divides its loss by the step's ``num_items_in_batch`` gives 1/accumulation of
  it: a constant factor, which no detector sees, as all compare the loss with itself).
  A model whose output has no ``loss`` (a custom ``compute_loss``) is still monitored, without
  the loss tier, and a warning says so. When the run resumes from ``checkpoint-<step>`` the
  monitor state saved there is loaded.
* ``on_optimizer_step`` (right after ``optimizer.step()``, before ``zero_grad()`` frees the
  gradients): one ``Monitor.step`` with the step's loss and the optimizer (unwrapped from
  accelerate's ``AcceleratedOptimizer``). ``on_step_end`` would come after ``zero_grad()``,
  too late for gradient norms and the gradient checks.
* a :class:`~initwise.monitor.TrainingDiverged` (or a finding named in ``stop_on``) sets
  ``control.should_training_stop``; a step with a new finding sets ``control.should_log``, so
  the Trainer logs its loss line at the step where the alarm started.
* ``on_evaluate``: ``metrics["eval_loss"]`` to :meth:`~initwise.Monitor.epoch_end` with the
  epoch it was measured in (the epoch-2 cliff check).
* ``on_save``: the monitor's state to ``<checkpoint>/initwise_monitor.pt``; ``on_train_end``:
  the hooks removed, the sinks closed.

The monitor's scalars go to its own sinks (``log=`` :mod:`initwise.monitor.sinks`; a
``TensorBoardSink`` on the Trainer's ``logging_dir`` puts them beside the Trainer's curves).

Example:
    >>> from initwise.monitor.hf import InitwiseTrainerCallback   # doctest: +SKIP
    >>> cb = InitwiseTrainerCallback(every=50)                    # doctest: +SKIP
    >>> trainer = Trainer(model, args, train_dataset=ds, callbacks=[cb])  # doctest: +SKIP
    >>> trainer.train(); print(cb.monitor.report())               # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from initwise.monitor._adapters import MonitorAdapter, framework_class

__all__ = ["STATE_FILE", "InitwiseTrainerCallback"]  # noqa: F822 (built by __getattr__)

#: The monitor's state in a Trainer checkpoint folder.
STATE_FILE = "initwise_monitor.pt"


def _unwrap(optimizer: Any) -> Any:
    """accelerate's ``AcceleratedOptimizer`` -> the torch optimizer it wraps."""
    while type(optimizer).__name__.startswith("Accelerated") and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    return optimizer


def _output_loss(output: Any) -> Any:
    if isinstance(output, Mapping):
        return output.get("loss")
    return getattr(output, "loss", None)


class _TrainerAdapter(MonitorAdapter):
    """The callback's behaviour; the built class adds only ``transformers.TrainerCallback``.

    Args:
        on_divergence: ``"stop"`` (default) or ``"raise"`` (raised from ``on_train_end``).
        stop_on: finding codes that also stop training, e.g. ``("train.divergence",)``.
            Default ().
        eval_loss_key: the evaluation metric reported to :meth:`~initwise.Monitor.epoch_end`
            after each evaluation (the epoch-2 cliff check needs two or more per epoch:
            ``eval_strategy="steps"``); None: not reported. Default "eval_loss".
        log_on_alarm: set ``control.should_log`` on a step with a new finding. Default True.
        **monitor_kwargs: :class:`~initwise.Monitor`'s keywords (``every``, ``sync_every``,
            ``checks``, ``repair``, ``log`` sinks, ...).

    Attributes:
        monitor: the :class:`~initwise.Monitor` of the current (or last) run, or None.
        diverged: the :class:`~initwise.monitor.TrainingDiverged` that stopped it, or None.
        stopped_by: the finding (one of ``stop_on``) that stopped it, or None.
    """

    def __init__(self, *, on_divergence: str = "stop", stop_on: Any = (),
                 eval_loss_key: str | None = "eval_loss", log_on_alarm: bool = True,
                 **monitor_kwargs: Any) -> None:
        super().__init__(on_divergence=on_divergence, stop_on=stop_on, **monitor_kwargs)
        self.eval_loss_key = eval_loss_key
        self.log_on_alarm = bool(log_on_alarm)
        self._hook: Any = None
        self._warned_no_loss = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Called when training begins: the Monitor on ``kwargs["model"]``."""
        model = kwargs.get("model")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(self).__name__}: the Trainer passed no model (got "
                            f"{type(model).__name__}); add the callback to a transformers.Trainer.")
        saved = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}" / STATE_FILE
        if state.global_step > 0 and saved.is_file():
            self._load_state({"monitor": torch.load(saved, weights_only=True)})
        self._make_monitor(model).on_train_start()
        self._rank_zero = bool(getattr(state, "is_world_process_zero", True))
        self._remove_hook()
        self._hook = model.register_forward_hook(self._grab_loss)
        return control

    def _grab_loss(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._add_loss(_output_loss(output))

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Called after ``optimizer.step()``: one monitor step (the gradients are still there)."""
        loss = self._take_loss()
        if loss is None and not self._warned_no_loss and self.monitor is not None:
            self._warned_no_loss = True
            self._warn(f"{type(self).__name__}: the model's output has no 'loss' (a custom "
                       "compute_loss?): the monitor runs without the loss tier (plateau, "
                       "divergence, non-finite loss).")
        new, stop = self._step(loss, _unwrap(kwargs.get("optimizer")))
        if stop:
            control.should_training_stop = True
        if new and self.log_on_alarm:
            control.should_log = True
        return control

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Called after an evaluation: ``eval_loss`` with its epoch, for the epoch-2 cliff."""
        metrics = kwargs.get("metrics") or {}
        value = metrics.get(self.eval_loss_key) if self.eval_loss_key else None
        if self.monitor is not None and value is not None and state.epoch is not None:
            epoch = max(math.ceil(float(state.epoch)) - 1, 0)  # 1.0: the end of epoch 0
            self.monitor.epoch_end(float(value), epoch=epoch)
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Called when a checkpoint is saved: the monitor's state beside it."""
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        if self.monitor is not None and state.is_world_process_zero and folder.is_dir():
            torch.save(self.monitor.state_dict(), folder / STATE_FILE)
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Called when training ends: hooks removed, sinks closed; raise if configured."""
        self._remove_hook()
        if self.monitor is not None:
            self.monitor.on_train_end()  # hooks removed, sinks closed
        self._raise_if_asked()
        return control

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


_NEEDS = ("initwise.monitor.hf.InitwiseTrainerCallback needs transformers >= 4.42 and "
          "accelerate: pip install 'initwise[hf]'. In a plain loop use initwise.Monitor "
          "directly.")


@functools.cache
def _build() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError as e:
        raise ImportError(_NEEDS) from e
    if not hasattr(TrainerCallback, "on_optimizer_step"):  # the monitor steps there
        raise ImportError(_NEEDS + " (this transformers has no on_optimizer_step hook)")

    return framework_class("InitwiseTrainerCallback", _TrainerAdapter, TrainerCallback, __name__)


def __getattr__(name: str) -> Any:
    if name == "InitwiseTrainerCallback":  # built once, on first access (functools.cache)
        return _build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
