"""Backward and step checks: gradients, update ratios, low-precision underflow, theory depth.

Thresholds are calibrated in ``benchmarks/DOCTOR.md``; each docstring quotes its measurement.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable

import numpy as np
import torch

from initwise.doctor.check import Check
from initwise.doctor.findings import Finding
from initwise.doctor.fixes import DATAINIT_SNIPPET, INIT_FIX, depth_fix
from initwise.measure import Measurements
from initwise.theory import max_trainable_depth

__all__ = ["GRAD_CHECKS", "depth_role"]

GRAD_KINDS = ("linear", "conv", "conv_transpose", "bilinear")
GRAD_VANISH, GRAD_EXPLODE = 1e-3, 1e3
#: error thresholds, calibrated on outcomes (benchmarks/DOCTOR.md): below / above these the
#: setups of the zoo did not learn as they should
GRAD_VANISH_ERROR, GRAD_EXPLODE_ERROR = 1e-4, 1e3
UPDATE_WARN, UPDATE_ERROR, UPDATE_TINY = 0.3, 1.0, 1e-7
LOST_WARN = 0.5
LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_grad_none(ctx: Measurements) -> Iterable[Finding]:
    """grad.none: trainable parameters that receive no gradient from the loss.

    Exact (autograd reports them as unused): no threshold. Frozen parameters
    (``requires_grad=False``) are by choice and not reported.
    """
    if ctx.grads is None:
        return
    missing = [n for n, g in ctx.grads.items() if g is None and ctx.params[n].requires_grad]
    if not missing:
        return
    n_el = sum(ctx.params[n].numel() for n in missing)
    yield Finding(
        check="grad.none",
        severity="warning",
        where=missing[0].rsplit(".", 1)[0] or "model",
        evidence=f"{len(missing)} trainable parameter(s) ({n_el} values) get no gradient: "
        f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; expected none.",
        why="A parameter outside the loss's autograd graph never trains (an unused or detached "
        "branch, or a module called under no_grad).",
        fix="Use the branch in forward(), remove it, or freeze it explicitly "
        "(requires_grad_(False)).",
        fix_code="for n, p in model.named_parameters():\n    if p.grad is None: print(n)",
        metrics={"parameters": missing[:50], "values": n_el},
    )


def _grad_chain(ctx: Measurements) -> list[tuple[str, float]]:
    # A zero-initialized layer (zero head, SkipInit/Fixup branch ends) blocks the gradient to
    # the layers before it at step 0 by design: their zero gradients are not a finding.
    zero_init = any(s.weight_norm == 0.0 for s in ctx.layers if s.kind in GRAD_KINDS)
    out = []
    for s in ctx.layers:
        if s.kind not in GRAD_KINDS or s.grad_norm is None or not s.weight_norm:
            continue
        if (zero_init and s.grad_norm == 0.0) or s.residual:
            continue  # residual branch ends are small by design: their relative grad is large
        if s.name == ctx.first_layer and ctx.data.sparse:
            continue  # sparse rows touch few columns: its relative gradient is small by design
        out.append((s.name, s.grad_norm / s.weight_norm))
    return out


def _body(ctx: Measurements, chain: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``chain`` without the output layer(s): from the graph, else the last weight layer run."""
    outs = {s.name for s in ctx.layers if s.is_output}
    if not outs:
        outs = set([s.name for s in ctx.layers if s.kind in GRAD_KINDS][-1:])
    return [c for c in chain if c[0] not in outs]


_INDEX = re.compile(r"\d+")


def depth_role(name: str) -> str:
    """A layer's role in a stack of repeated blocks: its name with every index run as ``#``.

    Example:
        >>> depth_role("bert.encoder.layer.11.attention.self.query"), depth_role("net.4")
        ('bert.encoder.layer.#.attention.self.query', 'net.#')
    """
    return _INDEX.sub("#", name)


def _by_depth(chain: list[tuple[str, float]]) -> list[list[tuple[str, float]]]:
    """The chain split into same-role layers at increasing depth (:func:`depth_role`); the
    whole chain when no role repeats (a network without repeated blocks)."""
    roles: dict[str, list[tuple[str, float]]] = {}
    for item in chain:
        roles.setdefault(depth_role(item[0]), []).append(item)
    groups = [g for g in roles.values() if len(g) >= 2]
    return groups or [chain]


