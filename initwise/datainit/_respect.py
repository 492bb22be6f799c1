"""The calibration of ``policy="respect"``: keep the model's own scales, fix what is measured.

Under ``"respect"`` (:mod:`initwise.policy._respect`: a healthy model of a library whose authors
tuned its init) no layer is re-scaled towards a target: the branch scales of a normalized
residual Transformer, GPT-2's ``1/sqrt(2 n_layer)`` projections, zero-initialized branches and
LayerScale stay exactly as they are. One pass over the calibration batches measures every layer
at once; then, in execution order, only these are changed (each named in the report):

* a sparse input table (``nn.EmbeddingBag``, a ``Linear`` on ``torch.sparse`` input): the
  fan-in rule over all rows (rule 2 of :mod:`initwise.datainit`); a dense sequence model's
  ``nn.Embedding`` is not such a table and keeps its scale;
* a dense first layer reading badly scaled raw columns: the input standardization (rule 1),
  nothing folded into the weights otherwise;
* ReLU-family units dead on every calibration sample, and tanh/sigmoid units saturated on most,
  re-centred by their bias (rule 6) -- never a unit whose weight row is exactly zero, which was
  zero-initialized on purpose; nothing is re-drawn;
* the output layer's bias at the label prior (rule 8, in :mod:`initwise.datainit._output`).

After a change the layers downstream are measured again (one more pass), so every decision
reads the model as it now is. Cost: ``1 + (layers changed)`` passes over the batches.
"""

from __future__ import annotations

import torch
from torch import nn

from initwise.datainit._layers import CALIBRATED_KINDS, bias_of, unit_axis, weight_of
from initwise.datainit._measure import Measurement, measure_many
from initwise.datainit._walk import (
    STD_BUFFERS,
    WalkConfig,
    WalkState,
    _apply,
    _columns_off,
    _dies,
    _plan,
    _rms,
    _sparse_rule,
    _threshold,
)
from initwise.initreport import LayerCalibration
from initwise.measure import LayerFacts, facts_from_graph
from initwise.nn.standardize import add_input_standardization, has_input_standardization

__all__ = ["respect_layers"]


def respect_layers(model: nn.Module, batches: list, graph: object,
                   cfg: WalkConfig) -> WalkState:
    """Measure every layer once, fix only what the measurement flags (module docstring)."""
    st = WalkState(changed=False)
    facts = facts_from_graph(graph)
    nodes = [n for n in graph.layers if n.kind in CALIBRATED_KINDS
             and weight_of(n.module) is not None]
    stats = _measure_from(model, batches, facts, nodes, 0)
    seen: set[int] = set()
    for i, node in enumerate(nodes):
        w = weight_of(node.module)
        rms = _rms(w)
        if node.name in cfg.keep or id(w) in seen:
            why = cfg.keep.get(node.name, "weight tied to an earlier layer")
            st.layers.append(LayerCalibration(node.name, type(node.module).__name__, rms, rms,
                                              note=f"not calibrated: {why}"))
            continue
        seen.add(id(w))
        lc, changed = _respect_node(facts[node.name], w, stats[node.name], cfg, st)
        st.layers.append(lc)
        st.changed = st.changed or changed
        if changed and i + 1 < len(nodes):
            stats.update(_measure_from(model, batches, facts, nodes, i + 1))
    return st


def _act(rec: LayerFacts):
    return None if rec.followed_by_norm else rec.activation


def _measure_from(model: nn.Module, batches: list, facts: dict[str, LayerFacts],
                  nodes: list, start: int) -> dict[str, Measurement]:
    recs = {}
    for node in nodes[start:]:
        rec = facts[node.name]
        recs[node.name] = (rec, _act(rec), rec.reads_input and rec.kind in ("linear", "conv"))
    return measure_many(model, batches, recs) if recs else {}


