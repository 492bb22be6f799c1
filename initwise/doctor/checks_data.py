"""Data checks: what the batch looks like, and whether the first layer compensates for it.

Thresholds are calibrated in ``benchmarks/DOCTOR.md`` (healthy reference inits over several
seeds against the zoo's broken setups); each docstring quotes its measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from initwise.doctor.check import Check
from initwise.doctor.findings import Finding
from initwise.doctor.fixes import DATAINIT_SNIPPET, INIT_FIX
from initwise.measure import Measurements

__all__ = ["DATA_CHECKS"]

UNSCALED_STD = 30.0
UNSCALED_RATIO = 100.0
UNSCALED_PRE_STD = 30.0
UNCENTERED_COMMON = 0.8
UNCENTERED_SIGNAL = 0.2
SPARSE_PRE_STD = 1.5
CONSTANT_WARN = 0.5
IMBALANCE_WARN = 20.0
IMBALANCE_INFO = 5.0


def check_nonfinite(ctx: Measurements) -> Iterable[Finding]:
    """data.nonfinite: any NaN/Inf among the inputs (always an error; nothing to calibrate)."""
    p = ctx.data
    if p.nonfinite:
        yield Finding(
            check="data.nonfinite",
            severity="error",
            where="data",
            evidence=f"{p.nonfinite} NaN/Inf value(s) in the inputs (features "
            f"{p.nonfinite_features}); "
            f"expected 0.",
            why="One NaN input makes every activation and gradient it touches NaN; training "
            "diverges at the first step.",
            fix="Impute or drop the non-finite values before training.",
            fix_code="X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)",
            metrics={"count": p.nonfinite, "features": p.nonfinite_features},
        )


def check_nonfinite_weight(ctx: Measurements) -> Iterable[Finding]:
    """model.nonfinite_weight: a parameter that already holds NaN/Inf (one finding per tensor).

    No threshold: a single non-finite weight makes every output it reaches NaN, whatever the
    data; the finding names the parameter, so the fix is not searched for in the data.
    """
    for name, p in ctx.params.items():
        if not (p.is_floating_point() or p.is_complex()) or p.numel() == 0:
            continue
        bad = ~torch.isfinite(p.detach())
        n_bad = int(bad.sum())
        if not n_bad:
            continue
        first = [int(i) for i in bad.nonzero()[0].tolist()]
        module = name.rsplit(".", 1)[0] if "." in name else "<model>"
        yield Finding(
            check="model.nonfinite_weight",
            severity="error",
            where=module,
            evidence=f"parameter {name!r} holds {n_bad} NaN/Inf value(s) of {p.numel()} "
            f"(first at index {first}); expected 0.",
            why="A non-finite weight makes every activation it touches NaN/Inf, so the loss and "
            "all gradients are NaN from the first step, whatever the data.",
            fix=f"Re-initialize {name!r} (initwise.apply(model) or the module's "
            f"reset_parameters()), or reload a checkpoint saved before training diverged.",
            fix_code="initwise.apply(model, seed=0)",
            metrics={"parameter": name, "count": n_bad, "numel": int(p.numel())},
        )


def _first_weight(ctx: Measurements) -> torch.Tensor | None:
    if ctx.first_layer is None:
        return None
    module = ctx.facts[ctx.first_layer].module
    w = getattr(module, "weight", None)
    n = ctx.data.n_features
    if isinstance(w, torch.Tensor) and w.dim() == 2 and n is not None and w.shape[1] == n:
        # an initwise.nn input standardization scales column j by inv_scale_j before the weight
        inv = module._buffers.get("initwise_input_inv_scale")
        return w.detach() * inv.reshape(1, -1) if inv is not None else w.detach()
    return None


def check_unscaled(ctx: Measurements) -> Iterable[Finding]:
    """data.unscaled: dense features far from unit scale that the first layer does not absorb.

    Data condition: max feature std > 30, or max/median std > 100 (the zoo's healthy dense
    setups, 5 seeds: max std <= 1.45; raw tabular columns: 2e9). Model condition (when the
    first layer is a Linear over the features): the largest per-feature variance contribution
    ``std_j^2 ||W[:, j]||^2`` exceeds 100 x the median, or the first layer's pre-activation
    std exceeds 30; a first layer that folds in the standardization (``initwise.init``)
    passes, and so does one followed by a norm layer.
    """
    p = ctx.data
    if p.layout != "dense" or p.sparse or p.std is None:
        return
    live = p.std[p.std > 0]
    if live.numel() == 0:
        return
    smax, smed = float(live.max()), float(live.median())
    if not (smax > UNSCALED_STD or smax / smed > UNSCALED_RATIO):
        return
    metrics = {"max_std": smax, "median_std": smed}
    w = _first_weight(ctx)
    first = ctx.layer(ctx.first_layer) if ctx.first_layer else None
    if first is not None and first.pre_std is not None:
        metrics["first_pre_std"] = first.pre_std
    if first is not None and first.followed_by_norm:
        return  # the norm after the first layer rescales whatever the data's scale is
    if w is not None:
        contrib = (p.std.to(w.device, torch.float64) ** 2) * (w.double() ** 2).sum(0)
        c = contrib[p.std.to(w.device) > 0]
        metrics["contribution_ratio"] = float(c.max() / c.median().clamp_min(1e-300))
        absorbed = metrics["contribution_ratio"] <= UNSCALED_RATIO and \
            metrics.get("first_pre_std", 0.0) <= UNSCALED_PRE_STD
        if absorbed:
            return
    elif "first_pre_std" in metrics and metrics["first_pre_std"] <= UNSCALED_PRE_STD:
        return  # e.g. a convolution whose weights already absorb the pixel scale
    severity = "error" if smax > 1e3 * max(smed, 1.0) or smax > 1e4 else "warning"
    yield Finding(
        check="data.unscaled",
        severity=severity,
        where=ctx.first_layer or "data",
        evidence=f"feature std ranges up to {smax:.3g} (median {smed:.3g}); expected within "
        "~[0.1, 10] "
        f"after standardization"
        + (f"; first-layer pre-activation std {metrics['first_pre_std']:.3g}"
           if "first_pre_std" in metrics else "") + ".",
        why="Weight scales assume unit-scale inputs (He et al. 2015, arXiv:1502.01852); a few "
        "huge columns dominate every pre-activation and the loss, so the network learns nothing.",
        fix="Standardize the features, or let initwise add an input standardization to the first "
        "layer.",
        fix_code=DATAINIT_SNIPPET,
        metrics=metrics,
        fix_id=INIT_FIX,
    )


def check_uncentered(ctx: Measurements) -> Iterable[Finding]:
    """data.uncentered: dense inputs whose mean carries most of their energy, not absorbed.

    Data condition: ||mean||^2 / E||x||^2 > 0.8 (healthy zoo setups <= 0.05; inputs N(10, 1):
    0.99). Model condition: the first layer's signal fraction (per-unit variance over second
    moment) < 0.2, i.e. each unit's output is mostly one constant offset; skipped when a norm
    layer follows the first layer.
    """
    p = ctx.data
    if p.layout != "dense" or p.sparse or p.common_mode is None or \
            p.common_mode <= UNCENTERED_COMMON:
        return
    metrics = {"common_mode": p.common_mode}
    first = ctx.layer(ctx.first_layer) if ctx.first_layer else None
    if first is not None:
        if first.followed_by_norm:
            return
        if first.signal_fraction is not None and math.isfinite(first.signal_fraction):
            metrics["first_signal_fraction"] = first.signal_fraction
            if first.signal_fraction >= UNCENTERED_SIGNAL:
                return
    yield Finding(
        check="data.uncentered",
        severity="warning",
        where=ctx.first_layer or "data",
        evidence=f"the feature mean carries {p.common_mode:.0%} of the input energy (expected < "
        "80%)"
        + (f"; first-layer signal fraction {metrics['first_signal_fraction']:.3g} "
           f"(expected >= {UNCENTERED_SIGNAL})" if "first_signal_fraction" in metrics else "")
        + ".",
        why="With a large common mode every first-layer unit sees nearly the same input on every "
        "sample: ReLU units are on or off for the whole batch and gradients share one direction "
        "(LeCun et al. 1998, Efficient BackProp).",
        fix="Center the features, or let initwise fold the centering into the first layer's bias.",
        fix_code=DATAINIT_SNIPPET,
        metrics=metrics,
        fix_id=INIT_FIX,
    )


def check_sparse_fan_in(ctx: Measurements) -> Iterable[Finding]:
    """data.sparse_fan_in: a sparse input's first layer whose rows are large random vectors.

    On sparse rows (k non-zeros out of n features) a first layer initialized as N(0, 1) (the
    ``nn.Embedding(Bag)`` default) or with unit variance per non-zero makes every example's
    representation a sum of k large random vectors. FINDINGS.md 1: pre-activation std 3.5 ->
    27 % accuracy, 1.0 -> 39 %, 0.03 (Kaiming on the (out, in) view) -> 61 %. Threshold:
    first-layer pre-activation std > 1.5 on input with density < 1 % (Kaiming and torch's
    Linear default measure <= 0.054 in the zoo, initwise.init too; N(0, 1) tables 6-7.4).
    """
    p = ctx.data
    first = ctx.layer(ctx.first_layer) if ctx.first_layer else None
    if not p.sparse or first is None or first.pre_std is None:
        return
    if not first.pre_std > SPARSE_PRE_STD:
        return
    n = p.n_features or getattr(ctx.facts[first.name].module, "num_embeddings", None)
    yield Finding(
        check="data.sparse_fan_in",
        severity="warning",
        where=first.name,
        evidence=f"first layer on sparse input ({p.nnz_per_row:.3g} non-zeros per row of {n} "
        "features) "
        f"has pre-activation std {first.pre_std:.3g}; expected <= {SPARSE_PRE_STD}.",
        why="With k non-zeros per row the effective fan-in is k, not n: a large per-feature weight "
        "turns each row into a sum of k big random vectors that rare features cannot unlearn "
        "(measured in initwise FINDINGS.md 1; Glorot & Bengio 2010 for the fan-in rule).",
        fix="Initialize the sparse first layer from its data (initwise.init), or with a small "
        "per-feature scale such as Kaiming on the (out, in) view.",
        fix_code=DATAINIT_SNIPPET,
        metrics={"pre_std": first.pre_std, "nnz_per_row": p.nnz_per_row, "n_features": n},
        fix_id=INIT_FIX,
    )


def check_constant_feature(ctx: Measurements) -> Iterable[Finding]:
    """data.constant_feature: dense columns constant over the batch.

    Info for a few (normal for one-hot columns absent from a batch); warning when >= 50 % of
    the columns are constant: the fan-in then counts dead inputs and every fan-in-based init
    is too small by sqrt(live fraction).
    """
    p = ctx.data
    if p.layout != "dense" or p.sparse or p.std is None or p.n_rows < 8:
        return
    const = torch.nonzero(p.std == 0).flatten()
    if const.numel() == 0:
        return
    frac = const.numel() / max(p.n_features or 1, 1)
    yield Finding(
        check="data.constant_feature",
        severity="warning" if frac >= CONSTANT_WARN else "info",
        where="data",
        evidence=f"{const.numel()} of {p.n_features} features ({frac:.0%}) are constant over the "
        "batch "
        f"(e.g. {const[:5].tolist()}); expected < {CONSTANT_WARN:.0%}.",
        why="Constant columns carry no information but count in the fan-in, so fan-in-based "
        "inits under-scale the layer by sqrt(live fraction).",
        fix="Drop the constant columns (or confirm they vary on the full data).",
        fix_code="X = X[:, X.std(0) > 0]",
        metrics={"count": int(const.numel()), "fraction": frac},
    )


def _class_counts(ctx: Measurements) -> torch.Tensor | None:
    t = torch.as_tensor(ctx.targets).detach().cpu()
    if ctx.loss_kind == "ce":
        flat = t.reshape(-1).long()
        flat = flat[flat >= 0]
        return torch.bincount(flat).double() if flat.numel() else None
    if ctx.loss_kind == "bce" and t.numel() == t.shape[0]:
        pos = float(t.double().sum())
        return torch.tensor([t.numel() - pos, pos], dtype=torch.float64)
    return None


def check_label_imbalance(ctx: Measurements) -> Iterable[Finding]:
    """data.label_imbalance: majority/minority class ratio in the batch (classification only).

    Warning at >= 20 : 1, info at >= 5 : 1. Uniform labels in the zoo's healthy batches (32-256
    rows) measure <= 9 (small batches); 99:1 labels measure 63. Per-token labels (a language
    model's, targets with a sequence axis) get an info at most: token frequencies follow the
    vocabulary's law (66 : 1 in one batch of a Markov-chain LM that trains well), which is
    the data, not a pitfall.
    """
    if ctx.targets is None or ctx.loss_kind not in ("ce", "bce"):
        return
    counts = _class_counts(ctx)
    if counts is None:
        return
    seen = counts[counts > 0]
    if seen.numel() < 2:
        return
    ratio = float(seen.max() / seen.min())
    ctx.extra["class_ratio"] = ratio
    if ratio < IMBALANCE_INFO:
        return
    yield Finding(
        check="data.label_imbalance",
        severity="warning" if ratio >= IMBALANCE_WARN and not _per_token(ctx) else "info",
        where="data",
        evidence=f"majority/minority class ratio {ratio:.3g} : 1 in the batch; expected < "
        f"{IMBALANCE_WARN:.0f} : 1.",
        why="A rare class contributes little gradient; with a zero output bias the initial loss "
        "is far above the label-prior entropy (Karpathy 2019, 'A Recipe for Training Neural "
        "Networks').",
        fix="Set the output bias to the log label prior (initwise.init does) and consider class "
        "weights or resampling.",
        fix_code="loss = nn.CrossEntropyLoss(weight=1.0 / class_counts)",
        metrics={"ratio": ratio, "counts": [int(c) for c in counts.tolist()[:50]]},
    )


def _per_token(ctx: Measurements) -> bool:
    """Cross-entropy targets with a sequence axis (``(batch, positions)``: an LM's)."""
    t = ctx.targets
    return ctx.loss_kind == "ce" and isinstance(t, torch.Tensor) and t.dim() >= 2 \
        and not t.is_floating_point()


_BOTH = frozenset({"init", "train"})

#: The data checks. ``phase``: the batch's own properties (non-finite values, constant
#: features, label imbalance) matter during training too; scale, centering and sparse fan-in
#: compare the data with the first layer's *initial* weights, so they run at init only.
DATA_CHECKS = (
    Check(name="initwise.data_nonfinite", codes=("data.nonfinite",), fn=check_nonfinite,
          phase=_BOTH),
    Check(name="initwise.model_nonfinite_weight", codes=("model.nonfinite_weight",),
          fn=check_nonfinite_weight, phase=_BOTH),
    Check(name="initwise.data_unscaled", codes=("data.unscaled",), fn=check_unscaled),
    Check(name="initwise.data_uncentered", codes=("data.uncentered",), fn=check_uncentered),
    Check(name="initwise.data_sparse_fan_in", codes=("data.sparse_fan_in",),
          fn=check_sparse_fan_in),
    Check(name="initwise.data_constant_feature", codes=("data.constant_feature",),
          fn=check_constant_feature, phase=_BOTH),
    Check(name="initwise.data_label_imbalance", codes=("data.label_imbalance",),
          fn=check_label_imbalance, phase=_BOTH),
)
