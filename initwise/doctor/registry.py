"""Check registries: which check owns which finding code, and running the checks.

A :class:`CheckRegistry` holds :class:`~initwise.doctor.check.Check` values and records the
owner of every finding code: registering a check whose code another check owns is refused,
naming the owner, unless ``overwrite=True`` (then the new check owns that code and the old
owner's findings with it are dropped; the old owner keeps its other codes, and gets the code
back when the new check is unregistered). :data:`CHECKS` is the documented default registry
(the built-ins, plus what :func:`register_check` adds); :meth:`CheckRegistry.builtin` gives a
fresh copy of the built-ins, so a run can carry its own registry (``run_checks(m, checks=...)``)
instead of changing the global one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from initwise.doctor.check import NEEDS, PHASES, PRESETS, Check, CheckFn
from initwise.doctor.checks_data import DATA_CHECKS
from initwise.doctor.checks_grad import GRAD_CHECKS
from initwise.doctor.checks_signal import SIGNAL_CHECKS
from initwise.doctor.findings import Finding

__all__ = [
    "BUILTIN_CHECKS", "CHECKS", "CHECK_CODES", "PRESETS", "Check",
    "CheckRegistry", "register_check", "registered_checks", "run_checks", "unregister_check",
]

#: The stable vocabulary of the built-in checks' codes (add more, never rename).
CHECK_CODES = (
    "data.nonfinite", "data.unscaled", "data.uncentered", "data.sparse_fan_in",
    "data.constant_feature", "data.label_imbalance",
    "signal.vanishing", "signal.exploding", "signal.correlation_collapse",
    "units.dead", "units.saturated",
    "loss.nonfinite", "loss.init_mismatch", "output.logit_scale",
    "grad.vanishing", "grad.exploding", "grad.none",
    "update.ratio", "theory.depth", "dtype.underflow",
    # additions (never renamed)
    "update.missing", "model.nonfinite_weight",
)

#: Every built-in check, in run order (data, forward, backward/step).
BUILTIN_CHECKS: tuple[Check, ...] = DATA_CHECKS + SIGNAL_CHECKS + GRAD_CHECKS


class CheckRegistry:
    """An ordered set of checks with one owner per finding code.

    Args:
        checks: checks to register, in order (clashes refused as in :meth:`register`).

    Example:
        >>> from initwise.doctor.registry import Check, CheckRegistry
        >>> reg = CheckRegistry.builtin()
        >>> reg.owner("signal.exploding")
        'initwise.signal_scale'
        >>> with reg.registered(Check(name="team.w", codes=("team.w",), fn=lambda m: [])):
        ...     "team.w" in reg
        True
        >>> "team.w" in reg
        False
    """

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        for c in checks:
            self.register(c)

    @classmethod
    def builtin(cls) -> CheckRegistry:
        """A new registry holding initwise's built-in checks (:data:`BUILTIN_CHECKS`)."""
        return cls(BUILTIN_CHECKS)

    def copy(self) -> CheckRegistry:
        """A new registry with the same checks and owners (changing one leaves the other)."""
        new = CheckRegistry()
        new._checks = dict(self._checks)
        return new

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(list(self._checks.values()))

    def __len__(self) -> int:
        return len(self._checks)

    def __repr__(self) -> str:
        return f"CheckRegistry({list(self._checks)})"

    def get(self, name: str) -> Check:
        """The check registered as ``name``.

        Raises:
            KeyError: naming ``name`` and the registered names.
        """
        if name not in self._checks:
            raise KeyError(f"CheckRegistry: no check named {name!r}; registered: "
                           f"{list(self._checks)}.")
        return self._checks[name]

    def owner(self, code: str) -> str | None:
        """The name of the check that owns ``code`` (the last registered that declares it)."""
        for c in reversed(self._checks.values()):
            if code in c.codes:
                return c.name
        return None

    def codes(self) -> dict[str, str]:
        """Every owned code -> the name of its owner check."""
        return {code: c.name for c in self._checks.values() for code in c.codes}

    def register(self, check: Check, overwrite: bool = False) -> Check:
        """Add ``check``; with ``overwrite=True`` it replaces a same-named check and takes
        over the codes it declares from their owners (their other codes stay theirs).

        Args:
            check: the check.
            overwrite: allow replacing a same-named check / taking owned codes. Defaults to
                False.

        Returns:
            ``check``.

        Raises:
            TypeError: if ``check`` is not a :class:`Check`.
            ValueError: if the name is taken, or a code is owned by another check, and
                ``overwrite`` is False (the message names the owner and both remedies).
        """
        if not isinstance(check, Check):
            raise TypeError(f"CheckRegistry.register: expected a Check, got "
                            f"{type(check).__name__}; wrap a function with Check(name=, "
                            f"codes=, fn=) or use register_check(code, fn).")
        if not overwrite:
            if check.name in self._checks:
                raise ValueError(
                    f"CheckRegistry.register: a check named {check.name!r} is already "
                    f"registered; pass overwrite=True to replace it, or unregister "
                    f"{check.name!r} first.")
            for code in check.codes:
                owner = self.owner(code)
                if owner is not None:
                    raise ValueError(
                        f"CheckRegistry.register: code {code!r} of check {check.name!r} is "
                        f"owned by check {owner!r}; pass overwrite=True to replace {owner!r} "
                        f"for {code!r} (its other codes stay), or unregister {owner!r} first.")
        self._checks.pop(check.name, None)
        self._checks[check.name] = check
        return check

    def unregister(self, name: str) -> Check:
        """Remove the check ``name``; codes it took over go back to their previous owners.

        Returns:
            The removed check.

        Raises:
            KeyError: naming ``name`` and the registered names.
        """
        check = self.get(name)
        del self._checks[name]
        return check

    @contextmanager
    def registered(self, *checks: Check, overwrite: bool = False) -> Iterator[CheckRegistry]:
        """Register ``checks`` for the duration of a ``with`` block; always unregistered after
        (also on error), restoring what they replaced.

        Yields:
            This registry.
        """
        saved = dict(self._checks)
        try:
            for c in checks:
                self.register(c, overwrite=overwrite)
            yield self
        finally:
            self._checks = saved

    def checks_for(self, *, preset: str | None = None, phase: str | None = None,
                   needs_available: Iterable[str] | None = None) -> list[Check]:
        """The checks that run under ``preset`` in ``phase`` given the measurements available.

        Args:
            preset: run checks whose preset is this one or cheaper (``None``: all).
            phase: ``"init"`` or ``"train"`` (``None``: any).
            needs_available: the measurements taken (``None``: do not filter on needs).

        Returns:
            The checks, in registration order.

        Raises:
            ValueError: for an unknown preset, phase or need (listing the valid values).
        """
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"checks_for: unknown preset {preset!r}; valid: {PRESETS}.")
        if phase is not None and phase not in PHASES:
            raise ValueError(f"checks_for: unknown phase {phase!r}; valid: {PHASES}.")
        have = None if needs_available is None else frozenset(needs_available)
        if have is not None and not have <= set(NEEDS):
            raise ValueError(f"checks_for: unknown needs {sorted(have - set(NEEDS))}; "
                             f"valid: {NEEDS}.")
        rank = PRESETS.index(preset) if preset is not None else len(PRESETS)
        return [c for c in self._checks.values()
                if PRESETS.index(c.preset) <= rank
                and (phase is None or phase in c.phase)
                and (have is None or c.needs <= have)]

    def run(self, m: Any, *, preset: str = "standard", phase: str = "init",
            needs_available: Iterable[str] | None = None) -> list[Finding]:
        """Run the selected checks (:meth:`checks_for`) on ``m``; see :func:`run_checks`."""
        owners = self.codes()
        findings: list[Finding] = []
        for c in self.checks_for(preset=preset, phase=phase, needs_available=needs_available):
            findings.extend(f for f in c.run(m) if owners.get(f.check) == c.name)
        return findings


