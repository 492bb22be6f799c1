"""Forward checks: signal propagation, unit health, output scale and the loss at init.

Thresholds are calibrated in ``benchmarks/DOCTOR.md``; each docstring quotes its measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from initwise.doctor.check import Check
from initwise.doctor.diagnosis import LayerStats
from initwise.doctor.findings import Finding
from initwise.doctor.fixes import DATAINIT_SNIPPET, INIT_FIX, depth_fix
from initwise.measure import Measurements

__all__ = ["SIGNAL_CHECKS", "dead_fractions", "hidden_chain"]

CHAIN_KINDS = ("linear", "conv", "conv_transpose", "bilinear", "embedding_bag")
# Warning thresholds separate healthy setups from planted pitfalls; error thresholds separate
# setups that then learn from those that do not (benchmarks/DOCTOR.md, "Outcomes").
VANISH_RATIO, VANISH_ERROR = 1e-2, 5e-3
EXPLODE_RATIO, EXPLODE_ERROR = 10.0, 1e3
COLLAPSE_FRACTION, COLLAPSE_ERROR = 0.02, 5e-3
#: collapse below COLLAPSE_FRACTION is an error when a ReLU layer also has this dead fraction
COLLAPSE_DEAD = 0.3
DEAD_WARN, DEAD_ERROR = 0.6, 0.9
SAT_WARN, SAT_ERROR = 0.3, 0.5
LOGIT_WARN, LOGIT_ERROR = 5.0, 1e4
MISMATCH_RATIO = {"ce": 2.5, "bce": 2.5, "mse": 5.0}
MISMATCH_ERROR = {"ce": 1e4, "bce": 1e4, "mse": 50.0}
MISMATCH_EXCESS = 0.25


def hidden_chain(ctx: Measurements) -> list[LayerStats]:
    """Hidden layers whose scale nothing normalizes: in order; not the first layer, the output,
    a residual branch end or a zero-initialized layer."""
    return [
        s for s in ctx.layers
        if s.kind in CHAIN_KINDS and not s.is_output and not s.followed_by_norm
        and s.name != ctx.first_layer and s.pre_std is not None and math.isfinite(s.pre_std)
        # zero-initialized layers and residual branch ends are scaled down on purpose
        # (SkipInit, Fixup, GPT-2's 1/sqrt(2L)): the residual stream carries the signal
        and s.weight_norm != 0.0 and not s.residual
    ]


def reads_norm(ctx: Measurements, name: str) -> bool:
    """Whether layer ``name`` reads a norm's output (its nearest upstream layer is a norm):
    its input scale is the norm's, whatever the layers before it did."""
    f = ctx.facts.get(name)
    return f is not None and any(
        ctx.facts[p].kind == "norm" for p in f.parents if p in ctx.facts)


def _normalized_residual(ctx: Measurements) -> bool:
    """A normalized residual network (a Transformer): residual branches and norms."""
    return any(s.residual for s in ctx.layers) and any(
        f.kind == "norm" for f in ctx.facts.values())


def _fmt_layers(items: list[tuple[str, float]], fmt: str = ".3g") -> str:
    shown = ", ".join(f"{n}: {v:{fmt}}" for n, v in items[:5])
    return shown + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")