def _sparse_table(rec: LayerFacts, m: Measurement) -> bool:
    """A sparse input table: a bag, or a linear layer reading a sparse input (not a dense
    sequence model's ``nn.Embedding``)."""
    return m.sparse is not None and rec.kind in ("embedding_bag", "linear")


def _respect_node(rec: LayerFacts, w: torch.Tensor, m: Measurement, cfg: WalkConfig,
                  st: WalkState) -> tuple[LayerCalibration, bool]:
    module = rec.module
    n_units = m.out.s1.numel() if m.out.s1 is not None else 0
    before = _rms(w)
    lc = LayerCalibration(rec.name, type(module).__name__, before, before)
    notes: list[str] = []
    changed = False
    act = _act(rec)
    if m.out.empty or n_units == 0:
        lc.note = "kept (the model's own init); no output on the calibration batches"
        return lc, False
    if _sparse_table(rec, m):
        note = _sparse_rule(module, w, n_units, m, act, before)
        if note:
            notes.append(note)
            changed = True
    elif m.columns is not None:
        note = _standardize_only(module, w, n_units, m)
        if note:
            notes.append(note)
            st.added.append(f"init: layer {rec.name!r} reads badly scaled raw input columns: "
                            f"{note}.")
            changed = True
    bias = bias_of(module, n_units)
    axis = unit_axis(module, w, n_units)
    if not changed and bias is not None and axis is not None and (
            _dies(act) or _threshold(act) is not None):
        b0 = bias.detach().double().clone()
        hopeless = _zero_rows(w, axis, n_units).to(m.out.s1.device)
        p = _plan(m, None, act, bias, b0, hopeless, cfg.tol)
        if p.dead or p.saturated:
            p.redraw.zero_()
            p.flip.zero_()
            p.shrink.fill_(1.0)
            _apply(p, w, axis, bias, b0, cfg.generator)
            notes.append(f"re-centred {p.dead} dead / {p.saturated} saturated unit(s) by their "
                         f"bias")
            changed = True
    o = m.out
    lc.pre_std = float(o.shifted_second_moment(torch.zeros_like(o.mean())).mean()
                       .clamp_min(0).sqrt())
    if _dies(act) and not changed:
        lc.active_fraction = float((o.zmax > 0).double().mean())
    if _threshold(act) is not None and not changed:
        lc.saturated_fraction = float((o.sat / max(o.count, 1) > 0.5).double().mean())
    lc.scale_after = _rms(w)
    lc.converged = True
    lc.note = ("kept (the model's own init)" if not notes else
               "the model's own init, except: " + "; ".join(notes))
    return lc, changed


def _zero_rows(w: torch.Tensor, axis: int, n_units: int) -> torch.Tensor:
    """Units whose weight row is exactly zero: zero-initialized on purpose, never re-centred."""
    rows = w.detach().movedim(axis, 0).reshape(n_units, -1)
    return ~rows.any(dim=1).cpu()


def _standardize_only(module: nn.Module, w: torch.Tensor, n_units: int, m: Measurement) -> str:
    """Rule 1's input standardization when raw columns are badly scaled; nothing otherwise."""
    cols = m.columns
    axis = unit_axis(module, w, n_units)
    if cols is None or axis is None or w.dim() < 2 or getattr(module, "groups", 1) != 1:
        return ""
    if w.shape[1 - axis] != cols.s1.numel() or has_input_standardization(module):
        return ""
    if not (isinstance(module, nn.Linear)
            or (isinstance(module, nn.modules.conv._ConvNd) and axis == 0)):
        return ""
    mean, std = cols.mean(), cols.std()
    valid = std > 1e-12 * (1.0 + mean.abs())
    if not _columns_off(mean, std, valid):
        return ""
    inv = torch.where(valid, 1.0 / std.clamp_min(1e-300), torch.ones_like(std))
    add_input_standardization(module, mean, inv)
    return (f"input standardization added (raw columns badly scaled): buffers {STD_BUFFERS} + a "
            f"forward pre-hook; initwise.nn.bake_input_standardization(layer) folds it")
