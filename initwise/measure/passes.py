"""Measurement passes that fill a :class:`~initwise.measure.Measurements` record.

* :func:`measure` -- the doctor's own pass on one batch: a probed forward ("forward"), the
  gradients by ``torch.autograd.grad`` so ``.grad`` is never touched ("grad"), and one optimizer
  step on a deep copy of (model, optimizer) ("update"). It does not restore the model: the
  caller guards it (the doctor runs it inside :func:`initwise.state.guarded`).
* :func:`from_training_step` -- the same record from a live training step: the user's own forward
  under :func:`~initwise.measure.probe`, the gradients already in ``.grad``, and the update the
  optimizer really made (:class:`UpdateTracker` around ``optimizer.step()``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from initwise.measure.data import DataProfile, profile_inputs
from initwise.measure.facts import LayerFacts, layer_facts
from initwise.measure.probe import Probe, probe
from initwise.measure.record import NEEDS, LayerStats, Measurements
from initwise.modelio import (
    call_model,
    compute_loss,
    extract_logits,
    infer_loss,
    label_prior_loss,
    model_device,
    scored,
    split_batch,
    to_torch,
)

__all__ = ["UpdateTracker", "from_training_step", "measure", "update_stats"]


def _layer_stats(facts: Mapping[str, LayerFacts], p: Probe) -> tuple[list[LayerStats], str | None]:
    layers, first = [], None
    for i, name in enumerate(p.order):
        acc, rec = p.stats[name], facts[name]
        if acc.units == 0:
            continue
        act = rec.act
        shown = act.name if act is not None else (
            rec.activation.name if rec.followed_by_norm and not rec.residual and rec.activation
            else None)
        nonfinite = acc.nonfinite
        s = LayerStats(
            name=name, kind=rec.kind, order=i, activation=shown,
            units=acc.units, calls=acc.calls, pre_std=acc.pre_std(), rms=acc.rms(),
            post_std=acc.post_std(), signal_fraction=acc.signal_fraction(),
            active_fraction=acc.positive / max(acc.elems, 1),
            saturated_fraction=acc.saturated_fraction(),
            dead_units=acc.dead_units() if act is not None and act.relu_family and not nonfinite
            else None,
            followed_by_norm=rec.followed_by_norm, residual=rec.residual,
            is_output=rec.is_output, nonfinite=nonfinite, dtype=acc.dtype,
        )
        w = getattr(rec.module, "weight", None)
        if isinstance(w, torch.Tensor) and w.is_floating_point():
            s.weight_norm = float(w.detach().double().norm())
        layers.append(s)
        if name in p.reads_input and first is None:
            first = name
    return layers, first


def _output_stats(logits: torch.Tensor, source: str, layers: list[LayerStats]) -> dict[str, Any]:
    z = logits.detach().double()
    finite = torch.isfinite(z)
    out: dict[str, Any] = {"source": source, "shape": list(z.shape),
                           "nonfinite": int((~finite).sum())}
    if z.numel() > 1 and bool(finite.all()):
        out["std"] = float(z.std())
        if z.dim() >= 2 and z.shape[-1] > 1:
            out["class_std"] = float(z.std(-1).mean())
    layer = next((s.name for s in reversed(layers) if s.is_output), None)
    if layer is not None:
        out["layer"] = layer
    return out


def _loss(draft: dict[str, Any], logits: torch.Tensor, targets: Any, loss_fn: Any,
          output: Any = None) -> Any:
    """The loss (a tensor); fills loss_kind, loss0, prior (and notes) into ``draft``.

    ``output``: the model output the logits came from, so that a causal LM's labels are scored
    shifted as the model scores them (:func:`initwise.modelio.label_shift`)."""
    spec = None
    try:
        spec = infer_loss(logits, targets, loss_fn if isinstance(loss_fn, str) else None,
                          output=output)
    except ValueError as exc:
        if not callable(loss_fn):
            raise
        draft["skipped"].append(f"loss.init_mismatch: cannot infer the loss kind ({exc})")
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
        draft["loss_kind"] = spec.kind
        n_out = logits.shape[spec.class_dim] if spec.kind == "ce" else \
            (logits[0].numel() if logits.dim() > 1 else 1)
        prior = label_prior_loss(spec, targets, int(n_out))
        n_valid = int((scored(spec, None, torch.as_tensor(targets))[1] != -100).sum()) \
            if spec.kind == "ce" else 0
        if spec.kind == "ce" and n_valid < 10 * int(n_out):
            # a batch of n targets cannot estimate a C-class prior when n << C (its entropy is
            # at most log n): compare with the uniform predictor's log C instead
            prior = max(prior, math.log(int(n_out)))
            draft["extra"]["prior_source"] = f"log C (only {n_valid} targets for {n_out} classes)"
        draft["prior"] = prior
    draft["loss0"] = float(loss.detach())
    return loss


def _grad_norms(layers: list[LayerStats], facts: Mapping[str, LayerFacts],
                grads: dict[str, Any], params: dict[str, nn.Parameter]) -> None:
    by_param = {id(params[n]): g for n, g in grads.items()}
    for s in layers:
        w = getattr(facts[s.name].module, "weight", None)
        if isinstance(w, torch.Tensor) and id(w) in by_param and by_param[id(w)] is not None:
            s.grad_norm = float(by_param[id(w)].detach().double().norm())


def update_stats(params: Mapping[str, torch.Tensor], before: Mapping[str, torch.Tensor],
                 grads: Mapping[str, Any], in_optimizer: set[int]) -> dict[str, dict[str, float]]:
    """Per-parameter update statistics of one optimizer step.

    Args:
        params: name -> the parameter after the step.
        before: name -> its value before the step.
        grads: name -> the gradient the step used (``None``: no gradient).
        in_optimizer: ids of the parameters the optimizer holds (the originals).

    Returns:
        name -> ``{"delta": ||dW||, "weight": ||W||, "grad": ||g||, "ratio": ||dW|| / ||W||,
        "lost": share of non-zero gradient entries the step left unchanged}`` for every
        optimized parameter of >= 2 dimensions that had a gradient.
    """
    out = {}
    for n, p in params.items():
        g = grads.get(n)
        if n not in before or p.dim() < 2 or g is None or id(p) not in in_optimizer:
            continue
        delta = p.detach().double() - before[n].double()
        w = float(before[n].double().norm())
        nz = g != 0
        moved = p.detach() != before[n]
        out[n] = {
            "delta": float(delta.norm()), "weight": w, "grad": float(g.detach().double().norm()),
            "ratio": float(delta.norm()) / w if w > 0 else math.inf,
            "lost": float((nz & ~moved).sum()) / max(int(nz.sum()), 1),
        }
    return out


def _ids(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def _step_on_copy(draft: dict[str, Any], model: nn.Module, inputs: Any, targets: Any,
                  loss_fn: Any) -> None:
    optimizer, params, grads = draft["optimizer"], draft["params"], draft["grads"]
    try:
        m2, o2 = copy.deepcopy((model, optimizer))
    except Exception as exc:  # noqa: BLE001 - e.g. non-copyable modules
        draft["skipped"].append(f"update.ratio: could not copy model and optimizer ({exc!r})")
        return
    copies = dict(zip(list(params), m2.parameters()))
    for n, p2 in copies.items():
        g = grads.get(n) if grads else None
        p2.grad = None if g is None else g.detach().clone()
    before = {n: p.detach().clone() for n, p in copies.items()}
    try:
        o2.step()
    except TypeError as exc:  # e.g. LBFGS needs a closure
        draft["skipped"].append(f"update.ratio: optimizer.step() failed on the copy ({exc})")
        return
    in_opt = _ids(optimizer)
    moved = {n: copies[n] for n, p in params.items() if id(p) in in_opt}
    draft["updates"] = update_stats(moved, before, grads, {id(p) for p in moved.values()})
    if draft["loss0"] is not None:
        with torch.no_grad():
            output = call_model(m2, inputs)
            logits, _ = extract_logits(output)
            loss = loss_fn(logits, targets) if callable(loss_fn) else compute_loss(
                infer_loss(logits, targets, loss_fn, output=output), logits, targets)
            draft["loss_after"] = float(loss)


def _update_ratios(draft: dict[str, Any], facts: Mapping[str, LayerFacts]) -> None:
    by_id = {id(p): n for n, p in draft["params"].items()}
    for s in draft["layers"]:
        w = getattr(facts[s.name].module, "weight", None)
        u = draft["updates"].get(by_id.get(id(w), "")) if draft["updates"] else None
        s.update_ratio = None if u is None else u["ratio"]


def _draft(step: int | None, preset: str, needs: Iterable[str], data: DataProfile,
           **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"step": step, "preset": preset, "needs": frozenset(needs),
                         "data": data, "skipped": [], "extra": {}, "loss0": None, "prior": None,
                         "loss_kind": None, "grads": None, "updates": None, "loss_after": None}
    d.update(kw)
    return d


def _check_needs(needs: Iterable[str]) -> frozenset[str]:
    needs = frozenset(needs)
    bad = sorted(needs - set(NEEDS))
    if bad:
        raise ValueError(f"measure: unknown needs {bad}; valid: {NEEDS}.")
    return needs


def measure(
    model: nn.Module,
    batch: Any,
    *,
    needs: Iterable[str] = ("forward", "grad"),
    loss_fn: str | Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    facts: Mapping[str, LayerFacts] | None = None,
    preset: str = "standard",
    step: int | None = None,
) -> Measurements:
    """One measurement pass on ``batch`` (the doctor's own pass).

    Args:
        model: the network (its parameters are read; gradients come from
            ``torch.autograd.grad``, so ``.grad`` is untouched; the update is taken on a deep copy).
        batch: ``(inputs, targets)`` or inputs alone (see :func:`initwise.modelio.split_batch`).
        needs: any of :data:`NEEDS`; "update" needs ``optimizer``. Default forward + grad.
        loss_fn: ``None`` (inferred), ``"ce"``, ``"bce"``, ``"mse"`` or a callable.
        optimizer: the optimizer, for "update" (never stepped: a deep copy is).
        facts: the layers' facts; traced from ``batch`` when not given.
        preset: the label recorded in the measurements. Default "standard".
        step: the training step to record. Default None.

    Returns:
        The :class:`Measurements`.
    """
    needs = _check_needs(needs)
    raw_inputs, targets = split_batch(batch, model)
    device = model_device(model)
    inputs = to_torch(raw_inputs, device)
    targets = None if targets is None else to_torch(targets, device)
    skipped: list[str] = []
    if facts is None:
        facts, source = layer_facts(model, inputs)
        if source != "graph":
            skipped.append(f"plan: {source} (functional activations not seen)")
    d = _draft(step, preset, needs, profile_inputs(inputs), facts=dict(facts), targets=targets,
               optimizer=optimizer, params=dict(model.named_parameters()))
    d["skipped"].extend(skipped)
    want_grad = "grad" in needs and targets is not None
    with probe(model, facts, inputs=inputs) as p, torch.set_grad_enabled(want_grad):
        output = call_model(model, inputs)
    d["stats"] = p.stats
    d["layers"], d["first_layer"] = _layer_stats(facts, p)
    logits, out_source = extract_logits(output)
    d["output"] = _output_stats(logits, out_source, d["layers"])
    _passes(d, model, inputs, targets, logits, loss_fn, output)
    d["needs"] = frozenset({"forward"} | ({"grad"} if d["grads"] is not None else set())
                           | ({"update"} if d["updates"] is not None else set()))
    return Measurements(**d)


def _passes(d: dict[str, Any], model: nn.Module, inputs: Any, targets: Any,
            logits: torch.Tensor, loss_fn: Any, output: Any = None) -> None:
    if targets is None:
        d["skipped"].append("loss.*, grad.*, update.ratio: the batch has no targets")
        return
    with torch.set_grad_enabled(logits.requires_grad):
        loss = _loss(d, logits, targets, loss_fn, output)
    if "grad" not in d["needs"]:
        d["skipped"].append(f"grad.*, update.ratio: preset {d['preset']!r} runs no backward")
        return
    names = [n for n, p in d["params"].items() if p.requires_grad]
    if not loss.requires_grad or not names:
        d["skipped"].append("grad.*: the loss does not depend on any trainable parameter")
        return
    grads = torch.autograd.grad(loss, [d["params"][n] for n in names], allow_unused=True)
    d["grads"] = dict(zip(names, grads))
    _grad_norms(d["layers"], d["facts"], d["grads"], d["params"])
    if "update" in d["needs"]:
        if d["optimizer"] is None:
            d["skipped"].append("update.ratio: no optimizer given")
        else:
            _step_on_copy(d, model, inputs, targets, loss_fn)
            _update_ratios(d, d["facts"])


class UpdateTracker:
    """Records the parameters before ``optimizer.step()`` to measure the update it made.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Linear(3, 2)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> net(torch.ones(4, 3)).sum().backward()
        >>> tracker = UpdateTracker(net, opt)
        >>> opt.step()
        >>> sorted(tracker.finish())
        ['weight']
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.params = dict(model.named_parameters())
        self.in_opt = _ids(optimizer)
        self.grads = {n: (None if p.grad is None else p.grad.detach().clone())
                      for n, p in self.params.items()}
        self.before = {n: p.detach().clone() for n, p in self.params.items()
                       if id(p) in self.in_opt and p.dim() >= 2 and p.grad is not None}

    def finish(self) -> dict[str, dict[str, float]]:
        """The update statistics (:func:`update_stats`) now that the step was taken."""
        return update_stats(self.params, self.before, self.grads, self.in_opt)


def from_training_step(
    model: nn.Module,
    probed: Probe,
    facts: Mapping[str, LayerFacts],
    *,
    output: Any = None,
    targets: Any = None,
    inputs: Any = None,
    loss: torch.Tensor | float | None = None,
    loss_fn: str | Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    updates: Mapping[str, dict[str, float]] | None = None,
    step: int | None = None,
) -> Measurements:
    """Measurements of a live training step (nothing is run again, nothing is changed).

    Args:
        model: the model being trained.
        probed: the :class:`~initwise.measure.Probe` that watched the step's forward.
        facts: the layers' facts (the probe's ``layers``).
        output: what the model returned on that forward (``None``: no output statistics, and the
            loss kind and prior need ``targets`` with an output to be inferred).
        targets: the batch's targets (for the loss kind and the label prior). Default None.
        inputs: the batch's inputs (for the data profile). Default None.
        loss: the step's loss (a tensor or a float); recomputed from ``output`` when None and
            ``targets`` are given.
        loss_fn: as in :func:`measure`, when the loss must be recomputed or its kind inferred.
        optimizer: the optimizer (for the checks that read its settings).
        updates: :meth:`UpdateTracker.finish` of the step's ``optimizer.step()``.
        step: the training step number.

    Returns:
        The :class:`Measurements`; gradients are read from ``.grad`` (filled by the user's
        ``backward``), so "grad" is measured when any parameter has one.
    """
    params = dict(model.named_parameters())
    grads = {n: p.grad for n, p in params.items() if p.requires_grad}
    has_grad = any(g is not None for g in grads.values())
    needs = {"forward"} | ({"grad"} if has_grad else set()) | ({"update"} if updates else set())
    if inputs is not None:
        data = profile_inputs(inputs)
    else:  # the rows the first probed layer saw stand for the batch
        first = next((probed.stats[n] for n in probed.order if probed.stats[n].count), None)
        data = DataProfile(n_rows=int(first.count) if first is not None else 0,
                           source="rows seen by the first probed layer")
    d = _draft(step, "train", needs, data, facts=dict(facts), targets=targets,
               optimizer=optimizer, params=params, stats=probed.stats)
    d["layers"], d["first_layer"] = _layer_stats(facts, probed)
    if d["first_layer"] is None and inputs is not None and d["layers"]:
        d["first_layer"] = d["layers"][0].name  # the probe did not watch inputs: the first run
    if output is not None:
        logits, source = extract_logits(output)
        d["output"] = _output_stats(logits, source, d["layers"])
        if targets is not None:
            with torch.no_grad():
                _loss(d, logits.detach(), targets, loss_fn, output)
    if loss is not None:
        d["loss0"] = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if has_grad:
        d["grads"] = grads
        _grad_norms(d["layers"], d["facts"], grads, params)
    else:
        d["skipped"].append("grad.*: no parameter has a .grad at this step")
    if updates:
        d["updates"] = dict(updates)
        _update_ratios(d, d["facts"])
    return Measurements(**d)