def _worst(groups: list[list[tuple[str, float]]]) -> tuple[tuple, tuple]:
    """((layer, ratio, later layer) of the worst vanishing, and of the worst exploding, ratio)."""
    worst_v, worst_e = (None, 1.0, None), (None, 1.0, None)
    for group in groups:
        for i, (name, value) in enumerate(group[:-1]):
            hi = max(group[i + 1:], key=lambda t: t[1])
            lo = min(group[i + 1:], key=lambda t: t[1])
            if hi[1] > 0 and value / hi[1] < worst_v[1]:
                worst_v = (name, value / hi[1], hi[0])
            if lo[1] > 0 and value / lo[1] > worst_e[1]:
                worst_e = (name, value / lo[1], lo[0])
    return worst_v, worst_e


def check_grad_scale(ctx: Measurements) -> Iterable[Finding]:
    """grad.vanishing / grad.exploding: relative weight gradients ||dL/dW|| / ||W|| by depth.

    Ratio of a layer's relative gradient to the largest (vanishing) / smallest (exploding)
    relative gradient of a LATER layer of the body in the same role (:func:`depth_role`: the
    same place in a repeated block, ``encoder.layer.#.attention.self.query``; every layer of an
    ``nn.Sequential``; the whole body when no role repeats). Healthy zoo setups measure within
    [0.0435, 16.3] (5 seeds); 15 sigmoid layers (Xavier) 7.9e-10, sigma_w = 3 tanh at depth 30
    3.1e3. Thresholds 1e-3 and 1e3. All-zero gradients are an error unless a zero-initialized layer
    explains them.

    Severity from outcomes (benchmarks/DOCTOR.md): a vanishing ratio below 1e-4 is an error
    (every setup below it failed to learn as it should: a bias of 5 with small weights 8.4e-6,
    20 ordered tanh layers 4.1e-5, torch's default on 16 ReLU layers 2e-5, 15 sigmoid layers
    7.9e-10); from 1e-4 to 1e-3 a warning. Setups that failed to learn also measured 5.3e-4
    (the demo's model) to 0.021 (torch's default on 8-16 layers), the lowest that learned 0.093:
    the signal checks flag those with more margin and carry their error. Every exploding ratio
    above 1e3 was a setup that did not learn (chaotic tanh, 3.1e3) while those that learned
    stayed <= 16.3, so grad.exploding is an error.

    The output layer (from the graph, else the last weight layer run) is not a reference: its
    gradient ``e h^T`` passes through no Jacobian, so its relative gradient scales as
    ``1/||W_out||`` while every earlier layer's scales as ``||W_out||``: their ratio measures
    ``||W_out||^2``, the head's scale, not the decay through depth this check is about. A
    deliberately small head (``initwise.init`` shrinks it to the loss budget on hard targets;
    small-init heads) then reads as "vanishing": 20 tanh layers after ``initwise.init``
    (sigma_w 1.59, sigma_b 0, q* = 1, chi_1 = 1.18: gradients *grow* toward the input,
    trainable depth ~83) gave last hidden / head = 4e-4 to 1e-3 (5 seeds; ``||W_out||`` =
    0.11) although every body ratio was >= 0.72. A too-large head (logits x 100) read as
    ``grad.exploding`` the same way. A wrong head scale is ``output.logit_scale`` /
    ``loss.init_mismatch``'s business.

    Layers in different roles are not compared for the same reason: a layer's relative gradient
    carries a factor of its place in the block besides the decay through depth. An attention
    query's (key's) gradient passes through the score ``q k^T / sqrt(d)`` and scales with the
    key's (query's) weights, and through the values: with BERT's N(0, 0.02) it is ~1e-4 x the
    value's or the FFN's of the SAME block (tiny BERT, DistilBERT, RoBERTa, BART: 2.7e-5 to
    3.4e-5 x a later layer's, read as an error) while every query of the stack measures the
    same (layer 0 / layer 1: 0.94); a layer next to the head (BERT's pooler: 0.245) outweighs
    those inside residual branches (0.002) by the branch's small output scale. These models
    train from this init; a decay through depth shows between the same layers of successive
    blocks.
    """
    full = _grad_chain(ctx)
    if len(full) < 2:
        return
    if all(v == 0 for _, v in full):
        yield Finding(
            check="grad.vanishing",
            severity="error",
            where="model",
            evidence="every weight gradient is exactly zero; expected a non-zero gradient.",
            why="No gradient reaches any layer: the network cannot learn (dead units, a zero "
            "output layer, or a detached graph).",
            fix="Check units.dead findings and the output layer; calibrate on data "
            "(initwise.init).",
            fix_code=DATAINIT_SNIPPET,
            metrics={"relative_grad": dict(full)},
            fix_id=INIT_FIX,
        )
        return
    worst_v, worst_e = _worst(_by_depth(_body(ctx, full)))
    why = ("Backpropagation multiplies the gradient by each layer's Jacobian; with mean "
           "squared singular value chi != 1 it decays or grows geometrically toward the input "
           "(Schoenholz et al. 2017, arXiv:1611.01232).")
    metrics = {"relative_grad": dict(full)}
    auto, note = depth_fix({s.activation for s in ctx.layers})
    if worst_v[0] is not None and worst_v[1] < GRAD_VANISH:
        yield Finding(
            check="grad.vanishing",
            severity="error" if worst_v[1] < GRAD_VANISH_ERROR else "warning",
            where=worst_v[0],
            evidence=f"relative gradient ||dL/dW||/||W|| at {worst_v[0]} is {worst_v[1]:.2g} x "
            f"that of the later {worst_v[2]} (expected >= {GRAD_VANISH:g}).",
            why=why,
            fix="Use an init at the critical point for the activation (Kaiming for ReLU, "
            "Xavier/LeCun for tanh) or calibrate on data (initwise.init)." + note,
            fix_code=DATAINIT_SNIPPET,
            metrics=metrics,
            fix_id=auto,
        )
    if worst_e[0] is not None and worst_e[1] > GRAD_EXPLODE:
        yield Finding(
            check="grad.exploding",
            severity="error" if worst_e[1] >= GRAD_EXPLODE_ERROR else "warning",
            where=worst_e[0],
            evidence=f"relative gradient ||dL/dW||/||W|| at {worst_e[0]} is {worst_e[1]:.3g} x "
            f"that of the later {worst_e[2]} (expected <= {GRAD_EXPLODE:g}).",
            why=why,
            fix="Reduce the weight scale to the critical gain (chaotic phase), or calibrate on "
            "data (initwise.init)." + note,
            fix_code=DATAINIT_SNIPPET,
            metrics=metrics,
            fix_id=auto,
        )


