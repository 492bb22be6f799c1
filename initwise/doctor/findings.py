"""`Finding`: one pitfall the doctor found; plain data, rendered by ``initwise.report``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEVERITIES", "Finding"]

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One pitfall: what (``check``), how bad, where, the measured evidence, why, and the fix.

    Attributes:
        check: stable code such as ``"units.dead"`` (never renamed).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        where: a module's qualified name, or ``"data"``, ``"loss"``, ``"model"``.
        evidence: the measured numbers with the expected range, as a sentence.
        why: one or two sentences of theory, with a reference.
        fix: what to do, in words.
        fix_code: a copyable code snippet ("" if none).
        metrics: the measured numbers as a dict (for JSON and plots).
        auto_fix: a callable ``(model, data) -> None`` applying the fix, or ``None``.
    """

    check: str
    severity: str
    where: str
    evidence: str
    why: str
    fix: str
    fix_code: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    auto_fix: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding.severity: {self.severity!r} is not one of {SEVERITIES}."
            )

    @property
    def automatic(self) -> bool:
        """Whether :meth:`apply` can fix this finding."""
        return self.auto_fix is not None

    def apply(self, model: Any, data: Any = None) -> None:
        """Apply the automatic fix to ``model`` (``data`` where the fix needs batches).

        Raises:
            RuntimeError: if this finding has no automatic fix.
        """
        if self.auto_fix is None:
            raise RuntimeError(
                f"{self.check} at {self.where}: no automatic fix; do it by hand: {self.fix}"
            )
        self.auto_fix(model, data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (without the callable)."""
        return {
            "check": self.check, "severity": self.severity, "where": self.where,
            "evidence": self.evidence, "why": self.why, "fix": self.fix,
            "fix_code": self.fix_code, "metrics": dict(self.metrics),
            "automatic": self.automatic,
        }
