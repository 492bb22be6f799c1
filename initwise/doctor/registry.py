"""Check registry, presets and the measurement context handed to every check.

A check is a callable ``fn(ctx: CheckContext) -> Iterable[Finding]``. It reads measurements
only (never the batch's activations, which are not kept) and must not change the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from initwise.doctor.diagnosis import LayerStats
from initwise.doctor.findings import Finding
from initwise.measure import DataProfile, LayerFacts, UnitStats

__all__ = [
    "CHECK_CODES", "PRESETS", "CheckContext", "register_builtin", "register_check",
    "registered_checks",
]

#: Presets, cheapest first.
PRESETS = ("quick", "standard", "full")

#: The stable vocabulary of check codes (add more, never rename).
CHECK_CODES = (
    "data.nonfinite", "data.unscaled", "data.uncentered", "data.sparse_fan_in",
    "data.constant_feature", "data.label_imbalance",
    "signal.vanishing", "signal.exploding", "signal.correlation_collapse",
    "units.dead", "units.saturated",
    "loss.nonfinite", "loss.init_mismatch", "output.logit_scale",
    "grad.vanishing", "grad.exploding", "grad.none",
    "update.ratio", "theory.depth", "dtype.underflow",
    # additions (never renamed)
    "update.missing",
)

CheckFn = Callable[["CheckContext"], Iterable[Finding]]


@dataclass
class CheckContext:
    """Everything measured in one diagnosis (read-only for checks).

    Attributes:
        model: the model (do not modify).
        preset: the preset in use.
        data: the inputs' :class:`DataProfile`.
        plans, accs: per-module plan and accumulated output statistics.
        layers: per-module :class:`LayerStats`, execution order.
        first_layer: name of the module that reads the raw input (``None`` if unknown).
        output: scalars about the logits (``std``, ``class_std``, ``source``, ``shape``).
        loss_kind, loss0, prior: the loss kind, loss at init, label-prior loss (or ``None``).
        targets: the batch's targets (``None`` without targets).
        grads: parameter name -> gradient (``None`` if the parameter got none).
        params: parameter name -> parameter (deduplicated, tied weights once).
        updates: parameter name -> dict(delta, weight, ratio, lost) after one optimizer step.
        loss_after: loss after the optimizer step on the copy.
        optimizer: the optimizer (do not step it).
        skipped: append human-readable reasons for checks not run.
        extra: free-form measurements for user checks.
    """

    model: nn.Module
    preset: str
    data: DataProfile
    plans: dict[str, LayerFacts] = field(default_factory=dict)
    accs: dict[str, UnitStats] = field(default_factory=dict)
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
        for s in self.layers:
            if s.name == name:
                return s
        return None


@dataclass
class _Entry:
    code: str
    fn: CheckFn
    preset: str
    builtin: bool


_REGISTRY: dict[str, list[_Entry]] = {}


def register_check(
    code: str, fn: CheckFn, overwrite: bool = False, *, preset: str = "quick"
) -> None:
    """Register a check under a code (runs in ``preset`` and every costlier preset).

    Args:
        code: the finding code the check reports (e.g. ``"myteam.attention_entropy"``).
        fn: ``fn(ctx: CheckContext) -> Iterable[Finding]``.
        overwrite: replace existing checks for ``code``. Defaults to False.
        preset: the cheapest preset that runs the check. Defaults to ``"quick"``.

    Raises:
        ValueError: if ``code`` is taken and ``overwrite`` is False, or ``preset`` is unknown.
        TypeError: if ``fn`` is not callable or ``code`` not a non-empty string.

    Example:
        >>> from initwise.doctor import register_check
        >>> register_check("demo.none", lambda ctx: [], overwrite=True)
    """
    if not isinstance(code, str) or not code:
        raise TypeError(f"register_check: code must be a non-empty string, got {code!r}.")
    if not callable(fn):
        raise TypeError(f"register_check: fn for {code!r} must be callable, got {type(fn)}.")
    if preset not in PRESETS:
        raise ValueError(f"register_check: unknown preset {preset!r}; valid: {PRESETS}.")
    if code in _REGISTRY and not overwrite:
        raise ValueError(
            f"register_check: a check is already registered for {code!r}; pass overwrite=True "
            f"to replace it."
        )
    _REGISTRY[code] = [_Entry(code, fn, preset, builtin=False)]


def register_builtin(code: str, fn: CheckFn, preset: str) -> None:
    """Register one of initwise's own checks (several may share a code; import time only)."""
    _REGISTRY.setdefault(code, []).append(_Entry(code, fn, preset, builtin=True))


def registered_checks(preset: str) -> list[_Entry]:
    """Checks that run under ``preset`` (registration order)."""
    rank = PRESETS.index(preset)
    return [e for entries in _REGISTRY.values() for e in entries
            if PRESETS.index(e.preset) <= rank]
