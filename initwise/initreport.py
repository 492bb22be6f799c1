"""`InitReport`: what an initialization did, per parameter and per calibrated layer.

Returned by :func:`initwise.apply` (structural init: ``params`` filled) and :func:`initwise.init`
(data-aware init: ``params``, ``layers`` and ``loss`` filled). Plain data: renderers in
``initwise.report`` read it; ``to_dict``/``to_json`` give a versioned, JSON-safe form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from initwise.jsonio import dumps, json_safe

__all__ = ["SCHEMA_VERSION", "InitReport", "LayerCalibration", "LossCalibration", "ParamRecord"]

SCHEMA_VERSION = "initwise.initreport/1"


@dataclass
class ParamRecord:
    """One parameter's structural initialization.

    Attributes:
        name: qualified parameter name (``"encoder.0.weight"``).
        module: qualified name of the owning module.
        module_type: the owning module's class name.
        scheme: the scheme applied (``"kaiming_normal"``, ``"zeros"``, ``"reset_parameters"``,
            ``"skipped:frozen"``, ``"tied:<name>"``...).
        fan_in: the fan-in used, if any.
        fan_out: the fan-out used, if any.
        gain: the gain used, if any.
        std: the parameter's standard deviation after initialization.
        note: free text (why a choice was made).
    """

    name: str
    module: str
    module_type: str
    scheme: str
    fan_in: int | None = None
    fan_out: int | None = None
    gain: float | None = None
    std: float | None = None
    note: str = ""


@dataclass
class LayerCalibration:
    """One layer's data-aware calibration (filled by :func:`initwise.init`).

    Attributes:
        module: qualified module name.
        module_type: class name.
        scale_before: the weight std before calibration.
        scale_after: the weight std after calibration.
        target_std: the pre-activation std aimed for.
        pre_std: measured pre-activation std after calibration.
        active_fraction: fraction of units active on some calibration sample (ReLU family),
            ``None`` where it does not apply.
        saturated_fraction: fraction of saturated units (tanh/sigmoid family) or ``None``.
        iterations: calibration iterations used.
        converged: whether the tolerance was reached within ``max_iters``.
        note: free text (e.g. "re-drawn: output was constant").
    """

    module: str
    module_type: str
    scale_before: float
    scale_after: float
    target_std: float | None = None
    pre_std: float | None = None
    active_fraction: float | None = None
    saturated_fraction: float | None = None
    iterations: int = 0
    converged: bool = True
    note: str = ""


@dataclass
class LossCalibration:
    """The initial loss before and after init, against the label-prior target.

    Attributes:
        kind: ``"ce"``, ``"bce"`` or ``"mse"``. before / after: the loss on the calibration
            batches before and after init. target: the label-prior loss of those labels
            (:func:`initwise.modelio.label_prior_loss`); init sets the prior shrunk toward
            uniform by the sample's size, whose loss on these rows is a little higher.
        output_source: where the logits came from.
        held_out: the loss after init on rows the head's bias was not fitted to: the bias is
            refitted on one half of the calibration batches and scored on the other, both ways
            (``None`` with a single batch).
        expected: the loss expected after init for labels drawn from the prior, independent of
            the logits (what a random head costs on new data; ``None`` for MSE).
    """

    kind: str
    before: float
    after: float
    target: float
    output_source: str = "output"
    held_out: float | None = None
    expected: float | None = None


@dataclass
class InitReport:
    """What an initialization did. ``str(report)`` is a readable table."""

    params: list[ParamRecord] = field(default_factory=list)
    layers: list[LayerCalibration] = field(default_factory=list)
    loss: LossCalibration | None = None
    warnings: list[str] = field(default_factory=list)
    policy: str = "auto"
    seed: int | None = None
    policy_reason: str = ""

    def param(self, name: str) -> ParamRecord:
        """The record of parameter ``name``.

        Raises:
            KeyError: naming the parameter and the known names' count.
        """
        for rec in self.params:
            if rec.name == name:
                return rec
        raise KeyError(f"no parameter {name!r} in this report ({len(self.params)} parameters).")

    def layer(self, module: str) -> LayerCalibration:
        """The calibration record of module ``module``."""
        for rec in self.layers:
            if rec.module == module:
                return rec
        raise KeyError(f"no calibrated layer {module!r} in this report.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (:func:`initwise.jsonio.json_safe`: NaN becomes ``None``, +-inf the
        strings ``"inf"`` / ``"-inf"``) with a ``schema`` key."""
        d = asdict(self)
        d["schema"] = SCHEMA_VERSION
        return json_safe(d)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict`."""
        return dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """Plain-text tables of parameters, calibrated layers and the loss."""
        out = [f"InitReport (policy={self.policy}, seed={self.seed})"]
        if self.policy_reason:
            out.append(self.policy_reason)
        if self.params:
            rows = [
                (r.name, r.module_type, r.scheme, _fmt(r.fan_in), _fmt(r.fan_out), _fmt(r.gain),
                 _fmt(r.std))
                for r in self.params
            ]
            out.append(_grid(("parameter", "type", "scheme", "fan_in", "fan_out", "gain", "std"),
                             rows))
        if self.layers:
            rows = [
                (r.module, r.module_type, _fmt(r.scale_before), _fmt(r.scale_after),
                 _fmt(r.target_std), _fmt(r.pre_std), _fmt(r.active_fraction), str(r.iterations),
                 "yes" if r.converged else "NO")
                for r in self.layers
            ]
            out.append(_grid(("layer", "type", "scale before", "scale after", "target std",
                              "pre-act std", "active", "iters", "converged"), rows))
        if self.loss is not None:
            lc = self.loss
            out.append(f"initial loss ({lc.kind}, logits from {lc.output_source}): "
                       f"before {_fmt(lc.before)} -> after {_fmt(lc.after)} "
                       f"(label-prior target {_fmt(lc.target)})"
                       + (f"; on rows the bias was not fitted to {_fmt(lc.held_out)}"
                          if lc.held_out is not None else ""))
        out.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def format_number(x: Any, digits: int = 4, sci_outside: tuple[float, float] | None = None) -> str:
    """Short human form of a value: ``-`` for None, yes/no for bools, ints as is, floats with
    ``digits`` significant digits (``x.2e`` for non-zero magnitudes outside ``sci_outside`` =
    ``(lo, hi)``, i.e. ``|x| < lo`` or ``|x| >= hi``)."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if sci_outside and x != 0 and not sci_outside[0] <= abs(x) < sci_outside[1]:
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def _fmt(x: Any) -> str:
    return format_number(x)


def _grid(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([line, sep, *body])
