"""`Measurements`: one frozen record of everything measured on a model at one step.

The doctor's own pass (:func:`initwise.measure.measure`) and a live training step
(:func:`initwise.measure.from_training_step`) both produce it, and every check
(:func:`initwise.doctor.run_checks`) reads it and nothing else. It holds numbers and references
to the measured layers; checks never change it (``skipped`` and ``extra`` are the only
containers a check may append to, for notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from initwise.measure.data import DataProfile
from initwise.measure.facts import LayerFacts
from initwise.measure.stats import UnitStats

__all__ = ["NEEDS", "LayerStats", "Measurements"]

#: What a measurement pass can provide, cheapest first.
NEEDS = ("forward", "grad", "update")


@dataclass
class LayerStats:
    """One probed module's measurements (``None`` where not measured).

    Attributes:
        name: qualified module name. kind: layer kind. order: execution order (first call).
        activation: the nonlinearity applied to the output (or ``None``).
        units: channels / features probed. calls: forward calls seen.
        pre_std: sqrt(mean over units of the across-sample variance) of the output.
        rms: root mean square of the output.
        post_std: std of phi(output) (when phi is known).
        signal_fraction: sum of per-unit variances over sum of second moments (1 = inputs
            fully distinguished, 0 = every sample gives the same output).
        active_fraction: fraction of output elements > 0.
        saturated_fraction: fraction of elements in the activation's flat region.
        dead_units: units never > 0 on any sample (ReLU family only).
        grad_norm, weight_norm: Frobenius norms of the layer's weight gradient and weight.
        update_ratio: ||delta W|| / ||W|| after one optimizer step.
        followed_by_norm, residual, is_output: structure, from the graph.
        nonfinite: NaN/Inf elements in the output. dtype: output dtype.
    """

    name: str
    kind: str
    order: int
    activation: str | None = None
    units: int | None = None
    calls: int = 0
    pre_std: float | None = None
    rms: float | None = None
    post_std: float | None = None
    signal_fraction: float | None = None
    active_fraction: float | None = None
    saturated_fraction: float | None = None
    dead_units: int | None = None
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    followed_by_norm: str | None = None
    residual: bool = False
    is_output: bool = False
    nonfinite: int = 0
    dtype: str = ""


@dataclass(frozen=True)
class Measurements:
    """Everything measured on a model at one step (read-only for checks).

    Attributes:
        step: the training step (``None`` for a measurement outside training).
        preset: the doctor preset the pass ran (``"train"`` for a live training step).
        needs: what was actually measured (a subset of :data:`NEEDS`: "grad" only when
            gradients were computed, "update" only when an optimizer step was measured); a
            check that needs more is not run on this record.
        data: the inputs' :class:`~initwise.measure.DataProfile`.
        facts: ``{name: LayerFacts}`` of the measured layers.
        stats: ``{name: UnitStats}`` of their outputs.
        layers: per-module :class:`LayerStats`, execution order.
        first_layer: the module that reads the raw input (``None`` if unknown).
        output: scalars about the logits (``std``, ``class_std``, ``source``, ``shape``...).
        loss_kind, loss0, prior: the loss kind, the loss, the label-prior loss (or ``None``).
        targets: the batch's targets (``None`` without targets).
        grads: parameter name -> gradient (``None`` without gradients).
        params: parameter name -> parameter (deduplicated: tied weights once).
        updates: parameter name -> dict(delta, weight, grad, ratio, lost) of one optimizer step.
        loss_after: the loss after that step (when measured).
        optimizer: the optimizer (never stepped by a check).
        skipped: human-readable reasons for what was not measured or checked.
        extra: free-form measurements for user checks.
    """

    step: int | None
    preset: str
    needs: frozenset[str]
    data: DataProfile
    facts: dict[str, LayerFacts] = field(default_factory=dict)
    stats: dict[str, UnitStats] = field(default_factory=dict)
    layers: list[LayerStats] = field(default_factory=list)
    first_layer: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    loss_kind: str | None = None
    loss0: float | None = None
    prior: float | None = None
    targets: Any = None
    grads: dict[str, Any] | None = None
    params: dict[str, nn.Parameter] = field(default_factory=dict)
    updates: dict[str, dict[str, float]] | None = None
    loss_after: float | None = None
    optimizer: Any = None
    skipped: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> LayerStats | None:
        """The :class:`LayerStats` of ``name`` (``None`` if it was not measured)."""
        for s in self.layers:
            if s.name == name:
                return s
        return None
