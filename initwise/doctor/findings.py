"""`Finding`: one pitfall the doctor found; plain data, rendered by ``initwise.report``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from initwise.doctor.fixes import get_fix, has_fix
from initwise.jsonio import json_safe, restore_nonfinite

__all__ = ["SEVERITIES", "Finding"]

SEVERITIES = ("error", "warning", "info")


@dataclass(kw_only=True)
class Finding:
    """One pitfall: what (``check``), how bad, where, the measured evidence, why, and the fix.

    Built with keywords only; plain data (the automatic fix is named by ``fix_id`` and resolved
    by :mod:`initwise.doctor.fixes`), so it survives :meth:`to_dict` / :meth:`from_dict`.

    Attributes:
        check: stable code such as ``"units.dead"`` (never renamed).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        where: a module's qualified name, or ``"data"``, ``"loss"``, ``"model"``.
        evidence: the measured numbers with the expected range, as a sentence.
        why: one or two sentences of theory, with a reference.
        fix: what to do, in words.
        fix_code: a copyable code snippet ("" if none).
        metrics: the measured numbers as a dict (for JSON and plots).
        fix_id: the id of a registered automatic fix (``"initwise.init"``), or ``None``.
        step: the training step at which a monitor first saw it (``None`` at init).

    Example:
        >>> f = Finding(check="units.dead", severity="warning", where="net.0",
        ...             evidence="70% of units dead; expected < 60%.", why="...", fix="...",
        ...             fix_id="initwise.init")
        >>> f.automatic, Finding.from_dict(f.to_dict()) == f
        (True, True)
    """

    check: str
    severity: str
    where: str
    evidence: str
    why: str
    fix: str
    fix_code: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    fix_id: str | None = None
    step: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding.severity: {self.severity!r} is not one of {SEVERITIES}."
            )

    @property
    def automatic(self) -> bool:
        """Whether :meth:`apply` can fix this finding (its ``fix_id`` is registered)."""
        return has_fix(self.fix_id)

    def apply(self, model: Any, data: Any = None) -> Any:
        """Apply the automatic fix to ``model`` (``data`` where the fix needs batches).

        Returns:
            What the fix returns (an InitReport for ``"initwise.init"``).

        Raises:
            RuntimeError: if this finding has no automatic fix (or its fix is not registered).
        """
        if not self.automatic:
            extra = f" (fix {self.fix_id!r} is not registered)" if self.fix_id else ""
            raise RuntimeError(
                f"{self.check} at {self.where}: no automatic fix{extra}; do it by hand: "
                f"{self.fix}"
            )
        return get_fix(self.fix_id)(model, data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (:func:`initwise.jsonio.json_safe`), with ``automatic`` added."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["metrics"] = dict(self.metrics)
        d["automatic"] = self.automatic
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """Read a :meth:`to_dict` result back (``automatic`` is derived, so ignored).

        Raises:
            ValueError: for keys a Finding does not have (named), or a missing required key.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - {"automatic"}
        if unknown:
            raise ValueError(f"Finding.from_dict: unknown key(s) {sorted(unknown)}; a Finding "
                             f"has {sorted(names)}.")
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["metrics"] = restore_nonfinite(dict(kwargs.get("metrics") or {}))
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"Finding.from_dict: {exc}") from None
