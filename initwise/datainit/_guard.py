"""Atomicity and hygiene for :func:`initwise.init`.

* :func:`atomic` snapshots every parameter and buffer (values and ``requires_grad``), every
  module's ``training`` flag and the number of registered hooks; on any exception the values are
  copied back *in place* (tied parameters stay the same object), the flags restored, buffers and
  forward pre-hooks added meanwhile (the input standardization of rule 1) removed, and the
  exception re-raised.
* :func:`calibration_mode` runs the calibration forwards in ``eval`` mode -- dropout off, so the
  forwards are deterministic and never draw from the caller's global RNG -- except batch-statistic
  norms (BatchNorm, SyncBatchNorm, InstanceNorm with running stats), which are put in ``train``
  mode so that they normalize with batch statistics exactly as they will when training starts;
  their running buffers are restored afterwards. The original mode of every module is restored.
* :func:`preserve_rng` restores the caller's global CPU (and CUDA) RNG state on exit, whatever a
  user's forward may have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["atomic", "calibration_mode", "hook_counts", "preserve_rng"]

_BATCH_STAT_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def hook_counts(model: nn.Module) -> dict[str, int]:
    """Number of hooks of each kind registered on ``model`` and its submodules."""
    counts: dict[str, int] = {}
    for name in _HOOK_DICTS:
        counts[name] = sum(len(getattr(m, name, {}) or {}) for m in model.modules())
    return counts


def _tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    seen: set[int] = set()
    out = []
    for name, t in [*model.named_parameters(remove_duplicate=False),
                    *model.named_buffers(remove_duplicate=False)]:
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        out.append((name, t))
    return out


@contextmanager
def atomic(model: nn.Module) -> Iterator[None]:
    """Restore ``model`` exactly (values, ``requires_grad``, modes) if the body raises."""
    tensors = _tensors(model)
    saved = [(t, t.detach().clone(), t.requires_grad) for _, t in tensors]
    modes = [(m, m.training) for m in model.modules()]
    keys = [(m, set(m._buffers), set(m._forward_pre_hooks)) for m in model.modules()]
    try:
        yield
    except BaseException:
        _drop_added(keys)
        with torch.no_grad():
            for t, copy, req in saved:
                t.copy_(copy)
                if isinstance(t, nn.Parameter) or t.is_leaf:
                    t.requires_grad_(req)
        for m, training in modes:
            m.training = training
        raise


def _drop_added(keys: list[tuple[nn.Module, set, set]]) -> None:
    """Remove buffers and forward pre-hooks registered since ``keys`` was taken."""
    for m, buffers, hooks in keys:
        for name in set(m._buffers) - buffers:
            del m._buffers[name]
        for key in set(m._forward_pre_hooks) - hooks:
            del m._forward_pre_hooks[key]
            m._forward_pre_hooks_with_kwargs.pop(key, None)
            getattr(m, "_forward_pre_hooks_always_called", {}).pop(key, None)


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


@contextmanager
def preserve_rng() -> Iterator[None]:
    """Restore the global CPU and CUDA RNG states on exit."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