def check_update_ratio(ctx: Measurements) -> Iterable[Finding]:
    """update.ratio: ||delta W|| / ||W|| of one optimizer step (on a copy), weights only.

    Rule of thumb ~1e-3 (Karpathy, CS231n). Healthy zoo setups (SGD 0.01-0.1, Adam 1e-3)
    measure max ratio <= 0.078; SGD lr 50: 25.5, Adam lr 1: 11.2, Adam lr 1e-12: 1e-13. Warning
    above 0.3, error above 1 or when the loss after the step is non-finite or > 10 x loss0;
    error when no weight moves by 1e-7 (the learning rate is effectively zero: Adam 1e-12
    gains nothing in the outcome budget).
    """
    if not ctx.updates:
        return
    ratios = {n: u["ratio"] for n, u in ctx.updates.items()
              if math.isfinite(u["ratio"]) and u["grad"] > 0}
    worst = max(ratios.items(), key=lambda t: t[1], default=(None, 0.0))
    after, before = ctx.loss_after, ctx.loss0
    blown = after is not None and (not math.isfinite(after) or
                                   (before is not None and after > 10 * max(before, 1e-6)))
    metrics = {"update_ratio": ratios, "loss_after_step": after}
    lr_snippet = "for g in optimizer.param_groups:\n    g['lr'] *= 0.1"
    if worst[1] > UPDATE_WARN or blown:
        yield Finding(
            check="update.ratio",
            severity="error" if worst[1] > UPDATE_ERROR or blown else "warning",
            where=worst[0] or "model",
            evidence=f"one optimizer step changes {worst[0]} by {worst[1]:.3g} of its norm "
            "(expected "
            f"~1e-3, <= {UPDATE_WARN}); loss {before if before is None else f'{before:.4g}'} "
            f"-> {after if after is None else f'{after:.4g}'} after the step.",
            why="Updates much larger than ~1e-3 of the weights overwrite the init in one step and "
            "diverge (Karpathy, CS231n 'ratio of updates to values').",
            fix="Lower the learning rate (or add warm-up).",
            fix_code=lr_snippet,
            metrics=metrics,
        )
    elif ratios and worst[1] < UPDATE_TINY:
        yield Finding(
            check="update.ratio",
            severity="error",
            where=(worst[0] or "model").rsplit(".", 1)[0],
            evidence=f"the largest update/weight ratio is {worst[1]:.2g} (expected ~1e-3, >= "
            f"{UPDATE_TINY:g}); the step changes nothing.",
            why="Updates far below 1e-3 of the weights mean the learning rate is effectively zero.",
            fix="Raise the learning rate.",
            fix_code=lr_snippet,
            metrics=metrics,
        )


