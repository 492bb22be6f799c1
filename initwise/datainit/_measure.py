"""Run the calibration batches through the model and collect one layer's statistics.

A thin use of the measurement core (:func:`initwise.measure.probe`): the forward is ended
(:class:`~initwise.measure.StopForward`) as soon as the layer has been called as many times as
the graph recorded, so calibrating layer ``k`` costs a forward up to layer ``k`` only; the hooks
live for one measurement and are always removed; the sums are all-reduced across ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from initwise.activations import ActivationFacts
from initwise.measure import (
    ColumnStats,
    LayerFacts,
    SparseInputStats,
    UnitStats,
    all_reduce_sum,
    dist_active,
    probe,
    run_forward,
)
from initwise.modelio import call_model

__all__ = ["Measurement", "measure", "measure_many"]


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


def measure(
    model: nn.Module,
    batches: list[tuple[Any, Any]],
    rec: LayerFacts,
    act: ActivationFacts | None,
    *,
    columns: bool = False,
) -> Measurement:
    """Measure layer ``rec``'s output (and its input) on every calibration batch.

    Args:
        model: the model (already in calibration mode).
        batches: ``(inputs, targets)`` pairs already on the model's device.
        rec: the layer's facts.
        act: the activation the walk calibrates for (its saturation threshold is counted).
        columns: also collect per-column moments of a dense input.

    Returns:
        The all-reduced :class:`Measurement`.
    """
    one = {rec.name: replace(rec, act=act)}
    with probe(model, one, input_stats={rec.name: columns}, stop_after={rec.name: rec.calls},
               post=False) as p, torch.no_grad():
        for inputs, _ in batches:
            run_forward(p, lambda inputs=inputs: call_model(model, inputs))
    p.all_reduce()
    res = Measurement(p.stats[rec.name], p.columns.get(rec.name), p.sparse.get(rec.name))
    if _any_rank_sparse(res):
        res.sparse = (res.sparse or SparseInputStats()).all_reduce()
    return res


def _any_rank_sparse(res: Measurement) -> bool:
    """Agree across ranks on whether a sparse input was seen (so all ranks all-reduce alike)."""
    if not dist_active():
        return res.sparse is not None
    return all_reduce_sum([1.0 if res.sparse is not None else 0.0])[0] > 0


def measure_many(
    model: nn.Module,
    batches: list[tuple[Any, Any]],
    recs: dict[str, tuple[LayerFacts, ActivationFacts | None, bool]],
) -> dict[str, Measurement]:
    """Measure several layers in one pass over the calibration batches (whole forwards).

    Args:
        model: the model (already in calibration mode).
        batches: ``(inputs, targets)`` pairs already on the model's device.
        recs: ``{name: (facts, activation, columns)}`` as :func:`measure` takes them.

    Returns:
        ``{name: Measurement}``, all-reduced.
    """
    layers = {name: replace(rec, act=act) for name, (rec, act, _) in recs.items()}
    with probe(model, layers, input_stats={n: c for n, (_, _, c) in recs.items()},
               post=False) as p, torch.no_grad():
        for inputs, _ in batches:
            run_forward(p, lambda inputs=inputs: call_model(model, inputs))
    p.all_reduce()
    out = {}
    for name in recs:
        res = Measurement(p.stats[name], p.columns.get(name), p.sparse.get(name))
        if _any_rank_sparse(res):
            res.sparse = (res.sparse or SparseInputStats()).all_reduce()
        out[name] = res
    return out
