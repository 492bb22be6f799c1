"""`probe(model, layers)`: forward hooks that reduce each layer's output to per-unit sums.

One context manager for every measurement: the doctor's pass, each step of ``initwise.init``'s
calibration walk, a training monitor on the user's own forward. The hooks are registered on entry
and always removed on exit, also when the body raises. No activation tensor outlives its hook
(:class:`~initwise.measure.UnitStats`: memory O(#units)).

Optional parts, each asked for explicitly:

* ``inputs=``: record which layers consume one of these tensors (a pre-hook registered *first*,
  so it sees the model's own input before any input hook of the layer rewrites it);
* ``input_stats=``: per-layer statistics of what the layer reads, after its own input hooks
  (dense columns -> :class:`~initwise.measure.ColumnStats`, sparse or lookup inputs ->
  :class:`~initwise.measure.SparseInputStats`, never densified);
* ``stop_after=``: end the forward (raise :class:`StopForward`) once a layer has been called that
  many times, so measuring layer ``k`` costs a forward up to layer ``k`` (:func:`run_forward`
  catches it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initwise.graph import flatten_tensors
from initwise.measure.facts import LayerFacts
from initwise.measure.stats import ColumnStats, SparseInputStats, UnitStats, sparse_values

__all__ = ["LOOKUP_KINDS", "Probe", "StopForward", "probe", "run_forward"]

#: Layer kinds whose input is a lookup (indices): their input statistics are sparse.
LOOKUP_KINDS = ("embedding", "embedding_bag")


class StopForward(BaseException):
    """Raised by a probe hook to end a forward early (caught by :func:`run_forward`)."""


@dataclass
class Probe:
    """What one probe collected.

    Attributes:
        stats: ``{name: UnitStats}`` of each probed layer's output.
        order: layer names in the order of their first call.
        reads_input: names of the layers that consumed one of the ``inputs`` tensors.
        columns / sparse: per-layer input statistics (when ``input_stats`` asked for them).
        calls: per-layer calls in the current forward (reset by :func:`run_forward`).
    """

    stats: dict[str, UnitStats]
    order: list[str] = field(default_factory=list)
    reads_input: set[str] = field(default_factory=set)
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    sparse: dict[str, SparseInputStats] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def all_reduce(self) -> Probe:
        """All-reduce every statistic across ranks (no-op when not distributed)."""
        for s in self.stats.values():
            s.all_reduce()
        for c in self.columns.values():
            c.all_reduce()
        return self


def _first_input(args: tuple, kwargs: dict) -> Any:
    if args:
        return args[0]
    return next(iter(kwargs.values()), None)


def lookup_values(module: nn.Module, args: tuple, kwargs: dict) -> tuple[torch.Tensor, int]:
    """Stored values and row count of an ``Embedding`` / ``EmbeddingBag`` input (O(nnz))."""
    idx = _first_input(args, kwargs)
    if isinstance(module, nn.Embedding):
        return torch.ones(idx.numel(), dtype=torch.float64), idx.numel()
    offsets = args[1] if len(args) > 1 else kwargs.get("offsets")
    psw = args[2] if len(args) > 2 else kwargs.get("per_sample_weights")
    if idx.dim() == 2:
        rows, size = idx.shape[0], torch.full((idx.numel(),), idx.shape[1])
    else:
        rows = offsets.numel() if offsets is not None else 1
        bounds = torch.cat([offsets.cpu(), torch.tensor([idx.numel()])]) if offsets is not None \
            else torch.tensor([0, idx.numel()])
        size = torch.repeat_interleave(bounds.diff(), bounds.diff())
    vals = psw.detach().double().reshape(-1).cpu() if psw is not None \
        else torch.ones(idx.numel(), dtype=torch.float64)
    if getattr(module, "mode", "sum") == "mean":
        vals = vals / size.clamp_min(1).double()
    return vals, rows


def _stats_for(rec: LayerFacts, post: bool) -> UnitStats:
    act = rec.act
    thr = act.sat_threshold if act is not None and act.saturating else None
    fn = act.torch_fn if post and act is not None else None
    return UnitStats(thr, fn)


def _input_hook(p: Probe, rec: LayerFacts, columns: bool) -> Callable[..., None]:
    lookup = rec.kind in LOOKUP_KINDS

    def pre(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        x = _first_input(args, kwargs)
        sv = lookup_values(mod, args, kwargs) if lookup else sparse_values(x)
        if sv is not None:
            p.sparse.setdefault(rec.name, SparseInputStats()).update(*sv)
        elif columns and isinstance(x, torch.Tensor) and x.is_floating_point():
            p.columns.setdefault(rec.name, ColumnStats()).update(x, rec.unit_dim)

    return pre


@contextmanager
def probe(
    model: nn.Module,
    layers: Mapping[str, LayerFacts],
    *,
    inputs: Any = None,
    input_stats: Mapping[str, bool] | None = None,
    stop_after: Mapping[str, int] | None = None,
    post: bool = True,
    when: Callable[[], bool] | None = None,
) -> Iterator[Probe]:
    """Hook ``layers`` of ``model`` for the body; always remove the hooks.

    Args:
        model: the model (only its ``layers`` get hooks).
        layers: ``{name: LayerFacts}`` of the layers to probe.
        inputs: the model's inputs, to record which layers read them. Default None.
        input_stats: ``{name: columns}``: collect that layer's input statistics (sparse/lookup
            always; dense columns when ``columns`` is true). Default None.
        stop_after: ``{name: calls}``: raise :class:`StopForward` after that many calls.
        post: also keep the moments of ``phi(z)`` where the activation is known. Default True.
        when: a predicate evaluated at each layer call; calls for which it is false are not
            measured (a monitor measures training forwards only, not an evaluation forward run
            between two steps). Default None: every call.

    Yields:
        The :class:`Probe`, filled as the model runs.
    """
    p = Probe(stats={name: _stats_for(rec, post) for name, rec in layers.items()})
    input_ids = {id(t) for t in flatten_tensors(inputs)} if inputs is not None else set()
    handles: list[Any] = []

    def make_hooks(rec: LayerFacts) -> tuple[Callable[..., None], Callable[..., None]]:
        name, limit = rec.name, (stop_after or {}).get(rec.name)

        def sees_input(mod: nn.Module, args: tuple, kwargs: dict) -> None:
            if any(id(t) in input_ids for t in flatten_tensors((args, kwargs))):
                p.reads_input.add(name)

        def out_hook(mod: nn.Module, args: tuple, output: Any) -> None:
            if when is not None and not when():
                return
            if name not in p.calls:
                p.calls[name] = 0
            p.calls[name] += 1
            if name not in p.order:
                p.order.append(name)
            ys = flatten_tensors(output)
            y = ys[0] if ys else None
            if y is not None and y.is_floating_point() and y.layout == torch.strided:
                with torch.no_grad():
                    p.stats[name].update(y, rec.output_unit_dim(y))
            if limit is not None and p.calls[name] >= limit:
                raise StopForward

        return sees_input, out_hook

    try:
        for name, rec in layers.items():
            sees_input, out_hook = make_hooks(rec)
            if input_ids:
                handles.append(rec.module.register_forward_pre_hook(
                    sees_input, with_kwargs=True, prepend=True))
            if input_stats is not None and name in input_stats:
                handles.append(rec.module.register_forward_pre_hook(
                    _input_hook(p, rec, bool(input_stats[name])), with_kwargs=True))
            handles.append(rec.module.register_forward_hook(out_hook))
        yield p
    finally:
        for h in handles:
            h.remove()


def run_forward(p: Probe, fn: Callable[[], Any]) -> Any:
    """Run one forward ``fn()`` under a probe with ``stop_after``; ``None`` if it was stopped."""
    p.calls.clear()
    try:
        return fn()
    except StopForward:
        return None
