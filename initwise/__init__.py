"""initwise: initialization, diagnosis and theory that make neural networks learn on hard data.

The public surface is re-exported here explicitly; ``tests/test_public_api.py`` snapshots it.

* :func:`init` -- data-aware initialization: measures real (dense or sparse) batches and sets
  every layer so the network learns fast; initial loss at the label prior.
* :func:`apply` -- structural, whole-model initialization by policy (``"auto"``, ``"critical"``,
  ``"torch"``, ``"xavier"``, ``"kaiming"``, ``"lecun"``, ``"orthogonal"``).
* :func:`doctor` -- runs a model on a batch and reports each pitfall with evidence and a fix.
* :func:`gain`, :func:`fans` -- variance-preserving gain of any activation; fans of any layer.
* :mod:`initwise.schemes` -- tensor-level schemes (torch's contract, ``generator=``).
* :mod:`initwise.theory` -- mean-field signal propagation for any activation (numpy/scipy).
* :mod:`initwise.data`, :class:`SparseLinear` -- reading sparse/tabular data; sparse layers.
"""

from initwise import data, graph, nn, schemes, theory
from initwise import doctor as doctor  # the package is callable: initwise.doctor(model, batch)
from initwise._version import __version__
from initwise.activations import ActivationSpec, resolve_activation
from initwise.data import Dataset
from initwise.datainit import init
from initwise.doctor import Diagnosis, Finding
from initwise.initreport import InitReport
from initwise.nn import SparseLinear
from initwise.policy import apply, register_policy
from initwise.schemes import Fans, fans
from initwise.schemes.gains import gain

__all__ = [
    "ActivationSpec",
    "Dataset",
    "Diagnosis",
    "Fans",
    "Finding",
    "InitReport",
    "SparseLinear",
    "__version__",
    "apply",
    "data",
    "doctor",
    "fans",
    "gain",
    "graph",
    "init",
    "nn",
    "register_policy",
    "resolve_activation",
    "schemes",
    "theory",
]
