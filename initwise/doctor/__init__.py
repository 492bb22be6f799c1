"""initwise.doctor: a checklist that says why a network will not learn, and fixes it.

``doctor(model, batch)`` probes one batch (hooks reduce each layer to per-unit sums), runs the
registered checks and returns a :class:`Diagnosis` of :class:`Finding` s with stable codes
(:data:`CHECK_CODES`). The model, its buffers, gradients, optimizer and the RNG are unchanged.

The package itself is callable, so ``initwise.doctor(model, batch)`` and
``initwise.doctor.register_check(...)`` both work without shadowing one another.
"""

import sys
import types
from typing import Any

from initwise.doctor.core import doctor
from initwise.doctor.diagnosis import SCHEMA_VERSION, Diagnosis, LayerStats, UnhealthyModelError
from initwise.doctor.findings import Finding
from initwise.doctor.registry import CHECK_CODES, PRESETS, CheckContext, register_check

__all__ = [
    "CHECK_CODES",
    "PRESETS",
    "SCHEMA_VERSION",
    "CheckContext",
    "Diagnosis",
    "Finding",
    "LayerStats",
    "UnhealthyModelError",
    "doctor",
    "register_check",
]


class _CallableModule(types.ModuleType):
    """``initwise.doctor(...)`` calls :func:`initwise.doctor.doctor`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Diagnosis:
        return doctor(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
