"""Dead-unit repair in place: fresh incoming weights, zeroed outgoing weights, same function.

:func:`repair_units` revives the dead or dormant units of a model while it trains, without a
restart. For each selected unit ``j`` of a layer ``L`` (a row of a ``Linear`` / ``SparseLinear``
weight, an output channel of a ``ConvNd``) and each consumer layer ``C`` that reads ``L``'s
output:

1. ``L``'s incoming weights of ``j`` are redrawn, ``w ~ N(0, s^2)``, at the layer's current
   scale ``s`` (:attr:`Repair.scale`), and its bias is set to ``b = -w . mu_x`` (``mu_x``: the
   mean of ``L``'s input over the recent rows), so the new pre-activation has mean 0 over those
   rows and a ReLU unit is active on about half of them (exactly half when ``w . x`` is
   symmetric about its mean);
2. ``C``'s weights that read unit ``j`` (input columns of a Linear, input channels of a Conv)
   are zeroed and ``C``'s bias absorbs the unit's old mean contribution,
   ``b_C += W_C[:, j] * E[phi(z_j)]`` (summed over the kernel taps of a Conv: exact away from
   zero-padded borders; over the ``H*W`` columns a flatten makes of a channel), so the network's
   function does not change at the repair step -- exactly for a dead unit (``phi(z_j) = 0``) and
   for a constant one, to first order for a dormant unit (its output varies by little);
3. the optimizer state of exactly those rows and columns (and bias entries) is reset: Adam /
   AdamW ``exp_avg`` zeroed, ``exp_avg_sq`` and ``max_exp_avg_sq`` set to the mean of the
   tensor's other entries (or zeroed, :attr:`Repair.second_moment`); SGD ``momentum_buffer``
   zeroed; RMSprop ``momentum_buffer``, ``grad_avg`` zeroed, ``square_avg`` as Adam's second
   moment. Without a reset "the Adam updates will immediately create dead neurons again"
   (ReDo's PyTorch port).

Unit statistics. ``stats`` holds the per-unit moments of each layer's *pre-activation*
(:class:`~initwise.measure.UnitStats`: mean, variance, min, max), not of ``phi(z)``; the mean
``E[phi(z)]`` and ReDo's ``E|phi(z)|`` per unit are estimated by 16-point Gauss-Hermite
quadrature on ``N(mean, var)`` with the nodes clamped to the observed ``[zmin, zmax]``. The
estimate is exact for a dead ReLU unit (every node clamps to ``<= 0``) and for a constant unit
(variance 0), the two cases the function-preservation guarantee is stated for.

What is skipped, with the reason in a :class:`RepairEvent` whose ``units`` is empty: a layer whose
output feeds a norm or a residual add, an output layer, a layer called more than once per
forward, a consumer that merges several inputs (concatenation, sum) or is not a Linear /
SparseLinear / groups=1 Conv, a model whose facts carry no graph (``structural_facts``).

References:
    Sokar, Agarwal, Castro, Evci, "The Dormant Neuron Phenomenon in Deep Reinforcement
    Learning" (ReDo), ICML 2023, arXiv:2302.12902. Dohare, Hernandez-Garcia, Lan, Rahman,
    Mahmood, Sutton, "Loss of plasticity in deep continual learning" (Continual Backprop),
    Nature 632, 2024, arXiv:2306.13812.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from initwise.activations import ActivationFacts
from initwise.layers import layer_type
from initwise.measure import ColumnStats, LayerFacts, UnitStats
from initwise.state import guarded

__all__ = ["Repair", "RepairEvent", "dormant_units", "repair_units", "unit_scores"]

#: Valid values of :attr:`Repair.scale`.
SCALES = ("data", "fan_in")
#: Valid values of :attr:`Repair.second_moment`.
SECOND_MOMENT_RESETS = ("zero", "mean")
#: Optimizer state entries that are second moments (``Repair.second_moment`` applies).
SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg")

#: Optimizer state entries reset per unit, by optimizer class name (subclasses match).
OPTIMIZER_STATE: dict[str, tuple[str, ...]] = {
    "Adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "SGD": ("momentum_buffer",),
    "RMSprop": ("square_avg", "momentum_buffer", "grad_avg"),
}

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(16)
_WEIGHTS = _WEIGHTS / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class Repair:
    """The repair policy: which units, how many, how often, at what scale.

    Attributes:
        tau: dormant threshold on ReDo's score ``s_j = E|phi(z_j)| / mean_k E|phi(z_k)|``
            (a unit's mean absolute activation over the layer's mean); a unit with ``s_j <=
            tau`` is repaired. Default 0.0: only units that are exactly dead (ReLU family: never
            positive on any recent row; otherwise ``phi(z_j) = 0`` on every row). ReDo uses 0.1
            (0.025 in one setting).
        max_fraction: at most ``max(1, floor(max_fraction * units))`` units of one layer per
            repair, the lowest scores first. Default 0.1.
        min_interval: steps between two repairs of the same layer (needs ``step=`` and
            ``history=``). Default 1000.
        max_repairs: repairs (one layer at one step) in total over ``history`` and this call;
            ``None``: unlimited. Default 100.
        reset_optimizer: reset the repaired rows' and columns' optimizer state. Default True.
        second_moment: what a reset writes into second moments (Adam's ``exp_avg_sq`` and
            ``max_exp_avg_sq``, RMSprop's ``square_avg``): ``"mean"`` (default), the mean of
            the same tensor's other rows/columns, or ``"zero"`` (ReDo's recipe). Adam's bias
            correction counts steps per tensor, not per row, so a zeroed second moment late in
            training makes the first updates of a repaired unit about ``3 lr`` to ``6 lr`` per
            weight for a hundred steps (``m_t / sqrt(v_t)`` with both started at 0 and
            ``1 - beta^t ~ 1``); ``"mean"`` gives them the tensor's usual step size (in
            ``benchmarks/repair.py``, text task, seed 1: 43.9 % accuracy against 9.8 % with
            ``"zero"``, which re-killed and re-repaired 337 units instead of 145). First moments
            and momentum are zeroed either way.
        scale: standard deviation of the fresh weights: ``"data"`` (default), the RMS of the
            layer's live units' incoming weights -- after :func:`initwise.init` the data-aware
            scale, and whatever training made of it since -- falling back to ``"fan_in"`` when
            no unit is live; ``"fan_in"``, ``gain / sqrt(fan_in)`` with the activation's gain.

    Raises:
        ValueError: an option out of range, naming it and the valid range.
    """

    tau: float = 0.0
    max_fraction: float = 0.1
    min_interval: int = 1000
    max_repairs: int | None = 100
    reset_optimizer: bool = True
    scale: str = "data"
    second_moment: str = "mean"

    def __post_init__(self) -> None:
        if not (isinstance(self.tau, (int, float)) and 0.0 <= self.tau < math.inf):
            raise ValueError(f"Repair: tau={self.tau!r}; expected a finite number >= 0 "
                             "(0: dead units only; ReDo uses 0.1).")
        if not (isinstance(self.max_fraction, (int, float)) and 0 < self.max_fraction <= 1):
            raise ValueError(f"Repair: max_fraction={self.max_fraction!r}; expected 0 < x <= 1.")
        if not isinstance(self.min_interval, int) or self.min_interval < 0:
            raise ValueError(f"Repair: min_interval={self.min_interval!r}; expected an int >= 0.")
        if self.max_repairs is not None and (
                not isinstance(self.max_repairs, int) or self.max_repairs < 0):
            raise ValueError(f"Repair: max_repairs={self.max_repairs!r}; expected an int >= 0 "
                             "or None (unlimited).")
        if self.scale not in SCALES:
            raise ValueError(f"Repair: scale={self.scale!r}; valid values are {SCALES}.")
        if self.second_moment not in SECOND_MOMENT_RESETS:
            raise ValueError(f"Repair: second_moment={self.second_moment!r}; valid values are "
                             f"{SECOND_MOMENT_RESETS}.")

    def cap(self, units: int) -> int:
        """Most units of a layer of ``units`` units repaired at one step."""
        return max(1, math.floor(self.max_fraction * units))


@dataclass(frozen=True)
class RepairEvent:
    """One layer at one repair call: the units repaired, or why none could be.

    Attributes:
        step: the training step given to :func:`repair_units` (``None`` if none was).
        layer: qualified name of the layer whose units were selected.
        units: indices of the repaired units (empty: skipped, see ``reason``).
        reason: ``"dead"``, ``"dormant (tau=...)"``, or ``"skipped: ..."`` with the cause.
        score: ReDo's score of each unit in ``units`` (for a skip, of each candidate unit).
        notes: what else happened (optimizer state left as is, input mean assumed 0...).
    """

    step: int | None
    layer: str
    units: tuple[int, ...]
    reason: str
    score: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def repaired(self) -> bool:
        """True when units were repaired (not a skip)."""
        return bool(self.units)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["units"], d["score"], d["notes"] = list(self.units), list(self.score), list(self.notes)
        return d


# ---- statistics --------------------------------------------------------------------------
def _phi(act: ActivationFacts | None) -> Any:
    if act is None:
        return lambda z: z
    if act.torch_fn is not None:
        return act.torch_fn
    return torch.relu if act.relu_family else (lambda z: z)


def phi_moments(stats: UnitStats, act: ActivationFacts | None) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
    """Per-unit ``(E[phi(z)], E|phi(z)|)`` estimated from the pre-activation moments.

    Gauss-Hermite quadrature on ``N(mean, var)`` with nodes clamped to ``[zmin, zmax]``: exact
    for dead ReLU units and constant units (see the module docstring).
    """
    m, sd = stats.mean(), stats.var().sqrt()
    nodes = torch.as_tensor(_NODES, dtype=m.dtype, device=m.device)
    wts = torch.as_tensor(_WEIGHTS, dtype=m.dtype, device=m.device)
    z = m[:, None] + sd[:, None] * nodes[None, :]
    z = torch.minimum(torch.maximum(z, stats.zmin[:, None]), stats.zmax[:, None])
    with torch.no_grad():
        y = _phi(act)(z)
    return (y * wts).sum(1), (y.abs() * wts).sum(1)


def unit_scores(stats: UnitStats, act: ActivationFacts | None) -> torch.Tensor:
    """ReDo's score per unit, ``E|phi(z_j)| / mean_k E|phi(z_k)|`` (0 for every unit of an
    all-zero layer; exactly 0 for a dead ReLU unit).

    Args:
        stats: the layer's pre-activation statistics over recent rows.
        act: the activation that reads the layer's output (``None``: identity).

    Returns:
        float64 tensor (units,).
    """
    _, mabs = phi_moments(stats, act)
    layer_mean = mabs.mean()
    score = mabs / layer_mean if layer_mean > 0 else torch.zeros_like(mabs)
    if act is not None and act.relu_family:
        score = score.masked_fill(stats.zmax <= 0, 0.0)
    return score


# ---- structure ---------------------------------------------------------------------------
@dataclass
class _Layout:
    """Where one layer's units live in its weight."""

    module: nn.Module
    weight: torch.Tensor
    bias: torch.Tensor | None
    unit_axis: int
    in_axis: int

    @property
    def units(self) -> int:
        return self.weight.shape[self.unit_axis]

    @property
    def inputs(self) -> int:
        return self.weight.shape[self.in_axis]


