"""initwise: initialization, diagnosis and theory that make neural networks learn on hard data.

The public surface is re-exported here explicitly (``__all__``; ``tests/test_public_api.py``
snapshots it). Names resolve lazily (PEP 562), so ``import initwise.theory`` stays free of torch
and ``initwise --help`` starts fast; ``from initwise import init`` works as usual.

* :func:`init` -- data-aware initialization: measures real (dense or sparse) batches and sets
  every layer so the network learns fast; initial loss at the label prior.
* :func:`apply` -- structural, whole-model initialization by policy (``"auto"``, ``"critical"``,
  ``"torch"``, ``"xavier"``, ``"kaiming"``, ``"lecun"``, ``"orthogonal"``).
* :func:`doctor` -- runs a model on a batch and reports each pitfall with evidence and a fix.
* :func:`gain`, :func:`fans` -- variance-preserving gain of any activation; fans of any layer.
* :class:`Monitor` -- the doctor's checks while training runs (stalls, dying units, bad
  gradients and updates, divergence), with dead-unit repair in place; Lightning and Hugging
  Face adapters in :mod:`initwise.monitor.lightning` / :mod:`initwise.monitor.hf`.
* :func:`register_activation` / :func:`activation_facts` and :func:`register_layer` /
  :func:`layer_type` -- the activation and layer registries every component consults.
* :mod:`initwise.schemes` -- tensor-level schemes (torch's contract, ``generator=``).
* :mod:`initwise.theory` -- mean-field signal propagation for any activation (numpy/scipy).
* :mod:`initwise.measure` -- the measurement core (layer facts, probes, streaming statistics,
  :class:`Measurements`) that init, the doctor and training share; :mod:`initwise.state` --
  the one guard (capture/restore a model exactly).
* :class:`Monitor` -- the doctor's checks while training runs (stalls, dying units, bad
  gradients and updates, divergence), with dead-unit repair in place; Lightning and Hugging
  Face adapters in :mod:`initwise.monitor.lightning` / :mod:`initwise.monitor.hf`.
* :func:`register_activation`, :func:`register_layer`, :func:`register_check`,
  :func:`register_fix` -- the extension points (each refuses a clash naming the owner).
* :mod:`initwise.data`, :class:`SparseLinear` -- reading sparse/tabular data; sparse layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initwise._version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names resolve in __getattr__
    from initwise import data, doctor, graph, measure, monitor, nn, schemes, state, theory
    from initwise.activations import (
        ActivationFacts,
        ActivationSpec,
        activation_facts,
        register_activation,
        resolve_activation,
        unregister_activation,
    )
    from initwise.autoinit import init
    from initwise.data import Dataset
    from initwise.doctor import (
        Check,
        CheckRegistry,
        Diagnosis,
        Finding,
        register_check,
        register_fix,
        run_checks,
        unregister_check,
    )
    from initwise.initreport import InitReport
    from initwise.layers import layer_type, register_layer, unregister_layer
    from initwise.measure import Measurements
    from initwise.monitor import Monitor
    from initwise.nn import SparseLinear
    from initwise.policy import apply, register_policy
    from initwise.schemes import Fans, fans
    from initwise.schemes.gains import gain

_SUBPACKAGES = (
    "data", "doctor", "graph", "measure", "monitor", "nn", "schemes", "state", "theory",
)
_EXPORTS = {
    "ActivationFacts": "initwise.activations",
    "ActivationSpec": "initwise.activations",
    "Check": "initwise.doctor",
    "CheckRegistry": "initwise.doctor",
    "Dataset": "initwise.data",
    "Diagnosis": "initwise.doctor",
    "Fans": "initwise.schemes",
    "Finding": "initwise.doctor",
    "InitReport": "initwise.initreport",
    "Measurements": "initwise.measure",
    "Monitor": "initwise.monitor",
    "SparseLinear": "initwise.nn",
    "activation_facts": "initwise.activations",
    "apply": "initwise.policy",
    "fans": "initwise.schemes",
    "gain": "initwise.schemes.gains",
    "init": "initwise.autoinit",
    "layer_type": "initwise.layers",
    "register_activation": "initwise.activations",
    "register_check": "initwise.doctor",
    "register_fix": "initwise.doctor",
    "register_layer": "initwise.layers",
    "register_policy": "initwise.policy",
    "resolve_activation": "initwise.activations",
    "run_checks": "initwise.doctor",
    "unregister_activation": "initwise.activations",
    "unregister_check": "initwise.doctor",
    "unregister_layer": "initwise.layers",
}

__all__ = [
    "ActivationFacts",
    "ActivationSpec",
    "Check",
    "CheckRegistry",
    "Dataset",
    "Diagnosis",
    "Fans",
    "Finding",
    "InitReport",
    "Measurements",
    "Monitor",
    "SparseLinear",
    "__version__",
    "activation_facts",
    "apply",
    "data",
    "doctor",
    "fans",
    "gain",
    "graph",
    "init",
    "layer_type",
    "measure",
    "monitor",
    "nn",
    "register_activation",
    "register_check",
    "register_fix",
    "register_layer",
    "register_policy",
    "resolve_activation",
    "run_checks",
    "schemes",
    "state",
    "theory",
    "unregister_activation",
    "unregister_check",
    "unregister_layer",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"initwise.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
