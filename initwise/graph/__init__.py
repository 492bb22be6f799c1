"""The data-flow graph of a model: which activation, norm and skip path follows each layer.

:func:`trace` runs one real forward (under ``no_grad``) and records leaf-module calls with
forward hooks and every torch function with a ``TorchFunctionMode``, linking them by the tensors
they pass; :func:`trace_structure` needs no inputs (torch.fx, else ``nn.Sequential`` adjacency).
Both return a :class:`ModelGraph` whose :class:`LayerNode` list is in execution order.

Definitions used for every layer ``L`` (a parametrized module, a norm layer, or a custom module
with its own parameters and no parametrized children):

* ``activation``: the first elementwise nonlinearity (module such as ``nn.ReLU`` or functional
  such as ``F.gelu``, ``torch.tanh``, ``x.relu()``) reached from ``L``'s output through
  non-layer ops and norms, before another layer.
* ``followed_by_norm``: a norm (module or functional) reached before any nonlinearity and
  before any residual add (in a pre- or post-norm Transformer the norm after ``x + f(x)``
  normalizes the stream, not ``f``'s output, so ``f`` is not "followed by a norm").
* ``residual``: ``L``'s output reaches (through elementwise ops, activations and norms) an
  ``add`` whose operands fork from a common tensor, with ``L`` on the operand whose own path
  holds more layers (the branch; an identity skip holds none): ``out = x + f(x)``.
* ``is_output``: ``L``'s output reaches the model output without passing through another layer.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from initwise.graph import trace
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> g = trace(net, torch.randn(3, 4))
    >>> [(n.name, n.activation, n.is_output) for n in g.layers]
    [('0', 'relu', False), ('2', None, True)]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from initwise.graph._kinds import (
    LAYER_KINDS,
    activation_of_module,
    aliases_of,
    layer_kind,
    layer_modules,
    norm_name,
)
from initwise.graph._model import LayerNode, ModelGraph, Node, build_graph, consumers_of
from initwise.graph._runtime import Recorder, flatten_tensors
from initwise.graph._structure import trace_structure
from initwise.modelio import call_model, extract_logits
from initwise.state import COPY_LIMIT, guarded

__all__ = [
    "LAYER_KINDS",
    "LayerNode",
    "ModelGraph",
    "Node",
    "activation_of_module",
    "aliases_of",
    "check_materialized",
    "consumers_of",
    "layer_modules",
    "layer_kind",
    "norm_name",
    "trace",
    "trace_structure",
]


def check_materialized(model: Any, *, then: str, meta_remedy: str) -> None:
    """Refuse a non-module, or a model with lazy (unmaterialized) or meta-device parameters.

    Args:
        model: the model.
        then: what the caller does once the model is materialized (``"trace"``, ``"call
            apply"``), for the lazy-parameter remedy.
        meta_remedy: the remedy for a meta-device parameter.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: naming the first lazy or meta parameter and the remedy.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}.")
    for name, p in model.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"model: parameter {name!r} belongs to a lazy module that is not materialized "
                f"(its shape is unknown); run one forward pass on a real batch first, then "
                f"{then}."
            )
        if p.device.type == "meta":
            raise ValueError(
                f"model: parameter {name!r} is on the meta device and holds no data; "
                f"{meta_remedy}"
            )


def _check_traceable(model: Any) -> None:
    check_materialized(
        model, then="trace",
        meta_remedy="call model.to_empty(device=...) and initialize it before tracing, or use "
                    "initwise.graph.trace_structure(model), which needs no data.")


# parameters larger than this are not copied by a trace, only checked by version counter
# (a no_grad forward does not write parameters; copying a 2^24 x 64 table costs 0.3 s per trace)
TRACE_COPY_LIMIT = COPY_LIMIT


def trace(model: nn.Module, inputs: Any) -> ModelGraph:
    """Trace one forward of ``model`` on ``inputs`` and derive each layer's data-flow facts.

    The forward runs under ``torch.no_grad()`` in the model's current train/eval mode. Afterwards
    the model is exactly as before: parameters and buffers (BatchNorm running statistics,
    ``num_batches_tracked``) bit-for-bit, train/eval modes, no hooks left, and the caller's global
    RNG state untouched (its state is restored after dropout drew from it; all of this is
    :func:`initwise.state.guarded`) -- also when the forward raises. Parameters with more than
    ``TRACE_COPY_LIMIT`` elements are not copied but checked by their version counter: a
    forward that writes one in place raises ``RuntimeError``. Memory: every intermediate
    tensor stays alive until the trace returns.

    Args:
        model: the model.
        inputs: anything :func:`initwise.modelio.call_model` accepts: a tensor (dense or
            torch sparse), a dict (``model(**inputs)``), a tuple (``model(*inputs)``).

    Returns:
        The :class:`ModelGraph` (``method="trace"``); ``output_source`` says which part of the
        output was taken as the logits (:func:`initwise.modelio.extract_logits`).

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or its output holds no tensor.
        ValueError: if the model has lazy (unmaterialized) or meta-device parameters.
        Exception: whatever the model's forward raises, unchanged.
    """
    _check_traceable(model)
    recorder = Recorder(model)
    # a no_grad forward cannot touch .grad: grads are not recorded (keeps the trace cheap)
    with guarded(model, restore="always", copy_limit=TRACE_COPY_LIMIT, grads=False):
        recorder.attach()
        try:
            with torch.no_grad(), recorder.mode():
                recorder.add_inputs(inputs)
                output = call_model(model, inputs)
            logits, source = extract_logits(output)
        finally:
            recorder.detach()
    graph = build_graph(
        recorder.nodes,
        recorder.producer.get(id(logits)),
        output_source=source,
        method="trace",
        all_layers=layer_modules(model),
        aliases=aliases_of(model),
        returned=[recorder.producer.get(id(t)) for t in flatten_tensors(output)],
    )
    recorder.keep.clear()
    return graph