#: The default registry: the built-in checks plus what :func:`register_check` adds
#: (documented global state; prefer ``run_checks(m, checks=...)`` for per-run checks).
CHECKS = CheckRegistry.builtin()


def run_checks(m: Any, checks: CheckRegistry | Iterable[Check] | Check | None = None, *,
               preset: str = "standard", phase: str = "init") -> list[Finding]:
    """Run checks on the measurements ``m`` and verify each finding's code.

    Args:
        m: the measurements (a :class:`~initwise.measure.Measurements`). If it
            has a ``needs`` attribute (the measurements taken), checks needing more are skipped.
        checks: a :class:`CheckRegistry`, one :class:`Check` or an iterable of them (a per-run
            registry: clashing codes are refused), or ``None`` for the default :data:`CHECKS`.
        preset: run checks of this preset or cheaper. Defaults to ``"standard"``.
        phase: ``"init"`` or ``"train"``. Defaults to ``"init"``.

    Returns:
        The findings, in check order. A finding whose code was taken over by another check
        (``overwrite=True``) is dropped.

    Raises:
        ValueError: if a check emits a code it does not declare (names the check), or for an
            unknown preset/phase.
        TypeError: if a check yields something that is not a Finding.
    """
    if checks is None:
        registry = CHECKS
    elif isinstance(checks, CheckRegistry):
        registry = checks
    elif isinstance(checks, Check):
        registry = CheckRegistry([checks])
    else:
        registry = CheckRegistry(checks)
    return registry.run(m, preset=preset, phase=phase,
                        needs_available=getattr(m, "needs", None))