def _layout(rec: LayerFacts) -> _Layout | str:
    """The weight layout of a supported layer, or why it is not supported."""
    m, w = rec.module, rec.weight
    if rec.kind not in ("linear", "conv") or w is None:
        return f"layer kind {rec.kind!r} is not supported (Linear, SparseLinear, ConvNd)"
    if rec.kind == "conv" and getattr(m, "groups", 1) != 1:
        return f"grouped convolution (groups={m.groups}) is not supported"
    lt = layer_type(m)
    axis = lt.axis(m) if lt is not None else None
    if axis not in (0, 1) or (rec.kind == "linear" and w.dim() != 2):
        return "the weight axis of its units is unknown"
    b = m._parameters.get("bias")
    bias = b if isinstance(b, torch.Tensor) and b.dim() == 1 and \
        b.numel() == w.shape[axis] else None
    return _Layout(m, w, bias, axis, 1 - axis)


def _consumers(name: str, facts: Mapping[str, LayerFacts]) -> list[LayerFacts]:
    return [c for c in facts.values() if name in c.parents]


def _columns(lay: _Layout, cons: _Layout, cname: str) -> int | str:
    """How many consumer input columns one unit feeds (1; H*W after a flatten), or why not."""
    if cons.inputs == lay.units:
        return 1
    conv_to_dense = lay.weight.dim() > 2 and cons.weight.dim() == 2
    if conv_to_dense and cons.inputs % lay.units == 0:
        return cons.inputs // lay.units
    return (f"consumer {cname!r} reads {cons.inputs} inputs, not the {lay.units} units "
            "(a reshape other than a channel-major flatten)")


