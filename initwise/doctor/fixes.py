"""The fix registry: a finding names its automatic fix by id; this module runs it.

Findings are plain data (:class:`initwise.doctor.Finding` carries ``fix_id``, a string), so a
diagnosis read back from JSON can still be fixed. :func:`register_fix` adds a fix;
:meth:`initwise.doctor.Diagnosis.fix` runs each distinct ``fix_id`` once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "DATAINIT_SNIPPET", "INIT_FIX", "depth_fix", "get_fix", "has_fix", "register_fix",
    "registered_fixes", "unregister_fix",
]

#: A fix: ``fn(model, data) -> Any`` (``data`` is what the user passed to ``Diagnosis.fix``).
FixFn = Callable[[Any, Any], Any]

#: The id of the built-in fix: data-aware init (:func:`initwise.init`).
INIT_FIX = "initwise.init"

DATAINIT_SNIPPET = "import initwise\ninitwise.init(model, train_batches)  # data-aware init"

# The documented fix registry (fix id -> fn); the only mutable state of this module.
_FIXES: dict[str, FixFn] = {}


def register_fix(fix_id: str, fn: FixFn, overwrite: bool = False) -> None:
    """Register an automatic fix under ``fix_id``.

    Args:
        fix_id: a stable id, e.g. ``"myteam.rescale_head"``; findings name it in ``fix_id``.
        fn: ``fn(model, data) -> Any``, changing ``model`` in place.
        overwrite: replace a fix already registered under ``fix_id``. Defaults to False.

    Raises:
        TypeError: if ``fix_id`` is not a non-empty string or ``fn`` is not callable.
        ValueError: if ``fix_id`` is taken and ``overwrite`` is False.

    Example:
        >>> from initwise.doctor.fixes import register_fix, unregister_fix
        >>> register_fix("demo.noop", lambda model, data: None)
        >>> unregister_fix("demo.noop")
    """
    if not isinstance(fix_id, str) or not fix_id:
        raise TypeError(f"register_fix: fix_id must be a non-empty string, got {fix_id!r}.")
    if not callable(fn):
        raise TypeError(f"register_fix: fn for {fix_id!r} must be callable, got "
                        f"{type(fn).__name__}.")
    if fix_id in _FIXES and not overwrite:
        raise ValueError(f"register_fix: a fix is already registered as {fix_id!r}; pass "
                         f"overwrite=True to replace it, or unregister_fix({fix_id!r}) first.")
    _FIXES[fix_id] = fn


def unregister_fix(fix_id: str) -> None:
    """Remove the fix registered as ``fix_id``.

    Raises:
        KeyError: if no fix is registered under ``fix_id`` (the message lists the ids).
    """
    if fix_id not in _FIXES:
        raise KeyError(f"unregister_fix: no fix {fix_id!r}; registered: {sorted(_FIXES)}.")
    del _FIXES[fix_id]


def has_fix(fix_id: str | None) -> bool:
    """Whether ``fix_id`` names a registered fix (``None`` never does)."""
    return fix_id is not None and fix_id in _FIXES


def get_fix(fix_id: str) -> FixFn:
    """The fix registered as ``fix_id``.

    Raises:
        KeyError: naming ``fix_id``, the registered ids and how to register one.
    """
    try:
        return _FIXES[fix_id]
    except KeyError:
        raise KeyError(f"get_fix: no fix {fix_id!r} is registered (registered: "
                       f"{sorted(_FIXES)}); add it with initwise.doctor.register_fix"
                       f"({fix_id!r}, fn).") from None


def registered_fixes() -> list[str]:
    """The registered fix ids, sorted."""
    return sorted(_FIXES)


def datainit_fix(model: Any, data: Any) -> Any:
    """The ``"initwise.init"`` fix: re-initialize with :func:`initwise.datainit.init` on data.

    Data-aware init standardizes what the first layer sees, calibrates every layer's scale on
    real batches (effective fan-in of sparse inputs included), revives dead units and sets the
    output bias to the label prior -- one call fixes all findings that carry it.

    ``initwise.datainit`` is imported inside this function: it is part of the documented lazy
    public surface, and importing the doctor must not import the init machinery.

    Raises:
        ValueError: if ``data`` is ``None`` (the init needs batches).
    """
    if data is None:
        raise ValueError(
            "Diagnosis.fix: the data-aware init needs batches; call "
            "diagnosis.fix(model, data) with the training batch(es)."
        )
    from initwise.datainit import init

    return init(model, data)


register_fix(INIT_FIX, datainit_fix)


#: Hidden activations whose deep chains no initialization can make trainable: outputs with a
#: large common mode (mean 1/2) and slope <= 1/4 (mean-field trainable depth ~2-3 for any
#: sigma_w, initwise.theory.max_trainable_depth).
NOT_INIT_FIXABLE = frozenset({"sigmoid", "hardsigmoid"})
ARCH_NOTE = (" No initialization makes a deep chain of sigmoid units trainable: use tanh/ReLU "
             "hidden activations or normalization layers.")


def depth_fix(activations: set[str | None]) -> tuple[str | None, str]:
    """The automatic fix id for a depth-related finding given the chain's activations.

    For tanh-like chains the default :func:`initwise.datainit.init` is a sound depth fix: it
    zeroes the biases and calibrates every layer to unit pre-activation RMS, i.e. q* = 1,
    sigma_w ~ 1.59 for tanh, where chi_1 ~ 1.18 (just on the chaotic side of the edge of
    chaos), xi_c ~ 14 and the mean-field trainable depth is ~83 (:mod:`initwise.theory`); the
    20-layer ``sigma_b = 1`` zoo case (trainable depth ~6.5) is fixed by it. Its head is shrunk
    to the loss budget, which ``grad.vanishing`` no longer mistakes for depth decay
    (``check_grad_scale``).

    Args:
        activations: the activation names of the chain (``None`` for unknown).

    Returns:
        ``(INIT_FIX, "")``, or ``(None, note)`` when the activation makes it unfixable by init.
    """
    if activations & NOT_INIT_FIXABLE:
        return None, ARCH_NOTE
    return INIT_FIX, ""
