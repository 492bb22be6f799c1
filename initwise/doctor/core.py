"""`doctor(model, batch)`: measure one batch's passes, run the checks, return a Diagnosis.

Cost: "quick" = graph trace + one probed forward; "standard" adds one backward
(``torch.autograd.grad``, so ``.grad`` is never touched); "full" adds one optimizer step on a
deep copy of (model, optimizer) and one forward of the copy, plus the theory check.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from initwise.doctor._state import preserved
from initwise.doctor.dataprofile import profile_inputs
from initwise.doctor.diagnosis import Diagnosis, LayerStats
from initwise.doctor.plan import build_plan
from initwise.doctor.probes import probed
from initwise.doctor.registry import PRESETS, CheckContext, run_checks
from initwise.modelio import check_hookable

__all__ = ["doctor"]

ON_UNKNOWN = ("warn", "error", "skip")


def _validate(model: Any, checks: Any, on_unknown: Any) -> None:
    check_hookable(model, "doctor")
    if checks not in PRESETS:
        raise ValueError(f"doctor: unknown checks preset {checks!r}; valid presets: {PRESETS}.")
    if on_unknown not in ON_UNKNOWN:
        raise ValueError(f"doctor: on_unknown={on_unknown!r}; valid values: {ON_UNKNOWN}.")


def _handle_unknown(ctx: CheckContext, on_unknown: str) -> None:
    unknown = [n for n, p in ctx.plans.items() if p.kind == "other"]
    if not unknown:
        return
    msg = (f"doctor: {len(unknown)} module(s) of unknown kind ({', '.join(unknown[:5])}): "
           f"measured generically; dead/saturated checks need their activation.")
    if on_unknown == "error":
        raise ValueError(msg + " Pass on_unknown='warn' or 'skip' to diagnose anyway.")
    if on_unknown == "warn":
        warnings.warn(msg, stacklevel=3)
    ctx.skipped.append(msg)


def _layer_stats(ctx: CheckContext, order: list[str]) -> None:
    for i, name in enumerate(order):
        acc, plan = ctx.accs[name], ctx.plans[name]
        if acc.units == 0:
            continue
        s = LayerStats(
            name=name, kind=plan.kind, order=i,
            activation=plan.act.name if plan.act else plan.extra.get("act_after_norm"),
            units=acc.units, calls=acc.calls, pre_std=acc.pre_std(), rms=acc.rms(),
            post_std=acc.post_std(), signal_fraction=acc.signal_fraction(),
            active_fraction=acc.positive / max(acc.elems, 1),
            saturated_fraction=acc.saturated_fraction(),
            dead_units=acc.dead_units() if plan.act and plan.act.relu_family and not acc.nonfinite
            else None,
            followed_by_norm=plan.followed_by_norm, residual=plan.residual,
            is_output=plan.is_output, nonfinite=acc.nonfinite, dtype=acc.dtype,
        )
        w = getattr(plan.module, "weight", None)
        if isinstance(w, torch.Tensor) and w.is_floating_point():
            s.weight_norm = float(w.detach().double().norm())
        ctx.layers.append(s)
        if acc.extra.get("reads_input") and ctx.first_layer is None:
            ctx.first_layer = name


def _output_stats(ctx: CheckContext, logits: torch.Tensor, source: str, layer: Any) -> None:
    z = logits.detach().double()
    finite = torch.isfinite(z)
    ctx.output.update(source=source, shape=list(z.shape), nonfinite=int((~finite).sum()))
    if z.numel() > 1 and bool(finite.all()):
        ctx.output["std"] = float(z.std())
        if z.dim() >= 2 and z.shape[-1] > 1:
            ctx.output["class_std"] = float(z.std(-1).mean())
    if layer is not None:
        ctx.output["layer"] = layer


def _loss(ctx: CheckContext, logits: torch.Tensor, targets: Any, loss_fn: Any) -> Any:
    from initwise.modelio import compute_loss, infer_loss, label_prior_loss

    spec = None
    try:
        spec = infer_loss(logits, targets, loss_fn if isinstance(loss_fn, str) else None)
    except ValueError as exc:
        if not callable(loss_fn):
            raise
        ctx.skipped.append(f"loss.init_mismatch: cannot infer the loss kind ({exc})")
    if callable(loss_fn):
        loss = loss_fn(logits, targets)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(
                f"doctor: loss_fn must return a scalar tensor (mean loss), got "
                f"{type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}; use "
                f"reduction='mean'."
            )
    else:
        loss = compute_loss(spec, logits, targets)
    if spec is not None:
        ctx.loss_kind = spec.kind
        n_out = logits.shape[spec.class_dim] if spec.kind == "ce" else \
            (logits[0].numel() if logits.dim() > 1 else 1)
        ctx.prior = label_prior_loss(spec, targets, int(n_out))
        n_valid = int((torch.as_tensor(targets) != -100).sum()) if spec.kind == "ce" else 0
        if spec.kind == "ce" and n_valid < 10 * int(n_out):
            # a batch of n targets cannot estimate a C-class prior when n << C (its entropy is
            # at most log n): compare with the uniform predictor's log C instead
            ctx.prior = max(ctx.prior, math.log(int(n_out)))
            ctx.extra["prior_source"] = f"log C (only {n_valid} targets for {n_out} classes)"
    ctx.loss0 = float(loss.detach())
    return loss


def _backward(ctx: CheckContext, loss: torch.Tensor) -> None:
    names = [n for n, p in ctx.params.items() if p.requires_grad]
    if not loss.requires_grad or not names:
        ctx.skipped.append("grad.*: the loss does not depend on any trainable parameter")
        return
    grads = torch.autograd.grad(loss, [ctx.params[n] for n in names], allow_unused=True)
    ctx.grads = dict(zip(names, grads))
    by_param = {id(ctx.params[n]): g for n, g in ctx.grads.items()}
    for s in ctx.layers:
        w = getattr(ctx.plans[s.name].module, "weight", None)
        if isinstance(w, torch.Tensor) and id(w) in by_param and by_param[id(w)] is not None:
            s.grad_norm = float(by_param[id(w)].detach().double().norm())


def _step_on_copy(ctx: CheckContext, model: nn.Module, inputs: Any, targets: Any,
                  loss_fn: Any) -> None:
    from initwise.modelio import call_model, extract_logits

    try:
        m2, o2 = copy.deepcopy((model, ctx.optimizer))
    except Exception as exc:  # noqa: BLE001 - e.g. non-copyable modules
        ctx.skipped.append(f"update.ratio: could not copy model and optimizer ({exc!r})")
        return
    names = list(ctx.params)
    copies = dict(zip(names, m2.parameters()))
    for n, p2 in copies.items():
        g = ctx.grads.get(n) if ctx.grads else None
        p2.grad = None if g is None else g.detach().clone()
    before = {n: p.detach().clone() for n, p in copies.items()}
    try:
        o2.step()
    except TypeError as exc:  # e.g. LBFGS needs a closure
        ctx.skipped.append(f"update.ratio: optimizer.step() failed on the copy ({exc})")
        return
    in_opt = {id(p) for g in ctx.optimizer.param_groups for p in g["params"]}
    ctx.updates = {}
    for n, p in ctx.params.items():
        if id(p) not in in_opt or p.dim() < 2 or ctx.grads.get(n) is None:
            continue
        delta = (copies[n].detach().double() - before[n].double())
        w = float(before[n].double().norm())
        nz = ctx.grads[n] != 0
        moved = copies[n].detach() != before[n]
        ctx.updates[n] = {
            "delta": float(delta.norm()), "weight": w,
            "grad": float(ctx.grads[n].detach().double().norm()),
            "ratio": float(delta.norm()) / w if w > 0 else math.inf,
            "lost": float((nz & ~moved).sum()) / max(int(nz.sum()), 1),
        }
    if ctx.loss0 is not None:
        with torch.no_grad():
            logits, _ = extract_logits(call_model(m2, inputs))
            from initwise.modelio import compute_loss, infer_loss

            loss = loss_fn(logits, targets) if callable(loss_fn) else compute_loss(
                infer_loss(logits, targets, loss_fn), logits, targets)
            ctx.loss_after = float(loss)


def doctor(
    model: nn.Module,
    batch: Any,
    *,
    loss_fn: str | Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checks: str = "standard",
    on_unknown: str = "warn",
) -> Diagnosis:
    """Diagnose why ``model`` will (not) learn on ``batch``; the model is never changed.

    Args:
        model: the network.
        batch: ``(inputs, targets)`` or inputs alone (dense, ``torch.sparse``, ``scipy.sparse``,
            dict, EmbeddingBag triple), as in :func:`initwise.modelio.split_batch`.
        loss_fn: ``None`` (inferred from the targets), ``"ce"``, ``"bce"``, ``"mse"``, or a
            callable ``loss_fn(logits, targets) -> scalar``. Defaults to None.
        optimizer: the optimizer, for update ratios (preset "full") and underflow checks; it
            is never stepped (a deep copy is). Defaults to None.
        checks: ``"quick"`` (forward), ``"standard"`` (+ backward) or ``"full"`` (+ one step on
            a copy, + theory). Defaults to "standard".
        on_unknown: modules of unknown kind: ``"warn"``, ``"error"`` or ``"skip"``.

    Returns:
        The :class:`Diagnosis`.

    Raises:
        TypeError: for a non-module model or an unsupported batch.
        ValueError: for an unknown preset / on_unknown, or targets that fit no loss.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initwise.doctor import doctor
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> with torch.no_grad():
        ...     _ = net[0].bias.fill_(-100.0)  # every hidden unit dead
        >>> sorted(doctor(net, (x, y)).codes_at("error"))
        ['grad.vanishing', 'units.dead']

    References:
        Schoenholz et al. 2017, arXiv:1611.01232; He et al. 2015, arXiv:1502.01852;
        Karpathy 2019, "A Recipe for Training Neural Networks".
    """
    from initwise.modelio import call_model, extract_logits, model_device, split_batch, to_torch

    _validate(model, checks, on_unknown)
    raw_inputs, targets = split_batch(batch)
    device = model_device(model)
    inputs = to_torch(raw_inputs, device)
    targets = None if targets is None else to_torch(targets, device)
    ctx = CheckContext(model=model, preset=checks, data=profile_inputs(inputs),
                       optimizer=optimizer, targets=targets)
    ctx.params = dict(model.named_parameters())
    with preserved(model):
        ctx.plans, source = build_plan(model, inputs)
        if source != "graph":
            ctx.skipped.append(f"plan: {source} (functional activations not seen)")
        _handle_unknown(ctx, on_unknown)
        want_grad = checks != "quick" and targets is not None
        with probed(ctx.plans, inputs) as (ctx.accs, order), torch.set_grad_enabled(want_grad):
            output = call_model(model, inputs)
        _layer_stats(ctx, order)
        logits, out_source = extract_logits(output)
        out_layer = next((s.name for s in reversed(ctx.layers) if s.is_output), None)
        _output_stats(ctx, logits, out_source, out_layer)
        _run(ctx, model, inputs, targets, logits, loss_fn)
        findings = run_checks(ctx, preset=checks)
    return _diagnosis(ctx, findings)


def _run(ctx: CheckContext, model: nn.Module, inputs: Any, targets: Any,
         logits: torch.Tensor, loss_fn: Any) -> None:
    if targets is None:
        ctx.skipped.append("loss.*, grad.*, update.ratio: the batch has no targets")
        return
    with torch.set_grad_enabled(logits.requires_grad):
        loss = _loss(ctx, logits, targets, loss_fn)
    if ctx.preset == "quick":
        ctx.skipped.append("grad.*, update.ratio: preset 'quick' runs no backward")
        return
    _backward(ctx, loss)
    if ctx.preset == "full" and ctx.grads is not None:
        if ctx.optimizer is None:
            ctx.skipped.append("update.ratio: no optimizer given")
        else:
            _step_on_copy(ctx, model, inputs, targets, loss_fn)
            by_id = {id(p): n for n, p in ctx.params.items()}
            for s in ctx.layers:
                w = getattr(ctx.plans[s.name].module, "weight", None)
                u = ctx.updates.get(by_id.get(id(w), "")) if ctx.updates else None
                s.update_ratio = None if u is None else u["ratio"]


def _diagnosis(ctx: CheckContext, findings: list) -> Diagnosis:
    profile = ctx.data.to_dict()
    if profile.get("n_features") is None and ctx.first_layer is not None:
        n = getattr(ctx.plans[ctx.first_layer].module, "num_embeddings", None)
        profile["n_features"] = n
    summary = {"loss_kind": ctx.loss_kind, "loss_at_init": ctx.loss0, "label_prior_loss":
               ctx.prior, "loss_after_step": ctx.loss_after, "first_layer": ctx.first_layer,
               "output": dict(ctx.output), "class_ratio": ctx.extra.get("class_ratio"),
               "prior_source": ctx.extra.get("prior_source", "label prior of the batch")}
    return Diagnosis(findings=findings, layers=ctx.layers, data_profile=profile,
                     skipped=ctx.skipped, preset=ctx.preset, summary=summary)