def check_signal_scale(ctx: Measurements) -> Iterable[Finding]:
    """signal.vanishing / signal.exploding: hidden pre-activation std along depth.

    Ratio of a layer's pre-activation std to the largest (vanishing) or smallest (exploding)
    std of any earlier hidden layer since the last norm (a layer reading a norm's output starts
    a new stretch: its input scale is the norm's; BERT's pooler, reading the last LayerNorm at
    the [CLS] position, measured 0.0045 x the encoder's FFN layers and was called vanishing).
    Healthy zoo setups (23 architectures x 5 seeds, MLPs up
    to 20 layers, CNNs, transformer, residual) stay within [0.20, 1.22]; torch's default on a
    10-layer ReLU MLP measures 5e-4, sigma_w = 0.5 tanh at depth 30 4e-9, a 2 x Kaiming gain at
    depth 10 104. Warning thresholds 1e-2 and 10.

    Errors (calibrated on outcomes, benchmarks/DOCTOR.md): all 9 setups measuring a vanishing
    ratio <= 3.4e-3 then failed to learn as it should (torch's default on 8-16 ReLU layers and
    16 tanh layers; the demo's model at 8 layers, 1.1e-3); the lowest ratio of a setup that
    learned was 0.032 (8 tanh layers, torch's default): error below 5e-3. The one exploding
    setup (104, a 2 x Kaiming gain) learned with Adam: error above 1e3 only, unless the
    diagnosis has an optimizer without per-parameter step normalization (SGD family): then any
    growth above 10 x is an error (the same setup with SGD 0.01 momentum 0.9 or SGD 0.05: fit
    0.00 against 0.999 after ``initwise.init``).
    """
    chain = hidden_chain(ctx)
    if len(chain) < 2:
        return
    run_max, run_min = chain[0].pre_std, chain[0].pre_std
    worst_v, worst_e = (None, 1.0), (None, 1.0)
    for s in chain[1:]:
        if reads_norm(ctx, s.name):  # a norm resets the scale: a new stretch of the chain
            run_max = run_min = s.pre_std
            continue
        if run_max > 0 and s.pre_std / run_max < worst_v[1]:
            worst_v = (s, s.pre_std / run_max)
        if run_min > 0 and s.pre_std / run_min > worst_e[1]:
            worst_e = (s, s.pre_std / run_min)
        run_max, run_min = max(run_max, s.pre_std), min(run_min, s.pre_std)
    profile = ", ".join(f"{s.pre_std:.2g}" for s in chain[:: max(1, len(chain) // 8)])
    auto, note = depth_fix({s.activation for s in chain})
    why = ("Each layer multiplies the signal variance by sigma_w^2 E[phi'(z)^2]-like factors; "
           "away from 1 the signal decays or grows geometrically with depth (Poole et al. 2016, "
           "arXiv:1606.05340; He et al. 2015, arXiv:1502.01852).")
    if worst_v[0] is not None and worst_v[1] < VANISH_RATIO:
        yield Finding(
            check="signal.vanishing",
            severity="error" if worst_v[1] < VANISH_ERROR else "warning",
            where=worst_v[0].name,
            evidence=f"pre-activation std falls to {worst_v[1]:.2g} x its earlier maximum at "
            f"{worst_v[0].name} (expected >= {VANISH_RATIO:g}); hidden stds: {profile}.",
            why=why,
            fix="Use a variance-preserving init for each layer's activation (Kaiming for "
            "ReLU) or calibrate on data (initwise.init)." + note,
            fix_code=DATAINIT_SNIPPET,
            metrics={"ratio": worst_v[1], "pre_std": [s.pre_std for s in chain]},
            fix_id=auto,
        )
    if worst_e[0] is not None and worst_e[1] > EXPLODE_RATIO:
        yield Finding(
            check="signal.exploding",
            severity="error" if worst_e[1] > EXPLODE_ERROR or _plain_sgd(ctx) else "warning",
            where=worst_e[0].name,
            evidence=f"pre-activation std grows to {worst_e[1]:.3g} x its earlier minimum at "
            f"{worst_e[0].name} (expected <= {EXPLODE_RATIO:g}); hidden stds: {profile}.",
            why=why,
            fix="Scale the weights down to the critical gain, or calibrate on data "
            "(initwise.init)." + note,
            fix_code=DATAINIT_SNIPPET,
            metrics={"ratio": worst_e[1], "pre_std": [s.pre_std for s in chain]},
            fix_id=auto,
        )


def _plain_sgd(ctx: Measurements) -> bool:
    """True when the diagnosis has an optimizer whose steps scale with the raw gradient (no
    Adam-style ``betas``, not Adagrad / RMSprop / Adadelta): a too-large gain then blows up."""
    opt = ctx.optimizer
    if opt is None:
        return False
    adaptive = (torch.optim.Adagrad, torch.optim.RMSprop, torch.optim.Adadelta)
    return not isinstance(opt, adaptive) and not any("betas" in g for g in opt.param_groups)


def check_correlation_collapse(ctx: Measurements) -> Iterable[Finding]:
    """signal.correlation_collapse: every sample maps to (nearly) the same representation.

    Signal fraction = sum of per-unit variances / sum of per-unit second moments
    (= 1 - mean pairwise correlation). Healthy zoo setups measure >= 0.09 (the lowest: a
    20-layer Kaiming ReLU MLP, whose correlations drift toward 1 with depth); a bias of 5 with
    small weights measures 2e-10. Warning threshold 0.02 on any hidden layer.

    Error (calibrated on outcomes, benchmarks/DOCTOR.md) when the lowest fraction is below
    5e-3, or below 0.02 while a ReLU-family layer also has >= 30 % units dead on the batch (the
    combined rule: a collapsed ReLU layer is on or off for the whole batch, so collapse and
    dead units together leave a few nearly identical linear units). All 11 setups below 5e-3
    failed to learn as they should (the demo's model at 4 and 8 layers: 2.4e-3, 1.3e-6; torch's
    default on 8-16 ReLU layers and 16 tanh layers; sigmoid and ordered tanh chains; dead
    biases), and so did inputs of mean 10 (0.011 with 41 % dead); the lowest fraction of a
    setup that learned was 0.017 (8 tanh layers, no ReLU units).

    In a normalized residual network (residual branches and norms: a Transformer), a collapse
    only at layers reading a norm's output is an info: the stream at one position is nearly
    sample-independent while attention is nearly uniform, and these models learn from there.
    """
    chain = [s for s in hidden_chain(ctx)
             if s.signal_fraction is not None and math.isfinite(s.signal_fraction)
             and (s.rms or 0) > 0]
    bad = [(s.name, s.signal_fraction) for s in chain if s.signal_fraction < COLLAPSE_FRACTION]
    if not bad:
        return
    worst = min(bad, key=lambda t: t[1])
    if _normalized_residual(ctx) and all(reads_norm(ctx, n) for n, _ in bad):
        yield _attention_collapse_note(bad, worst)
        return
    dead = max((frac for _, frac in dead_fractions(ctx)), default=0.0)
    combined = dead >= COLLAPSE_DEAD
    auto, note = depth_fix({s.activation for s in chain})
    yield Finding(
        check="signal.correlation_collapse",
        severity="error" if worst[1] < COLLAPSE_ERROR or combined else "warning",
        where=worst[0],
        evidence=f"signal fraction (1 - mean correlation between samples) {_fmt_layers(bad)}; "
        f"expected >= {COLLAPSE_FRACTION}"
        + (f"; with {dead:.0%} of a ReLU layer's units dead on the batch" if dead > 0 else "")
        + ".",
        why="In the ordered phase, or with large biases, all inputs converge to one representation "
        "and the network cannot tell samples apart (Schoenholz et al. 2017, arXiv:1611.01232).",
        fix="Lower the bias scale / center the inputs, or calibrate on data (initwise.init)."
        + note,
        fix_code=DATAINIT_SNIPPET,
        metrics={"signal_fraction": dict(bad), "dead_fraction": dead},
        fix_id=auto,
    )


def _attention_collapse_note(bad: list[tuple[str, float]], worst: tuple[str, float]) -> Finding:
    """Collapse read off a normalized residual network's stream: info, not a pitfall."""
    return Finding(
        check="signal.correlation_collapse",
        severity="info",
        where=worst[0],
        evidence=f"signal fraction (1 - mean correlation between samples) {_fmt_layers(bad)}, "
        f"at layer(s) reading a norm of a normalized residual network.",
        why="At init a Transformer's attention is nearly uniform (small query/key weights), so "
        "a feature read at one position ([CLS], a pooled token) is nearly the same for every "
        "sample until attention learns to look at content; it does from the first steps "
        "(BERT, DistilBERT and RoBERTa measure 1e-5 here and train from this init).",
        fix="Nothing to fix at init; if it persists in training, look at the attention's "
        "learning rate and the pooling.",
        metrics={"signal_fraction": dict(bad)},
    )


def dead_fractions(ctx: Measurements) -> list[tuple[str, float]]:
    """``(layer, fraction of units never active on the batch)`` for ReLU-family layers."""
    out = []
    for s in ctx.layers:
        plan = ctx.facts[s.name]
        if plan.act is None or not plan.act.relu_family or not s.units or s.dead_units is None:
            continue
        out.append((s.name, s.dead_units / s.units))
    return out


def check_dead(ctx: Measurements) -> Iterable[Finding]:
    """units.dead: ReLU-family units never active on ANY sample of the batch.

    Half-zero outputs are healthy ReLU behaviour; only units with max over the batch <= 0
    count. Healthy zoo setups measure <= 41 % (a 20-layer Kaiming MLP on a batch of 32; <= 20 %
    at batch 256); biases of -3 (MLP) and -5 (CNN) kill 100 %. Warning at >= 60 %, error at
    >= 90 %. Fewer dead units alone do not predict the outcome (torch's default on 4 ReLU
    layers: 18 % dead, learned; the demo's model: 36-52 %, did not, with its signal
    collapsed): that combination is ``signal.correlation_collapse``'s error rule.
    """
    bad = [(name, frac) for name, frac in dead_fractions(ctx) if frac >= DEAD_WARN]
    if not bad:
        return
    worst = max(frac for _, frac in bad)
    yield Finding(
        check="units.dead",
        severity="error" if worst >= DEAD_ERROR else "warning",
        where=bad[0][0],
        evidence=f"fraction of units never active on any of {ctx.data.n_rows} samples: "
        f"{_fmt_layers(bad, '.0%')}; expected < {DEAD_WARN:.0%}.",
        why="A ReLU unit that is negative on every input gets zero gradient and never recovers "
        "(Lu et al. 2019, arXiv:1903.06733 'Dying ReLU and Initialization').",
        fix="Remove large negative biases / center the inputs, or calibrate on data "
        "(initwise.init revives dead units).",
        fix_code=DATAINIT_SNIPPET,
        metrics={"dead_fraction": dict(bad)},
        fix_id=INIT_FIX,
    )


def check_saturated(ctx: Measurements) -> Iterable[Finding]:
    """units.saturated: tanh/sigmoid-family inputs in the flat region (phi' < 0.1 max phi').

    Healthy zoo tanh nets (torch's 5/3 gain, LeCun) measure <= 11.2 % saturated elements;
    sigma_w = 3 tanh (chaotic) measures 53 %, sigmoid with 10 x LeCun weights 71 %. Warning
    above 30 %, error above 50 % (outcomes: both did not learn as they should; every setup
    that learned measured <= 11.2 %). During training (a monitor's measurements, preset
    "train") trained tanh nets sit at 31-35 % on healthy runs (benchmarks/monitor_faults.py), so
    the warning starts at the error threshold there.
    """
    warn = SAT_ERROR if ctx.preset == "train" else SAT_WARN
    bad = [(s.name, s.saturated_fraction) for s in ctx.layers
           if s.saturated_fraction is not None and s.saturated_fraction > warn]
    if not bad:
        return
    worst = max(v for _, v in bad)
    yield Finding(
        check="units.saturated",
        severity="error" if worst > SAT_ERROR else "warning",
        where=max(bad, key=lambda t: t[1])[0],
        evidence=f"fraction of saturated pre-activations: {_fmt_layers(bad, '.0%')}; expected <= "
        f"{warn:.0%}.",
        why="Saturated units pass almost no gradient (Glorot & Bengio 2010, 'Understanding the "
        "difficulty of training deep feedforward neural networks').",
        fix="Reduce the weight scale to the activation's gain (Xavier/LeCun), or calibrate on "
        "data (initwise.init).",
        fix_code=DATAINIT_SNIPPET,
        metrics={"saturated_fraction": dict(bad)},
        fix_id=INIT_FIX,
    )


def check_logit_scale(ctx: Measurements) -> Iterable[Finding]:
    """output.logit_scale: logits so large that the softmax/sigmoid is saturated at init.

    Per-sample std of the logits across classes (CE) or overall std (BCE). Healthy zoo heads
    (Kaiming, Xavier, torch default, zero, data-calibrated) measure <= 1.33; logits x 100
    measure 91. Warning above 5, error above 1e4: with Adam the head's scale is undone within
    the budget (outcomes: logits x 100, a 2 x Kaiming gain (1.5e3) and raw pixels (27) all
    learned; only raw tabular columns (3.3e8) did not).
    """
    scale = ctx.output.get("class_std") if ctx.loss_kind == "ce" else ctx.output.get("std")
    if ctx.loss_kind not in ("ce", "bce") or scale is None or not math.isfinite(scale):
        return
    if scale <= LOGIT_WARN:
        return
    yield Finding(
        check="output.logit_scale",
        severity="error" if scale > LOGIT_ERROR else "warning",
        where=ctx.output.get("layer") or "model",
        evidence=f"logit std {scale:.3g} at init ({ctx.output.get('source', 'output')}); "
        "expected <= "
        f"{LOGIT_WARN:g}.",
        why="Large initial logits make confident random predictions: the loss starts far above "
        "log(C) and the first steps only undo the scale (Karpathy 2019, 'A Recipe for "
        "Training Neural Networks').",
        fix="Scale the output layer down and set its bias to the log label prior "
        "(initwise.init calibrates the output).",
        fix_code=DATAINIT_SNIPPET,
        metrics={"logit_std": scale},
        fix_id=INIT_FIX,
    )


def check_loss(ctx: Measurements) -> Iterable[Finding]:
    """loss.nonfinite and loss.init_mismatch: the loss at init against the label prior.

    The best constant predictor's loss (label-prior entropy for CE/BCE, target variance for
    MSE) is what a well-initialized model starts at. Healthy zoo setups measure loss0 / prior
    <= 1.41 (CE), 1.43 (BCE), 2.93 (MSE: output variance adds to the target variance); zero
    bias on 99:1 labels 12, logits x 100 65, MSE on 0/1 targets 53, targets of mean 50 2.5e3.
    Warning above 2.5 (CE/BCE) / 5 (MSE) when the excess is also > 0.25 nats (0.25 x target
    variance for MSE); error above 1e4 (CE/BCE) / 50 (MSE), from outcomes: CE ratios up to 870
    (a 2 x Kaiming gain) learned, 2.2e8 (raw tabular columns) did not; MSE at 53 (0/1 targets)
    and 2.5e3 (targets of mean 50) did not learn as they should. With fewer than 10 targets
    per class (a language model's vocabulary on a small batch) the batch cannot estimate the
    prior and the uniform predictor's log C is the reference.
    """
    if ctx.loss0 is None:
        return
    if not math.isfinite(ctx.loss0):
        yield Finding(
            check="loss.nonfinite",
            severity="error",
            where="loss",
            evidence=f"loss at init is {ctx.loss0}; expected a finite number.",
            why="A non-finite loss gives non-finite gradients: the first step destroys the "
            "weights.",
            fix="Find the NaN/Inf source: inputs (data.nonfinite), overflowing activations, or "
            "log(0) in a custom loss.",
            fix_code="torch.autograd.set_detect_anomaly(True)",
            metrics={"loss": str(ctx.loss0)},
        )
        return
    if ctx.prior is None or ctx.loss_kind is None:
        return
    ratio = ctx.loss0 / max(ctx.prior, 1e-12)
    excess = ctx.loss0 - ctx.prior
    floor = MISMATCH_EXCESS * (ctx.prior if ctx.loss_kind == "mse" else 1.0)
    if ratio <= MISMATCH_RATIO[ctx.loss_kind] or excess <= floor:
        return
    yield Finding(
        check="loss.init_mismatch",
        severity="error" if ratio > MISMATCH_ERROR[ctx.loss_kind] else "warning",
        where="loss",
        evidence=f"{ctx.loss_kind} loss at init {ctx.loss0:.4g} vs the label-prior loss "
        f"{ctx.prior:.4g} (ratio {ratio:.3g}; expected <= {MISMATCH_RATIO[ctx.loss_kind]:g}).",
        why="A well-initialized model starts at the loss of the best constant predictor; the "
        "excess is spent in the first steps undoing the init (Karpathy 2019, 'A Recipe for "
        "Training Neural Networks': verify loss @ init).",
        fix="Set the output bias to the log label prior (mean target for MSE) and keep the output "
        "small, or let initwise calibrate the output layer.",
        fix_code=DATAINIT_SNIPPET,
        metrics={"loss": ctx.loss0, "prior": ctx.prior, "ratio": ratio},
        fix_id=INIT_FIX,
    )


_BOTH = frozenset({"init", "train"})

#: The forward checks. ``phase``: signal scale, correlation collapse and dead or saturated
#: units are failures at any step; the logit scale and the loss against the label prior
#: describe the *initial* model (trained logits are large on purpose), so they run at init only.
SIGNAL_CHECKS = (
    Check(name="initwise.signal_scale", codes=("signal.vanishing", "signal.exploding"),
          fn=check_signal_scale, phase=_BOTH),
    Check(name="initwise.correlation_collapse", codes=("signal.correlation_collapse",),
          fn=check_correlation_collapse, phase=_BOTH),
    Check(name="initwise.units_dead", codes=("units.dead",), fn=check_dead, phase=_BOTH),
    Check(name="initwise.units_saturated", codes=("units.saturated",), fn=check_saturated,
          phase=_BOTH),
    Check(name="initwise.logit_scale", codes=("output.logit_scale",), fn=check_logit_scale),
    Check(name="initwise.loss", codes=("loss.nonfinite", "loss.init_mismatch"), fn=check_loss),
)
