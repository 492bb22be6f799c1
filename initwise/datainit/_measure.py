"""Run the calibration batches through the model and collect one layer's statistics.

The forward is aborted (a private ``BaseException``) as soon as the layer has been called as many
times as the graph recorded, so calibrating layer ``k`` costs a forward up to layer ``k`` only.
Hooks are registered for one measurement and always removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initwise.datainit._layers import LOOKUP_KINDS, unit_dim
from initwise.datainit._stats import ColumnStats, SparseInputStats, UnitStats, sparse_values

__all__ = ["Measurement", "measure"]


class _Stop(BaseException):
    """Raised by a hook to end a calibration forward early (never escapes :func:`measure`)."""


@dataclass
class Measurement:
    """One layer's statistics over all calibration batches (all ranks).

    Attributes:
        out: per-unit output moments.
        columns: per-input-column moments (dense data layers, when asked).
        sparse: effective fan-in of a sparse or lookup input (when the input was one).
    """

    out: UnitStats
    columns: ColumnStats | None = None
    sparse: SparseInputStats | None = None


def _first_input(args: tuple, kwargs: dict) -> Any:
    if args:
        return args[0]
    return next(iter(kwargs.values()), None)


def _lookup_values(module: nn.Module, args: tuple, kwargs: dict) -> tuple[torch.Tensor, int]:
    """Stored values and row count of an Embedding / EmbeddingBag input."""
    idx = _first_input(args, kwargs)
    if isinstance(module, nn.Embedding):
        return torch.ones(idx.numel(), dtype=torch.float64), idx.numel()
    offsets = args[1] if len(args) > 1 else kwargs.get("offsets")
    psw = args[2] if len(args) > 2 else kwargs.get("per_sample_weights")
    if idx.dim() == 2:
        rows, size = idx.shape[0], torch.full((idx.numel(),), idx.shape[1])
    else:
        rows = offsets.numel() if offsets is not None else 1
        bounds = torch.cat([offsets.cpu(), torch.tensor([idx.numel()])]) if offsets is not None \
            else torch.tensor([0, idx.numel()])
        size = torch.repeat_interleave(bounds.diff(), bounds.diff())
    vals = psw.detach().double().reshape(-1).cpu() if psw is not None \
        else torch.ones(idx.numel(), dtype=torch.float64)
    if getattr(module, "mode", "sum") == "mean":
        vals = vals / size.clamp_min(1).double()
    return vals, rows


def measure(
    model: nn.Module,
    batches: list[tuple[Any, Any]],
    node: Any,
    *,
    sat_threshold: float | None = None,
    columns: bool = False,
) -> Measurement:
    """Measure ``node``'s output (and optionally its input) on every calibration batch.

    Args:
        model: the model (already in calibration mode).
        batches: ``(inputs, targets)`` pairs already on the model's device.
        node: the graph ``LayerNode``.
        sat_threshold: count ``|z|`` above it per unit (saturating activations).
        columns: also collect per-column moments of a dense input.

    Returns:
        The all-reduced :class:`Measurement`.
    """
    from initwise.modelio import call_model

    res = Measurement(UnitStats(sat_threshold))
    lookup = node.kind in LOOKUP_KINDS
    calls = [0]
    udim = unit_dim(node.kind)

    def pre(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        x = _first_input(args, kwargs)
        sv = _lookup_values(mod, args, kwargs) if lookup else sparse_values(x)
        if sv is not None:
            res.sparse = res.sparse or SparseInputStats()
            res.sparse.update(*sv)
        elif columns and isinstance(x, torch.Tensor) and x.is_floating_point():
            res.columns = res.columns or ColumnStats()
            res.columns.update(x, udim)

    def post(mod: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            res.out.update(out, udim)
        calls[0] += 1
        if calls[0] >= node.calls:
            raise _Stop

    h1 = node.module.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = node.module.register_forward_hook(post, with_kwargs=True)
    try:
        with torch.no_grad():
            for inputs, _ in batches:
                calls[0] = 0
                try:
                    call_model(model, inputs)
                except _Stop:
                    pass
    finally:
        h1.remove()
        h2.remove()
    res.out.all_reduce()
    if res.columns is not None:
        res.columns.all_reduce()
    if _any_rank_sparse(res):
        res.sparse = (res.sparse or SparseInputStats()).all_reduce()
    return res


def _any_rank_sparse(res: Measurement) -> bool:
    """Agree across ranks on whether a sparse input was seen (so all ranks all-reduce alike)."""
    from initwise.datainit._stats import all_reduce_sum, dist_active

    if not dist_active():
        return res.sparse is not None
    return all_reduce_sum([1.0 if res.sparse is not None else 0.0])[0] > 0
