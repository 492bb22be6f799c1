"""`doctor(model, batch)`: measure one batch, run the checks, return a Diagnosis.

The doctor is two steps on the measurement core: :func:`initwise.measure.measure` fills a
:class:`~initwise.measure.Measurements` record, and the registered checks turn it into findings.
The same checks run on measurements of a live training step
(:func:`initwise.measure.from_training_step`).

Cost: "quick" = graph trace + one probed forward; "standard" adds one backward
(``torch.autograd.grad``, so ``.grad`` is never touched); "full" adds one optimizer step on a
deep copy of (model, optimizer) and one forward of the copy, plus the theory check.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from initwise.doctor.check import Check
from initwise.doctor.diagnosis import Diagnosis
from initwise.doctor.registry import PRESETS, CheckRegistry, run_checks
from initwise.graph import check_materialized
from initwise.measure import LayerFacts, Measurements, layer_facts, measure
from initwise.modelio import (
    LossSpec,
    check_batch,
    check_hookable,
    forward_context,
    loss_warning,
    model_device,
    output_warning,
    split_batch,
    to_torch,
)
from initwise.options import check_on_unknown, check_seed
from initwise.progress import Progress, check_verbose
from initwise.state import COPY_LIMIT, guarded, seeded_rng

__all__ = ["doctor"]

#: What each preset measures.
PRESET_NEEDS = {"quick": ("forward",), "standard": ("forward", "grad"),
                "full": ("forward", "grad", "update")}


def _validate(model: Any, checks: Any, on_unknown: Any) -> None:
    check_hookable(model, "doctor")
    check_materialized(
        model, then="call initwise.doctor",
        meta_remedy="the doctor measures real weights: call model.to_empty(device='cpu') and "
                    "initialize it (initwise.apply(model)) first.")
    if checks not in PRESETS:
        raise ValueError(f"doctor: unknown checks preset {checks!r}; valid presets: {PRESETS}.")
    check_on_unknown(on_unknown, "doctor")


def _unknown(facts: Mapping[str, LayerFacts], on_unknown: str) -> str | None:
    unknown = [n for n, f in facts.items() if f.kind == "other"]
    if not unknown:
        return None
    msg = (f"doctor: {len(unknown)} module(s) of unknown kind ({', '.join(unknown[:5])}): "
           f"measured generically; dead/saturated checks need their activation.")
    if on_unknown == "error":
        raise ValueError(msg + " Pass on_unknown='warn' or 'skip' to diagnose anyway.")
    if on_unknown == "warn":
        warnings.warn(msg, stacklevel=3)
    return msg


def doctor(
    model: nn.Module,
    batch: Any,
    *,
    loss_fn: str | Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checks: str = "standard",
    on_unknown: str = "warn",
    seed: int | torch.Generator = 0,
    registry: CheckRegistry | Iterable[Check] | None = None,
    verbose: bool | None = None,
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
        seed: seeds the random draws of the model's own forward (dropout) inside a forked RNG,
            so the same seed gives the same diagnosis and the caller's global RNG state is
            never touched. An int or a ``torch.Generator``. Default 0.
        registry: the checks to run: a :class:`~initwise.doctor.CheckRegistry` or an iterable
            of :class:`~initwise.doctor.Check` (their state lives on this run); default None:
            the registered checks (:data:`initwise.doctor.registry.CHECKS`).
        verbose: progress on standard error (:mod:`initwise.progress`): ``None`` (default)
            only for work that takes more than a couple of seconds, ``True`` always,
            ``False`` never.

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
    _validate(model, checks, on_unknown)
    check_verbose(verbose, "doctor")
    if not isinstance(seed, torch.Generator):
        check_seed(seed, "doctor")
    progress = Progress("doctor", verbose)
    raw_inputs, targets = split_batch(batch, model)
    inputs = to_torch(raw_inputs, model_device(model))
    _check_batch(inputs, None if targets is None else to_torch(targets))
    with guarded(model, restore="always", copy_limit=COPY_LIMIT, rng=False), \
            seeded_rng(seed), forward_context(model, "doctor: batch"):
        progress.phase("tracing the model on the batch")
        facts, source = layer_facts(model, inputs)
        notes = [] if source == "graph" else [f"plan: {source} (functional activations not seen)"]
        note = _unknown(facts, on_unknown)
        notes += [note] if note else []
        progress.phase({"quick": "measuring a forward", "standard": "measuring a forward and a "
                        "backward", "full": "measuring a forward, a backward and a step on a "
                        "copy"}[checks])
        m = measure(model, (inputs, targets) if targets is not None else inputs,
                    needs=PRESET_NEEDS[checks], loss_fn=loss_fn, optimizer=optimizer,
                    facts=facts, preset=checks)
        m.skipped[:0] = notes
        progress.phase("running the checks")
        findings = run_checks(m, registry, preset=checks)
    progress.done()
    for msg in (output_warning(m.output.get("source", ""), "doctor"),
                loss_warning(_spec(m), [m.targets], "doctor")):
        if msg:
            warnings.warn(msg, UserWarning, stacklevel=2)
    return _diagnosis(m, findings)


def _spec(m: Measurements) -> LossSpec | None:
    return LossSpec(m.loss_kind, inferred=True) if m.loss_kind else None


def _check_batch(inputs: Any, targets: Any) -> None:
    """Refuse what cannot be diagnosed: no rows, one row, non-finite targets, every label
    ignored. Non-finite *inputs* are diagnosed (``data.nonfinite``), not refused."""
    check_batch(inputs, targets, "doctor: batch", inputs_finite=False)
    if isinstance(targets, torch.Tensor) and not targets.is_floating_point() \
            and targets.numel() and bool((targets == -100).all()):
        raise ValueError(
            "doctor: batch: every label is the ignore index -100, so the loss and its gradients "
            "are undefined; pass a batch with real labels, or inputs alone for the forward "
            "checks.")


def _diagnosis(m: Measurements, findings: list) -> Diagnosis:
    profile = m.data.to_dict()
    if profile.get("n_features") is None and m.first_layer is not None:
        profile["n_features"] = getattr(m.facts[m.first_layer].module, "num_embeddings", None)
    summary = {"loss_kind": m.loss_kind, "loss_at_init": m.loss0, "label_prior_loss": m.prior,
               "loss_after_step": m.loss_after, "first_layer": m.first_layer,
               "output": dict(m.output), "class_ratio": m.extra.get("class_ratio"),
               "prior_source": m.extra.get("prior_source", "label prior of the batch")}
    return Diagnosis(findings=findings, layers=m.layers, data_profile=profile,
                     skipped=m.skipped, preset=m.preset, summary=summary)
