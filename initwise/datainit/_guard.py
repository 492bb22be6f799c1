"""The calibration mode of :func:`initwise.init` (its guard is :func:`initwise.state.guarded`).

:func:`calibration_mode` runs the calibration forwards in ``eval`` mode -- dropout off, so the
forwards are deterministic and never draw from the caller's global RNG -- except batch-statistic
norms (BatchNorm, SyncBatchNorm, InstanceNorm with running stats), which are put in ``train``
mode so that they normalize with batch statistics exactly as they will when training starts;
their running buffers are restored afterwards. The original mode of every module is restored.

It is a mode, not a guard: the walk inside it changes weights, biases and norm affine
parameters on purpose, so only the norms' running buffers are put back (a
:class:`initwise.state.ModelState` would put back everything).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["calibration_mode"]

_BATCH_STAT_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


@contextmanager
def calibration_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode, batch-statistic norms in train mode with their buffers restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    norms = [m for m in model.modules() if isinstance(m, _BATCH_STAT_NORMS)]
    buffers = [(b, b.detach().clone()) for m in norms for b in m.buffers(recurse=False)]
    try:
        model.eval()
        for m in norms:
            m.train()
        yield
    finally:
        with torch.no_grad():
            for b, copy in buffers:
                b.copy_(copy)
        for m, training in modes:
            m.training = training
