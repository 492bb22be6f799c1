"""The calibration walk: every layer, in execution order, measured on the calibration batches.

See :mod:`initwise.datainit` for the rules and why; this module implements them:

* data layers first get their input rule (dense: an input standardization on the layer when the
  columns are badly scaled, else the column scales folded into the weights and bias;
  sparse/lookup: the fan-in rule over all rows with unit feature values, in closed form);
* then per layer, until the tolerance is met or ``max_iters`` adjustments were made: re-draw a
  constant layer (once), revive dead ReLU-family units, un-saturate saturated units, and scale the
  weight (and the weight-proportional part of the bias) so the pre-activation RMS hits the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initwise.activations import ActivationFacts
from initwise.datainit._layers import (
    CALIBRATED_KINDS,
    bias_of,
    fan_in,
    n_lookup_rows,
    unit_axis,
    weight_of,
)
from initwise.datainit._measure import Measurement, measure
from initwise.initreport import LayerCalibration
from initwise.measure import LayerFacts, facts_from_graph
from initwise.nn.standardize import add_input_standardization, has_input_standardization

__all__ = ["WalkConfig", "WalkState", "calibrate_layers"]

_TINY = 1e-10  # relative variance under which an output counts as constant
# rule 1's trigger: a dense data layer gets a training-time input standardization when some
# (non-constant) input column has a std outside COL_STD_RANGE or a mean beyond COL_MEAN_STDS
# stds from 0; a column inside these bounds is at most 10x off a standardized one.
COL_STD_RANGE = (0.1, 10.0)
COL_MEAN_STDS = 3.0
STD_BUFFERS = "initwise_input_shift/initwise_input_inv_scale"
# rule 4: a residual branch's output aims at rho / L**RESIDUAL_EXPONENT for L residual branches
RESIDUAL_EXPONENT = 0.5
# rule 6: a layer followed by a saturating activation is never scaled beyond this multiple of
# the fan-in rule's std (gain / sqrt(fan_in)): when its input barely varies across samples (a
# collapsed signal upstream), reaching the target RMS would take a huge weight and drive the
# units into saturation (BERT's pooler: weight std 0.02 -> 37.5, 98 % saturated, issue 15)
SATURATING_MAX_GAIN = 2.0


@dataclass
class WalkConfig:
    """Settings of one calibration walk (see :func:`initwise.datainit.init`)."""

    target: str | float
    max_iters: int
    tol: float
    on_unknown: str
    generator: torch.Generator
    critical_rms: Any = None  # activation name -> sqrt(q*) or None (target="critical")
    keep: dict[str, str] = field(default_factory=dict)  # module name -> why it is left alone
    progress: Any = None  # initwise.progress.Progress: step(i, n, name) per layer


@dataclass
class WalkState:
    """What the walk has decided so far."""

    rho: float | None = None
    seen: set[int] = field(default_factory=set)
    layers: list[LayerCalibration] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data_rms: list[float] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # structural additions (input standardization)
    sequence_tables: set[str] = field(default_factory=set)  # nn.Embedding of sequence models
    changed: bool = True  # the walk may have changed a weight (the respect pass says when not)
    uncovered: list[str] = field(default_factory=list)  # layers of a kind the walk leaves alone

    def warn(self, msg: str) -> None:
        """Record a warning (``init`` emits them at the caller once the walk is done)."""
        self.warnings.append(msg)


def _rms(t: torch.Tensor) -> float:
    """Root mean square (a norm in the tensor's dtype: no float64 copy of a 2^24-row table)."""
    n = t.numel()
    return float(torch.linalg.vector_norm(t.detach())) / math.sqrt(n) if n else 0.0


def _per_unit(w: torch.Tensor, axis: int, vec: torch.Tensor) -> torch.Tensor:
    shape = [1] * w.dim()
    shape[axis] = -1
    return vec.to(w.dtype).reshape(shape)


def _randn(shape: Any, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(like.device, like.dtype)


def _base_target(cfg: WalkConfig, st: WalkState, act: ActivationFacts | None) -> float:
    if isinstance(cfg.target, float):
        return cfg.target
    if cfg.target == "unit":
        return 1.0
    if cfg.target == "critical":
        return (cfg.critical_rms(act.name if act else None) if cfg.critical_rms else None) or 1.0
    return st.rho if st.rho is not None else 1.0


def _columns_off(mean: torch.Tensor, std: torch.Tensor, valid: torch.Tensor) -> bool:
    """Whether raw columns need a standardization that stays during training (rule 1)."""
    off = (std < COL_STD_RANGE[0]) | (std > COL_STD_RANGE[1]) | (mean.abs() > COL_MEAN_STDS * std)
    return bool((off & valid).any())


def _standardize(module: nn.Module, w: torch.Tensor, bias: torch.Tensor | None,
                 m: Measurement) -> tuple[str, bool]:
    """Rule 1 for a dense data layer; returns ``(note, standardization added)``.

    Badly scaled columns (:func:`_columns_off`): the layer gets an input standardization
    ``(x - m) / s`` (:func:`initwise.nn.add_input_standardization`), so training is training on
    standardized inputs. Otherwise the per-column scale is folded into the weights
    (``W[:, j] /= s_j``, ``b -= W' m``; RMS instead of std without a bias).
    """
    cols = m.columns
    n_units = m.out.s1.numel()
    axis = unit_axis(module, w, n_units)
    if cols is None or axis is None or w.dim() < 2:
        return "", False
    if getattr(module, "groups", 1) != 1 or w.shape[1 - axis] != cols.s1.numel():
        return "", False
    mean, std, rms = cols.mean(), cols.std(), cols.rms()
    valid = std > 1e-12 * (1.0 + mean.abs())
    supported = isinstance(module, nn.Linear) or (
        isinstance(module, nn.modules.conv._ConvNd) and axis == 0)
    if supported and not has_input_standardization(module) and _columns_off(mean, std, valid):
        inv = torch.where(valid, 1.0 / std.clamp_min(1e-300), torch.ones_like(std))
        add_input_standardization(module, mean, inv)
        lo = float(std[valid].min()) if valid.any() else 1.0
        hi = float(std[valid].max()) if valid.any() else 1.0
        return (f"input standardization added (column stds {lo:.3g} to {hi:.3g}, "
                f"expected within {COL_STD_RANGE}; max |mean|/std "
                f"{float((mean.abs() / std.clamp_min(1e-300))[valid].max()):.3g}): buffers "
                f"{STD_BUFFERS} + a forward pre-hook; bake it into weight/bias with "
                f"initwise.nn.bake_input_standardization(layer), drop it with "
                f"remove_input_standardization(layer)"), True
    scale_src = std if bias is not None else rms
    ok = scale_src > 1e-12 * (1.0 + mean.abs())
    scale = torch.where(ok, scale_src, torch.ones_like(scale_src))
    wv = w if axis == 0 else w.t()  # (units, columns, *kernel) view
    shape = [1, -1] + [1] * (w.dim() - 2)
    with torch.no_grad():
        wv.div_(scale.to(w.dtype).reshape(shape))
        if bias is not None:
            summed = wv.double().sum(dim=tuple(range(2, w.dim()))) if w.dim() > 2 else wv.double()
            bias.sub_((summed @ mean.to(summed.device)).to(bias.dtype))
    spread = float(scale.max() / scale.min())
    return f"column scales folded into the weights (span x{spread:.3g})", False


def _sparse_rule(module: nn.Module, w: torch.Tensor, n_units: int, m: Measurement,
                 act: ActivationFacts | None, cur: float) -> str:
    """Closed form for sparse/lookup data layers (rule 2 of the package docstring).

    Weight std ``gain / sqrt(n_rows)`` -- the fan-in rule counting every row of the table --
    so the pre-activation RMS is ``gain * sqrt(E[sum_j x_j^2] / n_rows)``; capped at ``gain``
    (what a dense layer on unit-scale inputs gets) when raw values are huge.
    """
    n_rows = n_lookup_rows(module, w, n_units)
    if n_rows <= 0 or m.sparse is None:
        return ""
    eff = m.sparse.eff_fan_in
    target_std = (act.gain if act else 1.0) / math.sqrt(max(n_rows, eff))
    if cur > 0:
        with torch.no_grad():
            w.mul_(target_std / cur)
    capped = " (capped: huge values)" if eff > n_rows else ""
    return (f"sparse input: {n_rows} rows, effective fan-in {eff:.4g}, "
            f"value rms {math.sqrt(m.sparse.value_ms):.3g}; weight std {target_std:.3g}{capped}")


@dataclass
class _Plan:
    scale: float
    dbias: torch.Tensor
    flip: torch.Tensor
    redraw: torch.Tensor
    shrink: torch.Tensor
    dead: int
    saturated: int
    pre_rms: float
    ok: bool
    pairs: bool = False  # looks-linear pairs (rows i and i + n/2 are negatives)


def _plan(m: Measurement, target: float | None, act: ActivationFacts | None,
          bias: torch.Tensor | None,
          b0: torch.Tensor | None, hopeless: torch.Tensor, tol: float,
          pairs: bool = False) -> _Plan:
    o = m.out
    mean, var = o.mean(), o.var()
    n = mean.numel()
    seen = torch.full((n,), o.count > 0, dtype=torch.bool, device=mean.device)
    flat = var <= _TINY * (1.0 + mean * mean)
    dead = (o.zmax <= 0) & seen & ~hopeless if _dies(act) else torch.zeros_like(seen)
    if pairs:  # looks-linear pairs (z, -z): a pair with a dead unit is re-centred as a whole
        half = dead[: n // 2] | dead[n // 2:]
        dead = torch.cat([half, half])
    sat = torch.zeros_like(seen)
    if _threshold(act) is not None:
        sat = (o.sat / max(o.count, 1.0) > 0.5) & ~hopeless
    dbias = torch.zeros_like(mean)
    flip = torch.zeros_like(seen)
    shrink = torch.ones_like(mean)
    if bias is not None:
        dbias = torch.where(dead | sat, -mean, dbias)
        if pairs:  # exactly mirrored, whatever the rounding of the two units' statistics
            dbias = torch.cat([dbias[: n // 2], -dbias[: n // 2]])
    else:
        flip = dead & ~flat & (o.zmin < 0)
        if _threshold(act) is not None:
            unit_rms = (o.s2 / max(o.count, 1.0)).sqrt()
            shrink = torch.where(sat, (_threshold(act) / 2) / unit_rms.clamp_min(1e-30), shrink)
    redraw = dead & flat
    if pairs:  # draw the top unit of a pair, its mirror is its negative (see _apply)
        redraw = torch.cat([redraw[: n // 2] | redraw[n // 2:], torch.zeros_like(redraw[n // 2:])])
    shift = b0.double() - dbias if b0 is not None else torch.zeros_like(mean)
    ms = o.shifted_second_moment(shift) * shrink * shrink
    pre_rms = float(ms.mean().clamp_min(0).sqrt())
    scale = target / pre_rms if target is not None and pre_rms > 0 else 1.0
    ok = abs(scale - 1.0) <= tol and not bool(dead.any()) and not bool(sat.any())
    return _Plan(scale, dbias, flip, redraw, shrink, int(dead.sum()), int(sat.sum()),
                 pre_rms, ok, pairs)


def _apply(p: _Plan, w: torch.Tensor, axis: int | None, bias: torch.Tensor | None,
           b0: torch.Tensor | None, gen: torch.Generator) -> None:
    with torch.no_grad():
        if axis is not None:
            if p.flip.any():
                w.mul_(_per_unit(w, axis, 1.0 - 2.0 * p.flip.double()))
            if p.redraw.any():
                idx = p.redraw.nonzero().flatten().to(w.device)
                sub = w.index_select(axis, idx)
                w.index_copy_(axis, idx, _randn(sub.shape, gen, w) * max(_rms(w), 1e-12))
                if p.pairs:  # (axis 0) the mirrors of the re-drawn top units
                    w.index_copy_(axis, idx + w.shape[0] // 2, -w.index_select(axis, idx))
            if (p.shrink != 1).any():
                w.mul_(_per_unit(w, axis, p.shrink))
        w.mul_(p.scale)
        if bias is not None:
            new = b0 + p.scale * (bias.double() + p.dbias.to(bias.device) - b0)
            bias.copy_(new.to(bias.dtype))


def _unknown(node: Any, cfg: WalkConfig, st: WalkState) -> None:
    kind = node.kind
    if kind == "norm":
        return
    if cfg.on_unknown == "error":
        raise ValueError(
            f"init: layer {node.name!r} ({type(node.module).__name__}, kind {kind!r}) is not "
            f"calibrated (initwise.init calibrates {', '.join(CALIBRATED_KINDS)}); it keeps its "
            f"structural init. Pass on_unknown='warn' or 'skip' to accept that.")
    if cfg.on_unknown == "warn":
        st.uncovered.append(f"{node.name!r} ({type(node.module).__name__}, {kind})")


def _uncovered_warning(st: WalkState) -> None:
    """One warning naming every layer the walk does not calibrate (not one per layer)."""
    if not st.uncovered:
        return
    shown = ", ".join(st.uncovered[:50]) + (", ..." if len(st.uncovered) > 50 else "")
    st.warn(f"init: {len(st.uncovered)} layer(s) are not calibrated and keep their structural "
            f"init: {shown} (initwise.init calibrates {', '.join(CALIBRATED_KINDS)}); pass "
            f"on_unknown='skip' to silence this, or 'error' to refuse.")


def _dies(act: ActivationFacts | None) -> bool:
    return act is not None and act.relu_family


def _threshold(act: ActivationFacts | None) -> float | None:
    return act.sat_threshold if act is not None and act.saturating else None


def calibrate_layers(model: nn.Module, batches: list, graph: Any, cfg: WalkConfig) -> WalkState:
    """Calibrate every layer of ``graph`` in execution order; return the walk's state."""
    st = WalkState(sequence_tables=sequence_tables(graph))
    facts = facts_from_graph(graph)
    n_res = sum(1 for n in graph.layers if n.residual and (
        n.kind in CALIBRATED_KINDS or attention_out(n) is not None))
    for i, node in enumerate(graph.layers):
        if cfg.progress is not None:
            cfg.progress.step(i + 1, len(graph.layers), node.name)
        w = weight_of(node.module)
        if node.name in cfg.keep:
            rms = _rms(w) if w is not None else 0.0
            st.layers.append(LayerCalibration(
                node.name, type(node.module).__name__, rms, rms,
                note=f"not calibrated: {cfg.keep[node.name]}"))
            continue
        out = attention_out(node)
        if out is not None and id(out.weight) not in st.seen:
            st.seen.add(id(out.weight))
            st.layers.append(_calibrate_attention(model, batches, facts[node.name], out, cfg,
                                                  st, n_res))
            continue
        if node.kind not in CALIBRATED_KINDS or w is None:
            _unknown(node, cfg, st)
            continue
        if id(w) in st.seen:
            rms = _rms(w)
            st.layers.append(LayerCalibration(
                node.name, type(node.module).__name__, rms, rms,
                note="weight tied to an earlier layer: calibrated at its first use"))
            continue
        st.seen.add(id(w))
        st.layers.append(_calibrate_node(model, batches, facts[node.name], w, cfg, st, n_res))
    _uncovered_warning(st)
    return st


def attention_out(node: Any) -> nn.Linear | None:
    """The output projection of an attention layer whose output is a residual branch
    (``nn.MultiheadAttention.out_proj`` inside a Transformer block), or ``None``."""
    out = getattr(node.module, "out_proj", None)
    if node.kind == "attention" and node.residual and isinstance(out, nn.Linear):
        return out
    return None


def _calibrate_attention(model: nn.Module, batches: list, node: LayerFacts, out: nn.Linear,
                         cfg: WalkConfig, st: WalkState, n_res: int) -> LayerCalibration:
    """Rule 4 for an attention branch: its output projection is scaled (weight and bias) so
    the branch output's RMS is ``rho / sqrt(L)``, as the last layer of every other residual
    branch is. Before, only the FFN branches were scaled: a Transformer's attention branches
    kept the structural scale (an RMS near 1 against the FFN's 1/sqrt(L)), and torch's default
    (queries/keys/values at 0.71 and the projection at 0.58 of LeCun) trained the post-LN
    ``nn.TransformerEncoder`` of ``benchmarks/real_models.py`` to 0.008 held-out loss vs 0.037
    with the unscaled branch (AdamW, 200 steps, 5 seeds)."""
    w, bias = out.weight, out.bias
    before = _rms(w)
    lc = LayerCalibration(node.name, type(node.module).__name__, before, before)
    target = _base_target(cfg, st, None) / max(n_res, 1) ** RESIDUAL_EXPONENT
    m = measure(model, batches, node, None)
    if m.out.empty:
        lc.note = "attention branch: no output on the calibration batches; left as initialized"
        return lc
    it = 0
    pre = float(m.out.shifted_second_moment(torch.zeros_like(m.out.mean())).mean()
                .clamp_min(0).sqrt())
    # the branch output is linear in out_proj (a zero bias, one call): the rescale is exact
    exact = (bias is None or not bool(bias.detach().any())) and node.calls <= 1
    while pre > 0 and abs(target / pre - 1.0) > cfg.tol and it < cfg.max_iters:
        with torch.no_grad():
            w.mul_(target / pre)
            if bias is not None:
                bias.mul_(target / pre)
        it += 1
        if exact:
            pre = target
            break
        m = measure(model, batches, node, None)
        pre = float(m.out.shifted_second_moment(torch.zeros_like(m.out.mean())).mean()
                    .clamp_min(0).sqrt())
    lc.scale_after, lc.target_std, lc.pre_std = _rms(w), target, pre
    lc.iterations, lc.converged = it, pre > 0 and abs(target / pre - 1.0) <= cfg.tol
    lc.note = (f"attention branch: output projection scaled to target / {n_res}^"
               f"{RESIDUAL_EXPONENT:g}")
    return lc


def _calibrate_node(model: nn.Module, batches: list, node: LayerFacts, w: torch.Tensor,
                    cfg: WalkConfig, st: WalkState, n_res: int) -> LayerCalibration:
    module = node.module
    # behind a norm, the norm re-centres and re-scales: dead/saturated units are its business
    act = None if node.followed_by_norm else node.activation
    if node.name in st.sequence_tables:  # nothing to measure: its scale is kept
        rms = _rms(w)
        return LayerCalibration(
            node.name, type(module).__name__, rms, rms,
            note="lookup table of a sequence model (its output feeds a norm, attention or a "
                 "recurrence, or is summed with another table): its scale is kept, the "
                 "fan-in rule over rows is for sparse bags")
    m = measure(model, batches, node, act,
                columns=node.reads_input and node.kind in ("linear", "conv"))
    n_units = m.out.s1.numel() if m.out.s1 is not None else 0
    bias = bias_of(module, n_units)
    b0 = bias.detach().double().clone() if bias is not None else None  # structural bias
    before = _rms(w)
    lc = LayerCalibration(node.name, type(module).__name__, before, before)
    notes = []
    data = m.sparse is not None or m.columns is not None
    keep_scale = False
    if m.sparse is not None and cfg.target == "auto":
        notes.append(_sparse_rule(module, w, n_units, m, act, before))
        keep_scale = True
    elif m.columns is not None:
        note, added = _standardize(module, w, bias, m)
        notes.append(note)
        if added:
            st.added.append(f"init: layer {node.name!r} reads badly scaled raw input columns: "
                            f"{note}.")
    if node.followed_by_norm:
        notes.append(f"scale left to the following {node.followed_by_norm}")
        keep_scale = True
    if notes and any(notes):
        m = measure(model, batches, node, act)
    if m.out.empty:
        st.warn(f"init: layer {node.name!r} produced no output on the calibration batches; "
                f"left as initialized.")
        lc.note = "; ".join(x for x in notes if x)
        return lc
    target = None if keep_scale else _base_target(cfg, st, act)
    if target is not None and node.residual and n_res > 0:
        target /= n_res ** RESIDUAL_EXPONENT
        notes.append(f"residual branch: target / {n_res}^{RESIDUAL_EXPONENT:g}")
    # a data layer's measured RMS sets the body's scale (rho): measured, never predicted
    it, m, converged, p = _iterate(model, batches, node, w, bias, b0, act, m, target, cfg,
                                   notes, exact_off=data)
    if data:
        st.data_rms.append(p.pre_rms)
        st.rho = max(st.data_rms) if cfg.target == "auto" else st.rho
    lc.scale_after, lc.target_std, lc.pre_std = _rms(w), target, p.pre_rms
    lc.iterations, lc.converged = it, converged
    if _dies(act):
        lc.active_fraction = float((m.out.zmax > 0).double().mean())
    if _threshold(act) is not None:
        lc.saturated_fraction = float((m.out.sat / max(m.out.count, 1) > 0.5).double().mean())
    lc.note = "; ".join(x for x in notes if x)
    if not converged:
        st.warn(f"init: layer {node.name!r} did not converge within max_iters={cfg.max_iters} "
                f"(pre-activation rms {p.pre_rms:.4g}, target {target}, dead units {p.dead}, "
                f"saturated units {p.saturated}); raise max_iters or tol, or check the layer.")
    return lc


def sequence_tables(graph: Any) -> set[str]:
    """Names of the ``nn.Embedding`` layers that are a dense sequence model's token, position
    or type tables rather than a sparse model's field tables.

    One lookup per position whose output is normalized (followed by a norm, or reaching one
    through an add), summed with another table or a residual stream, or read by attention or
    a recurrence: BERT's word/position/type tables, GPT-2's wte/wpe, an LSTM LM's table. A
    table whose output is concatenated into an MLP (DLRM-style CTR fields) is not one: it
    keeps rule 2's fan-in rule over rows (FINDINGS 6: one rule does not fit both).
    """
    readers: dict[str, set[str]] = {}
    for n in graph.layers:
        for parent in n.parents:
            readers.setdefault(parent, set()).add(n.kind)
    out = set()
    for n in graph.layers:
        if n.kind != "embedding":
            continue
        if n.followed_by_norm or n.residual or readers.get(n.name, set()) & {
                "norm", "attention", "rnn"}:
            out.add(n.name)
    return out


def _mirrored(w: torch.Tensor, bias: torch.Tensor | None, n_units: int) -> bool:
    """Whether the layer's units come in looks-linear pairs: rows ``i`` and ``i + n/2`` of the
    weight (and the bias) are exact negatives (:mod:`initwise.policy._mirror`)."""
    if bias is None or n_units % 2 or w.dim() != 2 or w.shape[0] != n_units or n_units == 0:
        return False
    h = n_units // 2
    return bool(w[:h].any() and torch.equal(w[h:], -w[:h]) and torch.equal(bias[h:], -bias[:h]))


def _saturating_cap(node: LayerFacts, w: torch.Tensor, act: ActivationFacts | None,
                    n_units: int) -> float | None:
    """The largest weight RMS allowed before a saturating activation (rule 6), or ``None``."""
    if _threshold(act) is None:
        return None
    return SATURATING_MAX_GAIN * act.gain / math.sqrt(fan_in(node.module, w, n_units))


def _pure_rescale(p: _Plan, act: ActivationFacts | None, b0: torch.Tensor | None,
                  axis: int | None) -> bool:
    """Whether applying ``p`` multiplies the layer's output by ``p.scale`` and nothing else, so
    its statistics after it are known without a forward: no unit re-centred, flipped,
    re-drawn or shrunk, a zero structural bias (the bias scales with the weight), and no
    saturation count (which depends on the scale). Dead units are scale-invariant then."""
    return (p.dead == 0 and p.saturated == 0 and _threshold(act) is None
            and not bool(p.flip.any()) and not bool(p.redraw.any())
            and not bool((p.shrink != 1).any()) and not bool(p.dbias.any())
            and (b0 is None or not bool(b0.any())) and p.scale > 0)


def _iterate(model: nn.Module, batches: list, node: LayerFacts, w: torch.Tensor,
             bias: torch.Tensor | None, b0: torch.Tensor | None, act: ActivationFacts | None,
             m: Measurement,
             target: float | None, cfg: WalkConfig, notes: list[str],
             exact_off: bool = False) -> tuple:
    n_units = m.out.s1.numel()
    axis = unit_axis(node.module, w, n_units)
    pairs = _dies(act) and axis == 0 and _mirrored(w, bias, n_units)
    if pairs:
        notes.append("looks-linear pairs: a pair with a unit dead on the data is re-centred "
                     "together")
    hopeless = torch.zeros(n_units, dtype=torch.bool, device=m.out.s1.device)
    redrawn_units = torch.zeros_like(hopeless)
    redrawn = False
    it = 0
    while True:
        o = m.out
        if float(o.var().max()) <= _TINY * (1.0 + float((o.mean() ** 2).max())):
            if redrawn:
                notes.append("output constant even after a re-draw: its input is constant")
                return it, m, False, _plan(m, None, act, bias, None, hopeless, cfg.tol)
            with torch.no_grad():
                std = 1.0 / math.sqrt(fan_in(node.module, w, n_units))
                w.copy_(_randn(w.shape, cfg.generator, w) * std)
            redrawn, pairs = True, False  # a fresh i.i.d. draw: no pairs any more
            notes.append(f"re-drawn N(0, 1/fan_in): output was constant ({float(o.mean()[0]):.3g})")
            m = measure(model, batches, node, act)
            continue
        p = _plan(m, target, act, bias, b0, hopeless, cfg.tol, pairs)
        cap = _saturating_cap(node, w, act, n_units)
        if cap is not None and p.scale > 1.0 and _rms(w) * p.scale > cap:
            p.scale = max(cap / max(_rms(w), 1e-30), 1.0)
            if p.scale == 1.0 and not (p.dead or p.saturated):
                notes.append(f"scale capped at {SATURATING_MAX_GAIN:g}x the fan-in rule before "
                             f"the saturating {act.name}: its input varies too little across "
                             f"samples to reach the target (a collapsed signal upstream)")
                return it, m, False, p
        if p.ok or it >= cfg.max_iters:
            if p.dead or p.saturated:
                notes.append(f"{p.dead} dead / {p.saturated} saturated units left")
            return it, m, p.ok, p
        if axis is None:
            p.flip.zero_()
            p.redraw.zero_()
        hopeless |= redrawn_units & p.redraw
        redrawn_units |= p.redraw
        if p.pairs:  # a pair is hopeless (or re-drawn) as a whole
            h = n_units // 2
            hopeless[h:] |= hopeless[:h]
            redrawn_units[h:] |= redrawn_units[:h]
        # (a module called more than once reads its own output: not linear in its weight)
        exact = _pure_rescale(p, act, b0, axis) and not exact_off and node.calls <= 1
        _apply(p, w, axis, bias, b0, cfg.generator)
        it += 1
        if exact:  # z -> scale * z exactly: the next measurement would only confirm the target
            p.pre_rms *= p.scale
            p.scale, p.ok = 1.0, True
            return it, m, True, p
        m = measure(model, batches, node, act)