def _eligible(name: str, rec: LayerFacts, facts: Mapping[str, LayerFacts]
              ) -> tuple[str | None, _Layout | None, list[tuple[str, _Layout, int]]]:
    """(skip reason, layout, [(consumer name, layout, columns per unit)])."""
    lay = _layout(rec)
    if isinstance(lay, str):
        return lay, None, []
    if rec.calls > 1:
        return f"the layer is called {rec.calls} times per forward (shared)", None, []
    if rec.residual:
        return "its output is added to a residual path (out of scope)", None, []
    if rec.followed_by_norm:
        return f"its output feeds a norm ({rec.followed_by_norm}; out of scope)", None, []
    if rec.is_output:
        return "it is an output layer", None, []
    if not any(f.parents for f in facts.values()):
        return ("consumers unknown: the facts hold no graph (structural); pass "
                "layer_facts(model, inputs) built from a traced forward"), None, []
    found = _consumers(name, facts)
    if not found:
        return "no consumer layer found in the graph", None, []
    out = []
    for c in found:
        if c.kind == "norm":
            return f"its output feeds the norm layer {c.name!r} (out of scope)", None, []
        if len(c.parents) > 1:
            return (f"consumer {c.name!r} merges several inputs {list(c.parents)} "
                    "(concatenation or residual sum; out of scope)"), None, []
        clay = _layout(c)
        if isinstance(clay, str):
            return f"consumer {c.name!r}: {clay}", None, []
        cols = _columns(lay, clay, c.name)
        if isinstance(cols, str):
            return cols, None, []
        out.append((c.name, clay, cols))
    return None, lay, out


