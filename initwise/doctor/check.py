"""`Check`: one doctor check as a value; it reads a :class:`~initwise.measure.Measurements`.

A check is a frozen record: its ``name``, the finding ``codes`` it may emit, what it ``needs``
measured, the ``phase`` it can run in, the cheapest ``preset`` that runs it, and ``fn(m) ->
Iterable[Finding]``. ``fn`` reads measurements only (never the batch's activations, which are
not kept) and must not change the model. Registries of checks live in
:mod:`initwise.doctor.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from initwise.doctor.findings import Finding
from initwise.measure import NEEDS, Measurements

__all__ = ["NEEDS", "PHASES", "PRESETS", "Check", "CheckFn"]

#: Presets, cheapest first.
PRESETS = ("quick", "standard", "full")
#: ``"init"``: measurements of a model at initialization; ``"train"``: measurements taken
#: during training (``.grad`` already filled, the optimizer's real step).
PHASES = ("init", "train")

CheckFn = Callable[[Measurements], Iterable[Finding]]


def _names(value: Any, valid: tuple[str, ...], what: str, name: str) -> frozenset[str]:
    items = frozenset([value] if isinstance(value, str) else value)
    bad = sorted(items - set(valid))
    if bad:
        raise ValueError(f"Check {name!r}: unknown {what} {bad}; valid: {valid}.")
    return items


@dataclass(frozen=True, kw_only=True)
class Check:
    """One check: which codes it may emit, what it needs, when it can run, and its function.

    Attributes:
        name: unique name in a registry (built-ins are ``"initwise.<what>"``).
        codes: the finding codes ``fn`` may emit (a finding with another code is an error).
        fn: ``fn(m) -> Iterable[Finding]``, ``m`` the
            :class:`~initwise.measure.Measurements`.
        needs: a subset of :data:`NEEDS`. Defaults to ``{"forward"}``.
        phase: a subset of :data:`PHASES`: ``"train"`` when the check is meaningful on
            measurements taken during training. Defaults to ``{"init"}``.
        preset: the cheapest preset that runs it (:data:`PRESETS`). Defaults to ``"quick"``.

    Raises:
        TypeError: for a non-callable ``fn`` or an empty/non-string name or code.
        ValueError: for unknown needs, phases or preset.

    Example:
        >>> c = Check(name="team.width", codes=("team.width",), fn=lambda m: [])
        >>> c.preset, sorted(c.needs), sorted(c.phase)
        ('quick', ['forward'], ['init'])
    """

    name: str
    codes: tuple[str, ...]
    fn: CheckFn = field(compare=False)
    needs: frozenset[str] = frozenset({"forward"})
    phase: frozenset[str] = frozenset({"init"})
    preset: str = "quick"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Check: name must be a non-empty string, got {self.name!r}.")
        codes = (self.codes,) if isinstance(self.codes, str) else tuple(self.codes)
        if not codes or not all(isinstance(c, str) and c for c in codes):
            raise TypeError(f"Check {self.name!r}: codes must be non-empty strings, got "
                            f"{self.codes!r}.")
        if not callable(self.fn):
            raise TypeError(f"Check {self.name!r}: fn must be callable, got "
                            f"{type(self.fn).__name__}.")
        if self.preset not in PRESETS:
            raise ValueError(f"Check {self.name!r}: unknown preset {self.preset!r}; valid: "
                             f"{PRESETS}.")
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "needs", _names(self.needs, NEEDS, "needs", self.name))
        object.__setattr__(self, "phase", _names(self.phase, PHASES, "phase", self.name))
        if not self.phase:
            raise ValueError(f"Check {self.name!r}: phase must name at least one of {PHASES}.")

    def run(self, m: Measurements) -> list[Finding]:
        """Run ``fn`` on the measurements ``m`` and verify every finding.

        Returns:
            The findings.

        Raises:
            TypeError: if ``fn`` yields something that is not a :class:`Finding`.
            ValueError: if a finding's code is not one of :attr:`codes` (names the check).
        """
        out = []
        for f in self.fn(m) or ():
            if not isinstance(f, Finding):
                raise TypeError(f"check {self.name!r} yielded a {type(f).__name__}, not a "
                                f"Finding.")
            if f.check not in self.codes:
                raise ValueError(
                    f"check {self.name!r} emitted a finding with code {f.check!r}, which it "
                    f"does not declare (codes={self.codes}); add the code to its Check(codes=...)"
                    f" or emit one of those."
                )
            out.append(f)
        return out
