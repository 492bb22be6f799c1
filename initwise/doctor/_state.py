"""The doctor's no-change guarantee: snapshot everything a diagnosis could touch, restore it.

``preserved(model)`` saves, and restores on exit (also when the body raises):

* every parameter's values (a host copy, written back if the version counter or storage
  changed) and ``.grad`` (the same tensor object, or ``None``);
* every buffer (BatchNorm running statistics, ``num_batches_tracked``), also if re-assigned;
* each module's ``training`` flag;
* each module's hook dictionaries (forward, pre-forward, backward...);
* the global torch RNG state (CPU, and CUDA when initialized).

Inside the block the CPU (and initialized CUDA) generators are seeded with 0, so that dropout
draws are the same in every diagnosis and never advance the caller's RNG.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["preserved"]

_HOOK_DICTS = (
    "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
    "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks",
)


def _cuda_ready() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _snapshot(model: nn.Module) -> dict[str, Any]:
    modules = list(model.modules())
    params = list(model.parameters())
    return {
        "training": [(m, m.training) for m in modules],
        # accelerator weights are saved on the host (no extra device memory); a restore is
        # needed only if the version counter or the storage changed
        "params": [(p, p._version, p.data_ptr(), p.detach().to("cpu", copy=True))
                   for p in params],
        "grads": [
            (p, p.grad, None if p.grad is None else p.grad.detach().clone()) for p in params
        ],
        "buffers": [
            (m, name, b, None if b is None else b.detach().clone())
            for m in modules for name, b in m._buffers.items()
        ],
        "hooks": [
            (m, attr, dict(getattr(m, attr)))
            for m in modules for attr in _HOOK_DICTS if isinstance(getattr(m, attr, None), dict)
        ],
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if _cuda_ready() else None,
    }


def _restore(snap: dict[str, Any]) -> None:
    with torch.no_grad():
        for p, version, ptr, saved in snap["params"]:
            if p.data_ptr() != ptr:
                p.data = saved.to(p.device)
            elif p._version != version:
                p.copy_(saved.to(p.device))
        for p, grad, saved in snap["grads"]:
            p.grad = grad
            if grad is not None and not torch.equal(grad, saved):
                grad.copy_(saved)
        for m, name, buf, saved in snap["buffers"]:
            if m._buffers.get(name) is not buf:
                m._buffers[name] = buf
            if buf is not None and not torch.equal(buf, saved):
                buf.copy_(saved)
    for m, flag in snap["training"]:
        m.training = flag
    for m, attr, saved in snap["hooks"]:
        d = getattr(m, attr)
        d.clear()
        d.update(saved)
    torch.set_rng_state(snap["rng_cpu"])
    if snap["rng_cuda"] is not None:
        torch.cuda.set_rng_state_all(snap["rng_cuda"])


@contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Run the body, then put ``model`` and the global RNG back exactly as they were.

    Args:
        model: the module whose state is saved and restored.

    Yields:
        None. Inside the block the global generators are seeded with 0 (restored afterwards).
    """
    snap = _snapshot(model)
    try:
        torch.default_generator.manual_seed(0)
        if snap["rng_cuda"] is not None:
            for gen in torch.cuda.default_generators:
                gen.manual_seed(0)
        yield
    finally:
        _restore(snap)