# ---- planning ------------------------------------------------------------------------------
def _input_mean(name: str, rec: LayerFacts, lay: _Layout, facts: Mapping[str, LayerFacts],
                stats: Mapping[str, UnitStats],
                inputs: Mapping[str, ColumnStats] | None) -> tuple[torch.Tensor | None, str]:
    """Mean of the layer's input per input column/channel, and where it came from."""
    col = (inputs or {}).get(name)
    if col is not None and col.s1 is not None and col.s1.numel() == lay.inputs:
        return col.mean(), ""
    parents = [p for p in rec.parents if p != "<input>"]
    if len(rec.parents) == 1 and parents and parents[0] in stats and parents[0] in facts:
        pst, prec = stats[parents[0]], facts[parents[0]]
        if not pst.empty and pst.zmax is not None and not prec.residual \
                and not prec.followed_by_norm:
            mean, _ = phi_moments(pst, prec.act)
            if mean.numel() == lay.inputs:
                return mean, ""
            if prec.kind == "conv" and lay.weight.dim() == 2 and lay.inputs % mean.numel() == 0:
                # a channel-major flatten of the parent's channels
                return mean.repeat_interleave(lay.inputs // mean.numel()), ""
    return None, "input mean unknown (pass inputs= column statistics): assumed 0"


def _scale(lay: _Layout, live: torch.Tensor, act: ActivationFacts | None, policy: Repair
           ) -> float:
    w = lay.weight.detach()
    if policy.scale == "data" and bool(live.any()):
        rows = w.index_select(lay.unit_axis, live.nonzero().flatten().to(w.device))
        s = float(rows.double().pow(2).mean().sqrt())
        if s > 0 and math.isfinite(s):
            return s
    fan_in = w.numel() // lay.units
    gain = act.gain if act is not None and act.gain is not None else 1.0
    return gain / math.sqrt(max(fan_in, 1))


@dataclass
class _Plan:
    name: str
    lay: _Layout
    units: list[int]
    scores: list[float]
    reason: str
    scale: float
    mu_x: torch.Tensor | None
    mean_out: torch.Tensor
    consumers: list[tuple[str, _Layout, int]]
    notes: list[str] = field(default_factory=list)


def _last_steps(history: Sequence[RepairEvent]) -> tuple[dict[str, int], int]:
    last: dict[str, int] = {}
    done = 0
    for e in history:
        if e.repaired:
            done += 1
            if e.step is not None:
                last[e.layer] = max(last.get(e.layer, e.step), e.step)
    return last, done


def dormant_units(stats: UnitStats, act: ActivationFacts | None, tau: float = 0.0
                  ) -> list[int]:
    """The units :func:`repair_units` would select, lowest score first (before any cap).

    A unit is selected when its ReDo score is ``<= tau`` or, for a ReLU-family activation, when
    it was never positive on any row seen (``zmax <= 0``).

    Args:
        stats: the layer's pre-activation statistics.
        act: the activation reading the layer's output (``None``: identity).
        tau: the dormant threshold (:attr:`Repair.tau`). Default 0.0.

    Returns:
        Unit indices sorted by (score, index).
    """
    score = unit_scores(stats, act)
    cand = score <= tau
    if act is not None and act.relu_family:
        cand |= stats.zmax <= 0
    return sorted(cand.nonzero().flatten().tolist(), key=lambda j: (float(score[j]), j))


def _plan_layer(name: str, rec: LayerFacts, st: UnitStats, facts: Mapping[str, LayerFacts],
                stats: Mapping[str, UnitStats], inputs: Mapping[str, ColumnStats] | None,
                policy: Repair, step: int | None,
                chosen: Sequence[int] | None) -> _Plan | RepairEvent | None:
    act = rec.act if rec.act is not None else rec.activation
    score = unit_scores(st, act)
    order = dormant_units(st, act, policy.tau) if chosen is None else list(chosen)
    if not order:
        return None
    reason, lay, consumers = _eligible(name, rec, facts)
    if reason is not None or lay is None:
        return RepairEvent(step, name, (), f"skipped: {reason}",
                           tuple(float(score[j]) for j in order))
    if st.units != lay.units or any(not 0 <= j < lay.units for j in order):
        return RepairEvent(step, name, (), f"skipped: statistics hold {st.units} units, the "
                           f"weight {lay.units}, units asked {order}", ())
    units = order[:policy.cap(lay.units)] if chosen is None else sorted(set(order))
    cand = torch.zeros(lay.units, dtype=torch.bool, device=score.device)
    cand[dormant_units(st, act, policy.tau) + units] = True
    dead = act is not None and act.relu_family and all(float(st.zmax[j]) <= 0 for j in units)
    why = "selected" if chosen is not None else \
        "dead" if dead or policy.tau == 0 else f"dormant (tau={policy.tau:g})"
    mean_out, _ = phi_moments(st, act)
    notes = []
    for cname, clay, _cols in consumers:
        if clay.bias is None and bool((mean_out[units] != 0).any()):
            return RepairEvent(step, name, (), f"skipped: consumer {cname!r} has no bias to "
                               "absorb the units' mean output", tuple(float(score[j])
                                                                    for j in units))
    mu_x, note = _input_mean(name, rec, lay, facts, stats, inputs)
    if note:
        notes.append(note)
    return _Plan(name, lay, units, [float(score[j]) for j in units], why,
                 _scale(lay, ~cand, act, policy), mu_x, mean_out, consumers, notes)


# ---- applying ------------------------------------------------------------------------------
def _draw(shape: torch.Size, scale: float, like: torch.Tensor,
          generator: torch.Generator | None) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    w = torch.randn(shape, generator=generator, dtype=torch.float64, device=dev)
    return (w * scale).to(device=like.device, dtype=like.dtype)


def _apply(plan: _Plan, generator: torch.Generator | None) -> list[tuple[torch.Tensor, int,
                                                                         list[int]]]:
    """Rewrite the weights; return the touched (parameter, axis, indices) for the optimizer."""
    lay, touched = plan.lay, []
    w = lay.weight
    for j in plan.units:
        row = w.select(lay.unit_axis, j)
        new = _draw(row.shape, plan.scale, w, generator)
        row.copy_(new)
        if lay.bias is not None:
            if plan.mu_x is not None:
                per_in = new.double().reshape(new.shape[0], -1).sum(1) if new.dim() > 1 \
                    else new.double()
                lay.bias[j] = -(per_in * plan.mu_x.to(per_in.device)).sum().to(lay.bias.dtype)
            else:
                lay.bias[j] = 0.0
    touched.append((w, lay.unit_axis, plan.units))
    if lay.bias is not None:
        touched.append((lay.bias, 0, plan.units))
    for _cname, clay, cols in plan.consumers:
        cw = clay.weight
        idx = [j * cols + k for j in plan.units for k in range(cols)]
        if clay.bias is not None:
            sel = cw.detach().index_select(clay.in_axis, torch.tensor(idx, device=cw.device))
            sel = sel.double().movedim(clay.unit_axis, 0).reshape(clay.units, len(plan.units),
                                                                  -1)
            mean = plan.mean_out[plan.units].to(sel.device)
            delta = (sel.sum(2) * mean[None, :]).sum(1)
            clay.bias.add_(delta.to(clay.bias.dtype))
        cw.index_fill_(clay.in_axis, torch.tensor(idx, device=cw.device), 0.0)
        touched.append((cw, clay.in_axis, idx))
    return touched


def _optimizers(optimizer: Any) -> list[Any]:
    """One optimizer, a sequence of them, or a view with ``.optimizers`` -> a list."""
    if isinstance(optimizer, (list, tuple)):
        return list(optimizer)
    return list(getattr(optimizer, "optimizers", None) or [optimizer])


def _reset_state(optimizer: torch.optim.Optimizer,
                 touched: list[tuple[torch.Tensor, int, list[int]]],
                 saved: list[tuple[torch.Tensor, torch.Tensor]], second: str) -> list[str]:
    keys = next((OPTIMIZER_STATE[c.__name__] for c in type(optimizer).__mro__
                 if c.__name__ in OPTIMIZER_STATE), None)
    if keys is None:
        return [f"optimizer {type(optimizer).__name__}: state left as is (unknown layout; "
                f"known: {sorted(OPTIMIZER_STATE)})"]
    for p, axis, idx in touched:
        state = optimizer.state.get(p)
        if not state or not idx:
            continue
        index = torch.tensor(idx, device=p.device)
        for key in keys:
            t = state.get(key)
            if isinstance(t, torch.Tensor) and t.shape == p.shape:
                saved.append((t, t.clone()))
                t.index_fill_(axis, index, _fill_value(t, axis, index, key, second))
    return []


def _fill_value(t: torch.Tensor, axis: int, index: torch.Tensor, key: str, second: str
                ) -> float:
    """0, or for a second moment under ``second="mean"`` the mean over the untouched slices."""
    if second != "mean" or key not in SECOND_MOMENTS:
        return 0.0
    keep = torch.ones(t.shape[axis], dtype=torch.bool, device=t.device)
    keep[index] = False
    rest = t.index_select(axis, keep.nonzero().flatten())
    return float(rest.double().mean()) if rest.numel() else 0.0


def repair_units(
    model: nn.Module,
    facts: Mapping[str, LayerFacts],
    stats: Mapping[str, UnitStats],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    policy: Repair = Repair(),
    generator: torch.Generator | None = None,
    step: int | None = None,
    history: Sequence[RepairEvent] = (),
    inputs: Mapping[str, ColumnStats] | None = None,
    units: Mapping[str, Sequence[int]] | None = None,
) -> list[RepairEvent]:
    """Repair the dead or dormant units of ``model`` in place (see the module docstring).

    Args:
        model: the model (its parameters are rewritten in place).
        facts: ``{name: LayerFacts}`` from :func:`initwise.measure.layer_facts` on a traced
            forward (consumers are found through ``parents``).
        stats: ``{name: UnitStats}`` of each layer's pre-activation over recent batches (a
            :func:`initwise.measure.probe` on the training forward).
        optimizer: its state of the repaired rows/columns is zeroed (``policy.reset_optimizer``).
            Default None.
        policy: the :class:`Repair` policy. Default ``Repair()`` (dead units only).
        generator: draws the fresh weights (same seed, same bits). Default None (global RNG).
        step: the training step, recorded in the events and used by ``min_interval``.
        history: earlier events (for ``min_interval`` and ``max_repairs``). Default ().
        inputs: ``{name: ColumnStats}`` of layer inputs (``probe(..., input_stats=...)``); a
            layer without gets its input mean from its parent's statistics, else assumes 0.
        units: ``{name: unit indices}``: repair exactly these units of these layers instead of
            the dormant ones (reason ``"selected"``; no ``max_fraction`` cap; the eligibility
            checks, ``min_interval`` and ``max_repairs`` still apply). Default None.

    Returns:
        One :class:`RepairEvent` per layer repaired or skipped, in the order of ``facts``.

    Raises:
        TypeError: ``policy`` is not a :class:`Repair`.
        Exception: whatever fails while writing; the model's parameters and the optimizer's
            state are then exactly as before the call.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initwise.measure import layer_facts, probe
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
        >>> with torch.no_grad():
        ...     net[0].bias[1] = -100.0  # unit 1 never fires
        >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0)).double()
        >>> facts, _ = layer_facts(net, x)
        >>> with probe(net, facts) as p:
        ...     before = net(x)
        >>> events = repair_units(net, facts, p.stats, generator=torch.Generator().manual_seed(1))
        >>> [(e.layer, e.units, e.reason) for e in events], torch.allclose(net(x), before)
        ([('0', (1,), 'dead')], True)
    """
    if not isinstance(policy, Repair):
        raise TypeError(f"repair_units: policy must be a Repair, got {type(policy).__name__}.")
    last, done = _last_steps(history)
    events: list[RepairEvent] = []
    plans: list[_Plan] = []
    for name, rec in facts.items():
        st = stats.get(name)
        if st is None or st.empty or st.zmax is None:
            continue
        if step is not None and name in last and step - last[name] < policy.min_interval:
            continue
        if units is not None and name not in units:
            continue
        out = _plan_layer(name, rec, st, facts, stats, inputs, policy, step,
                          None if units is None else units[name])
        if isinstance(out, RepairEvent):
            events.append(out)
        elif out is not None:
            if policy.max_repairs is not None and done + len(plans) >= policy.max_repairs:
                continue
            plans.append(out)
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        with guarded(model, grads=False), torch.no_grad():
            for plan in plans:
                touched = _apply(plan, generator)
                if optimizer is not None and policy.reset_optimizer:
                    for opt in _optimizers(optimizer):  # each resets the tensors it holds
                        plan.notes += _reset_state(opt, touched, saved, policy.second_moment)
    except BaseException:
        for t, copy in reversed(saved):
            t.copy_(copy)
        raise
    events += [RepairEvent(step, p.name, tuple(p.units), p.reason, tuple(p.scores),
                           tuple(p.notes)) for p in plans]
    order = {n: i for i, n in enumerate(facts)}
    return sorted(events, key=lambda e: order[e.layer])
