"""Snapshot and restore everything a forward or an init may change in a model.

Used by :func:`initwise.graph.trace` (a forward must leave BatchNorm statistics untouched) and by
:func:`initwise.policy.apply` (atomic: on error, the model is bit-for-bit as before).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["ModelSnapshot", "preserved", "rng_devices"]


class ModelSnapshot:
    """The tensors (objects and values), ``requires_grad`` flags and train/eval modes of a model.

    :meth:`restore` puts back the original Parameter/buffer objects (if they were replaced),
    their exact bits, their ``requires_grad`` flags, removes parameters/buffers added since, and
    restores every module's ``training`` flag.

    Args:
        model: the model.
        copy_limit: ``None`` (default) copies every tensor. An int: parameters with more elements
            are not copied; their in-place version counter (``tensor._version``) is recorded
            instead and :meth:`restore` raises ``RuntimeError`` if it moved (a forward that wrote
            a large parameter in place cannot be undone). For read-only probes (a trace): a
            forward under ``no_grad`` does not write parameters, and copying and comparing a
            2^24-row embedding table on every trace costs more than the forward. Writes through
            ``.data`` bypass the version counter and are not seen.
    """

    def __init__(self, model: nn.Module, *, copy_limit: int | None = None) -> None:
        self._modules = list(model.modules())
        self._training = [m.training for m in self._modules]
        self._params = [dict(m._parameters) for m in self._modules]
        self._buffers = [dict(m._buffers) for m in self._modules]
        self._values: dict[int, torch.Tensor] = {}
        self._versions: dict[int, tuple[str, int]] = {}
        self._grad_flags: dict[int, bool] = {}
        names = {id(t): n for n, t in model.named_parameters(remove_duplicate=False)}
        large = set()
        if copy_limit is not None:
            large = {id(t) for table in self._params for t in table.values()
                     if t is not None and t.numel() > copy_limit}
        with torch.no_grad():
            for table in (*self._params, *self._buffers):
                for t in table.values():
                    if t is None or id(t) in self._grad_flags:
                        continue
                    self._grad_flags[id(t)] = t.requires_grad
                    if id(t) in large:
                        self._versions[id(t)] = (names.get(id(t), "?"), t._version)
                    else:
                        self._values[id(t)] = t.detach().clone()

    def restore(self) -> None:
        """Put the model back exactly as it was when the snapshot was taken."""
        with torch.no_grad():
            for m, params, buffers, training in zip(
                self._modules, self._params, self._buffers, self._training
            ):
                _restore_table(m._parameters, params, self._values)
                _restore_table(m._buffers, buffers, self._values)
                m.training = training
            for table in self._params:
                for t in table.values():
                    if t is not None and t.requires_grad != self._grad_flags[id(t)]:
                        t.requires_grad_(self._grad_flags[id(t)])
        moved = [name for (name, v), t in zip(self._versions.values(), self._tracked(), strict=True)
                 if t._version != v]
        if moved:
            raise RuntimeError(
                f"the forward wrote parameter(s) {moved} in place; they were tracked by version "
                f"counter only (copy_limit) and cannot be restored. Do not modify parameters "
                f"inside forward(), or snapshot with copy_limit=None.")

    def _tracked(self) -> list[torch.Tensor]:
        by_id = {id(t): t for table in self._params for t in table.values() if t is not None}
        return [by_id[i] for i in self._versions]


def _restore_table(current: dict, saved: dict, values: dict[int, torch.Tensor]) -> None:
    for key in [k for k in current if k not in saved]:
        del current[key]
    for key, t in saved.items():
        current[key] = t
        if t is not None and id(t) in values:
            value = values[id(t)]
            if t.shape != value.shape or t.dtype != value.dtype:
                t.data = value.clone()
            elif not _same_bits(t, value):
                t.copy_(value)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-equal (so a tensor left unchanged is not written: its version counter stays, and an
    autograd graph that saved it stays valid). -0.0 vs 0.0 differ; any NaN counts as changed."""
    if a.device.type == "meta" or not torch.equal(a, b):
        return False
    if a.is_floating_point():
        return torch.equal(torch.signbit(a), torch.signbit(b))
    return True


def rng_devices(model: nn.Module) -> list[int]:
    """CUDA device indices the model's tensors live on (for ``torch.random.fork_rng``)."""
    devices = {
        t.device.index or 0
        for t in (*model.parameters(), *model.buffers())
        if t.device.type == "cuda"
    }
    return sorted(devices)


@contextmanager
def preserved(model: nn.Module, *, always_restore: bool = True,
              copy_limit: int | None = None) -> Iterator[ModelSnapshot]:
    """Context manager: run code on ``model`` with the caller's global RNG state preserved.

    Args:
        model: the model to protect.
        always_restore: restore the model on exit (``True``, for read-only probes such as a
            trace) or only when the block raises (``False``, for atomic transforms).
        copy_limit: see :class:`ModelSnapshot` (default ``None``: copy every tensor).

    Yields:
        The :class:`ModelSnapshot` taken on entry.
    """
    snapshot = ModelSnapshot(model, copy_limit=copy_limit)
    with torch.random.fork_rng(devices=rng_devices(model)):
        try:
            yield snapshot
        except BaseException:
            snapshot.restore()
            raise
        if always_restore:
            snapshot.restore()