def register_check(code: str, fn: CheckFn, overwrite: bool = False, *,
                   preset: str = "quick") -> Check:
    """Register a one-code check in the default registry (runs in ``preset`` and costlier).

    The check is named ``code``. With ``overwrite=True`` it replaces only the owner of
    ``code`` for that code; the owner's other codes keep running. :func:`unregister_check`
    (``code``) removes it and gives the code back.

    Args:
        code: the finding code the check reports (e.g. ``"myteam.attention_entropy"``).
        fn: ``fn(m) -> Iterable[Finding]``, ``m`` a :class:`~initwise.measure.Measurements`.
        overwrite: take ``code`` over from the check that owns it. Defaults to False.
        preset: the cheapest preset that runs the check. Defaults to ``"quick"``.

    Returns:
        The registered :class:`Check`.

    Raises:
        ValueError: if ``code`` is owned and ``overwrite`` is False (naming the owner), or
            ``preset`` is unknown.
        TypeError: if ``fn`` is not callable or ``code`` not a non-empty string.

    Example:
        >>> from initwise.doctor import register_check, unregister_check
        >>> _ = register_check("demo.none", lambda m: [])
        >>> _ = unregister_check("demo.none")
    """
    if not isinstance(code, str) or not code:
        raise TypeError(f"register_check: code must be a non-empty string, got {code!r}.")
    if not callable(fn):
        raise TypeError(f"register_check: fn for {code!r} must be callable, got {type(fn)}.")
    if preset not in PRESETS:
        raise ValueError(f"register_check: unknown preset {preset!r}; valid: {PRESETS}.")
    needs = {"quick": {"forward"}, "standard": {"forward", "grad"},
             "full": {"forward", "grad", "update"}}[preset]
    return CHECKS.register(Check(name=code, codes=(code,), fn=fn, preset=preset, needs=needs),
                           overwrite=overwrite)


def unregister_check(name: str) -> Check:
    """Remove check ``name`` (a code given to :func:`register_check`) from :data:`CHECKS`.

    Codes it had taken over go back to their previous owners (the built-ins).

    Raises:
        KeyError: naming ``name`` and the registered names.
    """
    return CHECKS.unregister(name)


@contextmanager
def registered_checks(*checks: Check, overwrite: bool = False) -> Iterator[CheckRegistry]:
    """Register ``checks`` in :data:`CHECKS` for a ``with`` block, always removed after.

    Yields:
        :data:`CHECKS`.
    """
    with CHECKS.registered(*checks, overwrite=overwrite) as reg:
        yield reg