def check_update_missing(ctx: Measurements) -> Iterable[Finding]:
    """update.missing: trainable parameters with a gradient that the optimizer does not hold.

    Exact (set membership), no threshold: such parameters get gradients and never change --
    typically a module replaced or added after the optimizer was built.
    """
    if ctx.optimizer is None or ctx.grads is None:
        return
    held = {id(p) for g in ctx.optimizer.param_groups for p in g["params"]}
    missing = [n for n, g in ctx.grads.items() if g is not None and id(ctx.params[n]) not in held]
    if not missing:
        return
    yield Finding(
        check="update.missing",
        severity="warning",
        where=missing[0].rsplit(".", 1)[0] or "model",
        evidence=f"{len(missing)} trainable parameter(s) with a gradient are not in the optimizer: "
        f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; expected none.",
        why="The optimizer only updates the parameters it was given; a module replaced or added "
        "after building it keeps its initial weights forever.",
        fix="Build the optimizer after the final model (or add_param_group the new parameters).",
        fix_code="optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)",
        metrics={"parameters": missing[:50]},
    )


def _estimated_lost(ctx: Measurements, name: str, p: torch.Tensor, g: torch.Tensor) -> float:
    group = next((gr for gr in ctx.optimizer.param_groups
                  if any(q is p for q in gr["params"])), None)
    if group is None:
        return 0.0
    lr = float(group.get("lr", 0.0))
    step = torch.full_like(g, lr, dtype=torch.float32) if "betas" in group else \
        lr * g.float().abs()
    ulp_half = p.detach().float().abs() * torch.finfo(p.dtype).eps / 2
    nz = g != 0
    return float(((step < ulp_half) & nz).sum()) / max(int(nz.sum()), 1)


def check_underflow(ctx: Measurements) -> Iterable[Finding]:
    """dtype.underflow: float16/bfloat16 weights whose updates round away to nothing.

    A step smaller than half an ulp of the weight is lost (bf16 has 8 significant bits: a
    relative update < 2^-9 ~ 0.2 % vanishes). Measured on the copy's step (preset "full") or
    estimated from the learning rate (SGD: lr |g|, Adam-family: lr). Warning when > 50 % of
    the elements with a non-zero gradient would not move; float32 weights never fire.
    """
    low = [(n, p) for n, p in ctx.params.items() if p.dtype in LOW_PRECISION and p.requires_grad]
    if not low:
        return
    lost: dict[str, float] = {}
    if ctx.updates:
        lost = {n: u["lost"] for n, u in ctx.updates.items() if n in dict(low)}
    elif ctx.optimizer is not None and ctx.grads is not None:
        lost = {n: _estimated_lost(ctx, n, p, ctx.grads[n]) for n, p in low
                if ctx.grads.get(n) is not None}
    else:
        ctx.skipped.append("dtype.underflow: low-precision weights but no optimizer to judge "
                           "update sizes")
        return
    bad = {n: v for n, v in lost.items() if v > LOST_WARN}
    if not bad:
        return
    worst = max(bad.items(), key=lambda t: t[1])
    yield Finding(
        check="dtype.underflow",
        severity="warning",
        where=worst[0].rsplit(".", 1)[0] or "model",
        evidence=f"{worst[1]:.0%} of {worst[0]}'s gradient-carrying elements would not change in "
        f"{ctx.params[worst[0]].dtype} after one step ({len(bad)} parameter(s) affected); "
        f"expected < {LOST_WARN:.0%}.",
        why="Low-precision weights round away updates below half an ulp (2^-9 relative in "
        "bfloat16): training silently stalls (Micikevicius et al. 2018, arXiv:1710.03740).",
        fix="Keep float32 master weights (torch.autocast for the forward pass) or use "
        "stochastic rounding.",
        fix_code="model.float()\nwith torch.autocast('cuda', dtype=torch.bfloat16):\n    loss = "
        "...",
        metrics={"lost_fraction": bad},
    )


