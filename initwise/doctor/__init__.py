"""initwise.doctor: a checklist that says why a network will not learn, and fixes it.

``doctor(model, batch)`` probes one batch (hooks reduce each layer to per-unit sums), runs the
registered checks (:class:`Check` values in a :class:`CheckRegistry`; :func:`run_checks` runs
them on measurements) and returns a :class:`Diagnosis` of :class:`Finding` s with stable codes
(:data:`CHECK_CODES`). The model, its buffers, gradients, optimizer and the RNG are unchanged.
Findings are plain data: an automatic fix is named by ``fix_id`` (:func:`register_fix`).

The package itself is callable, so ``initwise.doctor(model, batch)`` and
``initwise.doctor.register_check(...)`` both work without shadowing one another.
"""

import sys
import types
from typing import Any

from initwise.doctor.check import Check
from initwise.doctor.core import doctor
from initwise.doctor.diagnosis import SCHEMA_VERSION, Diagnosis, LayerStats, UnhealthyModelError
from initwise.doctor.findings import Finding
from initwise.doctor.fixes import INIT_FIX, get_fix, register_fix, unregister_fix
from initwise.doctor.registry import (
    CHECK_CODES,
    CHECKS,
    PRESETS,
    CheckRegistry,
    register_check,
    registered_checks,
    run_checks,
    unregister_check,
)

__all__ = [
    "CHECKS",
    "CHECK_CODES",
    "INIT_FIX",
    "PRESETS",
    "SCHEMA_VERSION",
    "Check",
    "CheckRegistry",
    "Diagnosis",
    "Finding",
    "LayerStats",
    "UnhealthyModelError",
    "doctor",
    "get_fix",
    "register_check",
    "register_fix",
    "registered_checks",
    "run_checks",
    "unregister_check",
    "unregister_fix",
]


class _CallableModule(types.ModuleType):
    """``initwise.doctor(...)`` calls :func:`initwise.doctor.doctor`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Diagnosis:
        return doctor(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
