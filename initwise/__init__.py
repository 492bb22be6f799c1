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
* :func:`register_activation` / :func:`activation_facts` and :func:`register_layer` /
  :func:`layer_type` -- the activation and layer registries every component consults.
* :mod:`initwise.schemes` -- tensor-level schemes (torch's contract, ``generator=``).
* :mod:`initwise.theory` -- mean-field signal propagation for any activation (numpy/scipy).
* :mod:`initwise.data`, :class:`SparseLinear` -- reading sparse/tabular data; sparse layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initwise._version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names resolve in __getattr__
    from initwise import data, doctor, graph, nn, schemes, theory
    from initwise.activations import (
        ActivationFacts,
        ActivationSpec,
        activation_facts,
        register_activation,
        resolve_activation,
        unregister_activation,
    )
    from initwise.data import Dataset
    from initwise.datainit import init
    from initwise.doctor import Diagnosis, Finding
    from initwise.initreport import InitReport
    from initwise.layers import layer_type, register_layer, unregister_layer
    from initwise.nn import SparseLinear
    from initwise.policy import apply, register_policy
    from initwise.schemes import Fans, fans
    from initwise.schemes.gains import gain

_SUBPACKAGES = ("data", "doctor", "graph", "nn", "schemes", "theory")
_EXPORTS = {
    "ActivationFacts": "initwise.activations",
    "ActivationSpec": "initwise.activations",
    "Dataset": "initwise.data",
    "Diagnosis": "initwise.doctor",
    "Fans": "initwise.schemes",
    "Finding": "initwise.doctor",
    "InitReport": "initwise.initreport",
    "SparseLinear": "initwise.nn",
    "activation_facts": "initwise.activations",
    "apply": "initwise.policy",
    "fans": "initwise.schemes",
    "gain": "initwise.schemes.gains",
    "init": "initwise.datainit",
    "layer_type": "initwise.layers",
    "register_activation": "initwise.activations",
    "register_layer": "initwise.layers",
    "register_policy": "initwise.policy",
    "resolve_activation": "initwise.activations",
    "unregister_activation": "initwise.activations",
    "unregister_layer": "initwise.layers",
}

__all__ = [
    "ActivationFacts",
    "ActivationSpec",
    "Dataset",
    "Diagnosis",
    "Fans",
    "Finding",
    "InitReport",
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
    "nn",
    "register_activation",
    "register_layer",
    "register_policy",
    "resolve_activation",
    "schemes",
    "theory",
    "unregister_activation",
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