def check_theory_depth(ctx: Measurements) -> Iterable[Finding]:
    """theory.depth: a plain chain deeper than the mean-field trainable depth (6 xi_c).

    For a chain of >= 4 same-activation layers without norm or residual connections,
    sigma_w^2 = fan_in Var(W) and sigma_b^2 = mean(b^2) are read from the weights and
    ``initwise.theory.max_trainable_depth`` gives the depth signals survive (Schoenholz et
    al. 2017, arXiv:1611.01232). Fires when the chain is deeper than that.

    A chain is connected: each layer reads the previous one (``parents``). The first FFN layers
    of a Transformer's blocks (GPT-2 ``c_fc``, BART ``fc1``, T5 ``wi``, Llama ``gate_proj``) are
    not a chain: each reads the residual stream through a norm, in parallel branches; taken as
    one they gave a warning on every stock model of 4 layers (5-9 "layers", trainable depth
    1.2-8.8).
    """
    chain = _connected(ctx, [s for s in ctx.layers if s.kind in ("linear", "conv")
                             and s.activation and not s.followed_by_norm and not s.residual
                             and not s.is_output])
    acts = {s.activation for s in chain}
    if len(chain) < 4 or len(acts) != 1:
        return
    sw, sb = _sigmas(ctx, chain)
    act = next(iter(acts))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            limit = float(max_trainable_depth(act, sigma_w=sw, sigma_b=sb))
    except Exception as exc:  # noqa: BLE001 - unknown activation for the theory engine
        ctx.skipped.append(f"theory.depth: {act!r} not handled by the theory engine ({exc})")
        return
    depth = len(chain) + 1
    if not depth > limit:
        return
    auto, note = depth_fix({act})
    if auto is None:
        fix, code = note.strip(), ""
    else:
        fix = ("Re-initialize on data with initwise.init (the automatic fix: biases reset, "
               "every layer calibrated to unit pre-activation RMS; for tanh the mean-field "
               "trainable depth there is ~83), or without data at the edge of chaos with "
               "initwise.apply(model, 'critical'); or add normalization / residual connections.")
        code = DATAINIT_SNIPPET
    yield Finding(
        check="theory.depth",
        severity="warning",
        where=chain[0].name,
        evidence=f"{depth} {act} layers with sigma_w {sw:.3g}, sigma_b {sb:.3g}: deeper than the "
        f"trainable depth {limit:.3g} the mean-field theory gives for this init.",
        why="Off the edge of chaos, correlations between inputs converge to a fixed point within "
        "a few depth scales xi_c; deeper networks are untrainable (Schoenholz et al. 2017, "
        "arXiv:1611.01232).",
        fix=fix,
        fix_code=code,
        metrics={"depth": depth, "limit": limit, "sigma_w": sw, "sigma_b": sb, "activation": act},
        fix_id=auto,
    )


def _connected(ctx: Measurements, layers: list) -> list:
    """The longest run of ``layers`` in which each layer's only parent is the previous one."""
    best: list = []
    run: list = []
    for s in layers:
        parents = set(ctx.facts[s.name].parents) if s.name in ctx.facts else set()
        run = run + [s] if run and parents == {run[-1].name} else [s]
        best = run if len(run) > len(best) else best
    return best


def _sigmas(ctx: Measurements, chain: list) -> tuple[float, float]:
    sws, sbs = [], []
    for s in chain:
        m = ctx.facts[s.name].module
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 2:
            fan_in = w[0].numel()
            sws.append(math.sqrt(fan_in * float(w.detach().double().var())))
        b = getattr(m, "bias", None)
        sbs.append(math.sqrt(float((b.detach().double() ** 2).mean()))
                   if isinstance(b, torch.Tensor) else 0.0)
    sws.sort()
    sbs.sort()
    return sws[len(sws) // 2], sbs[len(sbs) // 2]


_BOTH = frozenset({"init", "train"})
_GRAD = frozenset({"forward", "grad"})

#: The backward and step checks (all on measurements of a training step too, except the
#: theory's depth check, which reads the initial weights' sigma_w, sigma_b).
GRAD_CHECKS = (
    Check(name="initwise.grad_none", codes=("grad.none",), fn=check_grad_none, needs=_GRAD,
          phase=_BOTH, preset="standard"),
    Check(name="initwise.grad_scale", codes=("grad.vanishing", "grad.exploding"),
          fn=check_grad_scale, needs=_GRAD, phase=_BOTH, preset="standard"),
    Check(name="initwise.update_ratio", codes=("update.ratio",), fn=check_update_ratio,
          needs=_GRAD | {"update"}, phase=_BOTH, preset="full"),
    Check(name="initwise.update_missing", codes=("update.missing",), fn=check_update_missing,
          needs=_GRAD, phase=_BOTH, preset="standard"),
    Check(name="initwise.dtype_underflow", codes=("dtype.underflow",), fn=check_underflow,
          needs=_GRAD, phase=_BOTH, preset="standard"),
    Check(name="initwise.theory_depth", codes=("theory.depth",), fn=check_theory_depth,
          needs=frozenset({"forward"}), preset="full"),
)
