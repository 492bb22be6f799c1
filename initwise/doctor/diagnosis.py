"""`Diagnosis`: what the doctor measured and found -- plain data with a minimal terminal view.

Rich renderers (HTML, tables) live in ``initwise.report`` and read :meth:`Diagnosis.to_dict`
(schema ``"initwise.diagnosis/1"``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from initwise.doctor.findings import SEVERITIES, Finding
from initwise.measure import LayerStats

__all__ = ["SCHEMA_VERSION", "Diagnosis", "LayerStats", "UnhealthyModelError"]

SCHEMA_VERSION = "initwise.diagnosis/1"


class UnhealthyModelError(AssertionError):
    """Raised by :meth:`Diagnosis.raise_for_errors`; an ``AssertionError`` so pytest shows it."""


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, float):
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


@dataclass
class Diagnosis:
    """The doctor's verdict on one model and batch.

    Attributes:
        findings: sorted by severity (errors first), then check code.
        layers: per-module measurements in execution order.
        data_profile: the batch's feature summary (n_rows, n_features, sparsity, nnz per row,
            feature scale summary).
        skipped: what was not checked, and why.
        preset: ``"quick"``, ``"standard"`` or ``"full"``.
        summary: scalar measurements (loss at init, label-prior loss, logit scale...).
    """

    findings: list[Finding] = field(default_factory=list)
    layers: list[LayerStats] = field(default_factory=list)
    data_profile: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    preset: str = "standard"
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        self.findings = sorted(self.findings, key=lambda f: (rank[f.severity], f.check, f.where))

    @property
    def codes(self) -> set[str]:
        """Check codes of all findings (any severity)."""
        return {f.check for f in self.findings}

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error and no warning (info findings are allowed)."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    def codes_at(self, *severities: str) -> set[str]:
        """Codes of findings with one of ``severities`` (e.g. ``"error", "warning"``)."""
        return {f.check for f in self.findings if f.severity in severities}

    def raise_for_errors(self, *, warnings: bool = False) -> None:
        """Raise :class:`UnhealthyModelError` listing the errors (and warnings if asked).

        Args:
            warnings: also fail on warnings. Defaults to False.

        Raises:
            UnhealthyModelError: if there is at least one such finding.
        """
        levels = ("error", "warning") if warnings else ("error",)
        bad = [f for f in self.findings if f.severity in levels]
        if bad:
            lines = [f"{f.severity} {f.check} at {f.where}: {f.evidence}" for f in bad]
            raise UnhealthyModelError(
                f"initwise.doctor found {len(bad)} problem(s):\n  " + "\n  ".join(lines)
            )

    def fix(self, model: Any, data: Any = None) -> list[str]:
        """Apply every automatic fix once (a shared fix such as ``initwise.init`` runs once).

        Args:
            model: the model to fix (in place).
            data: batches the fix may need (e.g. for data-aware init).

        Returns:
            The codes whose automatic fix was applied.
        """
        done: dict[Any, Any] = {}
        applied: list[str] = []
        for f in self.findings:
            if f.auto_fix is None:
                continue
            key = getattr(f.auto_fix, "key", id(f.auto_fix))
            if key not in done:
                done[key] = f.auto_fix(model, data)
            applied.append(f.check)
        return sorted(set(applied))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned (``schema: "initwise.diagnosis/1"``)."""
        return _json_safe({
            "schema": SCHEMA_VERSION,
            "preset": self.preset,
            "ok": self.ok,
            "codes": sorted(self.codes),
            "counts": {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES},
            "findings": [f.to_dict() for f in self.findings],
            "layers": [asdict(layer) for layer in self.layers],
            "data_profile": dict(self.data_profile),
            "skipped": list(self.skipped),
            "summary": dict(self.summary),
        })

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        try:
            from initwise.report import render_terminal

            return render_terminal(self)
        except Exception:  # noqa: BLE001 - the plain view below always works
            return self.plain_text()

    def plain_text(self) -> str:
        """A dependency-free text report: findings by severity, then a per-layer table."""
        head = "OK" if self.ok else f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [f"initwise doctor ({self.preset}): {head}"]
        for f in self.findings:
            lines.append(f"[{f.severity.upper()}] {f.check} @ {f.where}: {f.evidence}")
            lines.append(f"    why: {f.why}")
            lines.append(f"    fix: {f.fix}" + (" (automatic)" if f.automatic else ""))
        if self.layers:
            lines.append(f"{'layer':<28}{'kind':<10}{'act':<10}{'pre_std':>10}{'active':>8}"
                         f"{'sat':>7}{'dead':>6}{'grad':>10}{'upd':>10}")
            for s in self.layers:
                lines.append(
                    f"{s.name[:27]:<28}{s.kind[:9]:<10}{(s.activation or '-')[:9]:<10}"
                    f"{_fmt(s.pre_std):>10}{_fmt(s.active_fraction, 2):>8}"
                    f"{_fmt(s.saturated_fraction, 2):>7}{_fmt(s.dead_units):>6}"
                    f"{_fmt(s.grad_norm):>10}{_fmt(s.update_ratio):>10}"
                )
        if self.skipped:
            lines.append("skipped: " + "; ".join(self.skipped))
        return "\n".join(lines)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"
