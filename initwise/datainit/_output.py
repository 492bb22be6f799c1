"""Output calibration: the initial loss equals the label-prior loss (the best constant predictor).

* bias: cross-entropy ``b_c = log p_c``; BCE the per-label log-odds ``log(p_k / (1 - p_k))``;
  MSE the per-output mean ``E[y_k]``; minus the mean of the weight part of the logits, so the
  *average* logit is exactly the prior. The class frequencies are shrunk toward uniform by the
  calibration sample's size: ``p_c = (n_c + alpha) / (n + alpha C)`` with ``alpha`` chosen by
  leave-one-out likelihood of the calibration labels (:func:`shrinkage`; at least the
  Krichevsky-Trofimov 1/2, so an unseen class gets a finite, small logit): 64 rows of 4 classes
  or 2,000 tokens of a 1,000-word vocabulary do not pin the prior down, and the held-out loss
  pays for every nat the prior was over-fitted (issue 15: held-out 1.44-1.57 vs log 4 = 1.386).
* scale: the head keeps the body's scale (it is calibrated like any layer) unless the logit
  fluctuation costs more than ``LOSS_BUDGET`` (0.5 %) of the prior loss *in expectation over
  labels drawn from the prior, independently of the logits* (:func:`expected_loss`): what a
  random head costs on rows it has never seen. The loss on the calibration rows themselves is
  not the criterion: random features that happen to correlate with those labels lower it by
  luck, which the held-out loss does not share (the first version of this rule accepted heads
  whose calibration loss was at the prior and whose held-out loss was 4-16 % above it). Only
  above the prior costs: at a zero head the expected loss is the prior loss exactly (Gibbs'
  inequality), and it grows with the head's scale. The loss on the calibration rows must also
  stay within the band, below the prior too: a head whose logits track those labels (a
  loaded or lucky head: on raw breast_cancer deep nets started 20-50 % below the prior) is
  knowledge the label-prior start is meant to rule out. The head is shrunk by bisection just
  far enough for both: a shrunken head slows learning (FINDINGS 1). For MSE each output's
  fluctuation is set to ``LOSS_BUDGET * Var(y_k)`` (grown or shrunk), growth capped at
  ``std(y_k)``: the factor standardizing the targets would have implied.
* reported: the loss on the calibration rows, the expected loss above, and a held-out loss
  (:func:`held_out_loss`: bias refitted on one half of the calibration batches, scored on the
  other, both ways).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initwise.datainit._layers import CALIBRATED_KINDS, bias_of, unit_axis, weight_of
from initwise.measure import all_reduce_sum, dist_active, unit_dim
from initwise.modelio import call_model, compute_loss, extract_logits, scored

__all__ = ["LOSS_BUDGET", "SORTED_ENTROPY", "TargetStats", "calibrate_output", "expected_loss",
           "head_params", "held_out_loss", "representative", "shrinkage"]

# Excess initial loss allowed over the label-prior loss, as a fraction of it. Derived from the
# requirement (initial loss within 5 % of the prior on the whole training set, which the 4
# calibration batches only sample): on raw breast_cancer (our own 80 % split, 4 seeds) the
# training-set loss exceeded the calibration loss by up to 3 points, so 0.5 % is spent on the
# head's fluctuation and the rest left to sampling (benchmarks/datainit_choose.py docstring).
LOSS_BUDGET = 0.005
# Under policy "respect", a head whose logits' signal fraction (sum of per-class variances over
# sum of second moments, across the calibration rows) is below this keeps the model's own bias:
# the features it reads are collapsed at init -- a Transformer's [CLS] or pooled token while
# attention is near-uniform -- and the prior-mismatch gradient is what first moves them. Setting
# the prior there slowed learning: BERT-tiny on benchmarks/real_models.py's token task, held-out
# loss after 100 AdamW steps 0.35 +- 0.21 with the prior vs 0.13 +- 0.06 with its own zero bias
# (0.084 vs 0.015 after 200 steps; 5 seeds); BERT, DistilBERT, RoBERTa measure ~1e-5 here. The
# doctor's collapse threshold (signal.correlation_collapse).
COLLAPSED_LOGITS = 0.02
# Calibration labels count as unrepresentative (class-sorted, unshuffled) when they hold one class
# only, or when the mean label entropy within a batch is below this fraction of the entropy of
# all calibration labels pooled (a shuffled loader: the two agree up to small-sample bias).
SORTED_ENTROPY = 0.25


@dataclass
class TargetStats:
    """Global (all-rank) statistics of the calibration targets."""

    kind: str
    n: float
    s1: torch.Tensor  # ce: class counts; bce/mse: per-output sums
    s2: torch.Tensor  # mse: per-output sums of squares (zeros otherwise)

    @classmethod
    def collect(cls, spec: Any, targets: list[torch.Tensor], n_out: int) -> TargetStats:
        s1 = torch.zeros(n_out, dtype=torch.float64)
        s2 = torch.zeros(n_out, dtype=torch.float64)
        n = 0.0
        for t in targets:
            t = torch.as_tensor(t).detach().cpu()
            if spec.kind == "ce":
                flat = scored(spec, None, t)[1].reshape(-1).long()  # a causal LM's shifted
                flat = flat[flat != -100]
                s1 += torch.bincount(flat, minlength=n_out)[:n_out].double()
                n += flat.numel()
            else:
                rows = t.double().reshape(-1, n_out)
                s1 += rows.sum(0)
                s2 += (rows * rows).sum(0)
                n += rows.shape[0]
        if dist_active():
            vals = all_reduce_sum([n, *s1.tolist(), *s2.tolist()])
            n = vals[0]
            s1 = torch.tensor(vals[1 : n_out + 1], dtype=torch.float64)
            s2 = torch.tensor(vals[n_out + 1 :], dtype=torch.float64)
        return cls(spec.kind, n, s1, s2)

    def prior_loss(self) -> float:
        """Label-prior loss: class entropy (ce), mean binary entropy (bce), mean variance (mse)."""
        if self.kind == "ce":
            p = self.s1[self.s1 > 0] / self.s1.sum()
            return float(-(p * p.log()).sum())
        mean = self.s1 / self.n
        if self.kind == "bce":
            p = mean.clamp(1e-12, 1 - 1e-12)
            return float((-(p * p.log() + (1 - p) * (1 - p).log())).mean())
        return float((self.s2 / self.n - mean * mean).clamp_min(0).mean())

    def fitted_prior_loss(self) -> float:
        """The loss on these labels of the shrunk prior init sets (:meth:`prior_probs`): at
        least :meth:`prior_loss`, the loss of the unshrunk frequencies."""
        if self.kind == "mse":
            return self.prior_loss()
        p = self.prior_probs()
        if self.kind == "ce":
            return float(-(self.s1 * p.log()).sum() / max(self.n, 1e-300))
        q = self.s1 / max(self.n, 1e-300)
        return float((-(q * p.log() + (1 - q) * (1 - p).log())).mean())

    def prior_probs(self) -> torch.Tensor:
        """The prior's probabilities: class frequencies (ce) or positive rates (bce) shrunk
        toward uniform by :func:`shrinkage`."""
        if self.kind == "ce":
            a = shrinkage(self.s1)
            return (self.s1 + a) / (self.n + a * self.s1.numel())
        a = torch.tensor([shrinkage(torch.stack([c, self.n - c])) for c in self.s1],
                         dtype=torch.float64)
        return (self.s1 + a) / (self.n + 2 * a)

    def prior_bias(self) -> torch.Tensor:
        """The constant logits of the best constant predictor (see the module docstring)."""
        if self.kind == "ce":
            logp = self.prior_probs().log()
            return logp - logp.mean()
        if self.kind == "bce":
            p = self.prior_probs()
            return (p / (1 - p)).log()
        return self.s1 / self.n

    def uniform(self) -> TargetStats:
        """The same count with every class equally frequent (ce): the max-entropy prior."""
        s1 = torch.full_like(self.s1, self.n / max(self.s1.numel(), 1))
        return TargetStats(self.kind, self.n, s1, self.s2)

    def var(self) -> torch.Tensor:
        """Per-output target variance (mse)."""
        mean = self.s1 / self.n
        return (self.s2 / self.n - mean * mean).clamp_min(0)


#: the pseudo-counts ``alpha`` :func:`shrinkage` chooses among (the first: Krichevsky-Trofimov)
_ALPHAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0)


def shrinkage(counts: torch.Tensor) -> float:
    """The pseudo-count ``alpha`` per class that best predicts each calibration label from the
    others (leave-one-out log-likelihood of ``(n_c - 1 + alpha) / (n - 1 + alpha C)``).

    Few rows per class, or classes about equally frequent: a large ``alpha`` (toward uniform);
    many rows of a skewed distribution: the Krichevsky-Trofimov 1/2.

    Example:
        >>> shrinkage(torch.tensor([16.0, 17.0, 15.0, 16.0]))  # balanced: shrink all the way
        4096.0
        >>> shrinkage(torch.tensor([900.0, 90.0, 9.0, 1.0]))
        1.0
    """
    c = counts.double().clamp_min(0)
    n, k = float(c.sum()), c.numel()
    if n < 2 or k < 2:
        return _ALPHAS[0]
    seen = c[c > 0]

    def loo(a: float) -> float:
        return float((seen * ((seen - 1 + a).log() - math.log(n - 1 + a * k))).sum())

    return max(_ALPHAS, key=lambda a: (loo(a), -a))


def _entropy(counts: torch.Tensor) -> float:
    p = counts[counts > 0] / counts.sum().clamp_min(1e-300)
    return float(-(p * p.log()).sum())


def representative(spec: Any, ts: TargetStats, targets: list[torch.Tensor],
                   n_out: int) -> tuple[TargetStats, str | None]:
    """The target statistics to calibrate the head with, and a warning if the calibration
    labels look unrepresentative (cross-entropy only).

    One class seen by a head of several, or batches that each hold (almost) one class (mean
    within-batch label entropy below ``SORTED_ENTROPY`` of the pooled entropy): the labels'
    prior would be that class's, so the max-entropy (uniform) prior is used instead.
    """
    if spec.kind != "ce" or n_out < 2 or ts.n <= 0:
        return ts, None
    seen = int((ts.s1 > 0).sum())
    pooled = _entropy(ts.s1)
    within = []
    for t in targets:
        flat = torch.as_tensor(t).detach().cpu().reshape(-1).long()
        flat = flat[flat != -100]
        if flat.numel():
            within.append(_entropy(torch.bincount(flat, minlength=n_out).double()))
    mean_within = sum(within) / len(within) if within else 0.0
    one_class = seen == 1
    sorted_ = len(within) >= 2 and mean_within < SORTED_ENTROPY * pooled
    if not (one_class or sorted_):
        return ts, None
    why = (f"they hold {seen} of the head's {n_out} classes" if one_class else
           f"each batch holds nearly one class (label entropy {mean_within:.3g} nats per batch "
           f"vs {pooled:.3g} pooled; {seen} of {n_out} classes seen)")
    return ts.uniform(), (
        f"init: the calibration labels look unrepresentative: {why}; a class-sorted or "
        f"unshuffled loader, or too few rows? The head was set to the uniform prior over "
        f"{n_out} classes instead of these labels' prior. Shuffle the loader "
        f"(DataLoader(..., shuffle=True)) or pass more batches (batches=).")


def head_params(graph: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The output layers' own parameters with a copy of their values (to keep a head)."""
    return [(p, p.detach().clone()) for n in graph.layers if n.is_output
            for p in n.module.parameters(recurse=False)]


def _bshape(y: torch.Tensor, udim: int, v: torch.Tensor) -> torch.Tensor:
    shape = [1] * y.dim()
    shape[udim] = -1
    return v.to(y.device, y.dtype).reshape(shape)


def _find_head(graph: Any, n_out: int) -> Any | None:
    heads = [n for n in graph.layers if n.is_output and n.kind in CALIBRATED_KINDS
             and weight_of(n.module) is not None]
    return heads[-1] if heads else None


def _capture(model: nn.Module, batches: list, head: Any) -> tuple[list, bool]:
    """Per batch (head output, targets), and whether the head output *is* the logits."""
    outs: list = []
    direct = True

    def hook(mod: nn.Module, args: tuple, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            outs.append(out)

    h = head.module.register_forward_hook(hook)
    pairs = []
    try:
        with torch.no_grad():
            for inputs, targets in batches:
                outs.clear()
                logits, _ = extract_logits(call_model(model, inputs))
                same = bool(outs) and outs[-1].shape == logits.shape \
                    and outs[-1].data_ptr() == logits.data_ptr()
                direct = direct and same
                pairs.append((logits.detach().double(), targets))
    finally:
        h.remove()
    return pairs, direct


@dataclass
class HeadResult:
    """What :func:`calibrate_output` did: a note for the report, warnings, and the losses it
    predicts for new rows (:func:`expected_loss`, :func:`held_out_loss`; ``None`` when the head
    was not calibrated or the loss has no such estimate)."""

    note: str = ""
    warnings: list[str] = field(default_factory=list)
    expected: float | None = None
    held_out: float | None = None


def calibrate_output(model: nn.Module, batches: list, graph: Any, spec: Any,
                     ts: TargetStats, n_out: int, *,
                     keep: dict[str, str] | None = None, respect: bool = False) -> HeadResult:
    """Set the head's bias to the label prior and its scale within the loss budget.

    Args:
        keep: ``{module name: reason}`` of layers to leave alone (the head among them: no-op).
        respect: the model keeps its own init (``policy="respect"``): a head whose logits are
            collapsed (:data:`COLLAPSED_LOGITS`) is then left as the model set it.

    Returns:
        A :class:`HeadResult`.
    """
    head = _find_head(graph, n_out)
    if head is None:
        return HeadResult(warnings=["init: no output layer found in the graph; the label prior "
                                    "was not set."])
    if keep and head.name in keep:
        return HeadResult(warnings=[f"init: output layer {head.name!r} was left as it is "
                                    f"({keep[head.name]}); the label prior was not set."])
    w = weight_of(head.module)
    udim = unit_dim(head.module, head.kind)
    bias = bias_of(head.module, n_out)
    tied = any(weight_of(n.module) is w for n in graph.layers if n is not head)
    pairs, direct = _capture(model, batches, head)
    if pairs[0][0].shape[udim] != n_out:
        return HeadResult(warnings=[f"init: output layer {head.name!r} does not produce the "
                                    f"{n_out} logits; the label prior was not set."])
    warns = []
    # center: per-unit mean of the weight part of the logits
    b_cur = bias.detach().double().to(pairs[0][0].device) if bias is not None \
        else torch.zeros(n_out, dtype=torch.float64, device=pairs[0][0].device)
    sums = torch.zeros(n_out + 1, dtype=torch.float64)
    sq = torch.zeros(n_out, dtype=torch.float64)
    for y, _ in pairs:
        rows = (y - _bshape(y, udim, b_cur)).movedim(udim, -1).reshape(-1, n_out).cpu()
        sums[:n_out] += rows.sum(0)
        sums[n_out] += rows.shape[0]
        sq += (rows * rows).sum(0)
    vals = all_reduce_sum([*sums.tolist(), *sq.tolist()])
    cnt = vals[n_out]
    mu = torch.tensor(vals[:n_out], dtype=torch.float64) / cnt
    fluct = (torch.tensor(vals[n_out + 1 :], dtype=torch.float64) / cnt - mu * mu).clamp_min(0)
    signal = float(fluct.sum() / (fluct + mu * mu).sum()) if float((fluct + mu * mu).sum()) \
        > 0 else 1.0
    if respect and bias is None:
        return HeadResult(
            "head kept as the model set it: it has no bias, so the label prior cannot be set "
            "(policy 'respect' does not re-scale the model's own head instead)",
            [f"init: output layer {head.name!r} has no bias"
             + (" and its weight is shared with another layer (tied embeddings)" if tied else "")
             + ", so the label prior could not be set: the initial loss stays what the "
             "model's own head gives (it may exceed the label-prior loss)."])
    if respect and spec.kind != "mse" and signal < COLLAPSED_LOGITS:
        return HeadResult(
            f"head kept as the model set it: its logits barely vary across samples (signal "
            f"fraction {signal:.2g} < {COLLAPSED_LOGITS:g}); the label prior would remove the "
            f"prior-mismatch gradient that moves the collapsed features it reads")
    prior = ts.prior_bias()
    centered = [(y - _bshape(y, udim, b_cur + mu.to(y.device)), t) for y, t in pairs]
    a: float | torch.Tensor = 1.0
    if direct and not tied:
        a = _choose_scale(spec, ts, centered, prior, fluct)
    elif tied and bias is not None:
        warns.append(f"init: output layer {head.name!r} shares its weight with another layer; "
                     f"only its bias was calibrated.")
    if bias is None:
        also = " and its weight is shared with another layer (tied embeddings)" if tied else ""
        warns.append(f"init: output layer {head.name!r} has no bias{also}, so the label prior "
                     f"could not be set: the initial loss stays what the logits give (it may "
                     f"exceed the label-prior loss).")
    _set_head(head.module, w, bias, a, prior, mu, n_out, tied)
    res = HeadResult(_describe(spec, a, direct), warns)
    if spec.kind != "mse" and bias is not None:
        scale = a if not tied else 1.0
        res.expected = expected_loss(spec, centered, scale if not torch.is_tensor(scale)
                                     else float(scale.mean()), prior, ts.prior_probs())
        if not dist_active():  # the halves are this rank's batches: a local estimate
            res.held_out = held_out_loss(
                spec, lambda ts_: TargetStats.collect(spec, ts_, n_out), pairs, b_cur,
                scale, n_out)
    return res


def _mean_loss(spec: Any, pairs: list, a: float | torch.Tensor, base: torch.Tensor) -> float:
    """Mean loss on the calibration rows of the logits ``a * y + base``."""
    udim = 1 if spec.class_dim == 1 else -1
    tot, cnt = 0.0, 0.0
    for y, t in pairs:
        logits = _bshape(y, udim, a if torch.is_tensor(a) else torch.tensor([a])) * y \
            + _bshape(y, udim, base)
        n = float((scored(spec, None, t)[1] != -100).sum()) if spec.kind == "ce" \
            else float(t.numel())
        tot += float(compute_loss(spec, logits, t.to(y.device))) * n
        cnt += n
    tot, cnt = all_reduce_sum([tot, cnt])
    return tot / max(cnt, 1.0)


def expected_loss(spec: Any, pairs: list, a: float, prior: torch.Tensor,
                  probs: torch.Tensor) -> float:
    """Mean loss of the logits ``a * y + prior`` (``y``: the centered weight part) for labels
    drawn from ``probs`` independently of the logits (ce: class probabilities; bce: positive
    rates): what the head costs on rows it has never seen. At ``a = 0`` it is the entropy of
    ``probs``; it grows with ``a``."""
    udim = 1 if spec.class_dim == 1 else -1
    tot, cnt = 0.0, 0.0
    for y, _ in pairs:
        z = (a * y + _bshape(y, udim, prior)).movedim(udim, -1)
        z = z.reshape(-1, z.shape[-1])
        p = probs.to(z.device, z.dtype)
        if spec.kind == "ce":
            tot += float(-(torch.log_softmax(z, dim=-1) * p).sum())
        else:
            tot += float(-(p * F.logsigmoid(z) + (1 - p) * F.logsigmoid(-z)).mean(-1).sum())
        cnt += z.shape[0]
    tot, cnt = all_reduce_sum([tot, cnt])
    return tot / max(cnt, 1.0)


def _choose_scale(spec: Any, ts: TargetStats, centered: list, prior: torch.Tensor,
                  fluct: torch.Tensor) -> float | torch.Tensor:
    if spec.kind == "mse":
        tvar = ts.var()
        want = (LOSS_BUDGET * tvar / fluct.clamp_min(1e-300)).sqrt()
        cap = tvar.sqrt().clamp_min(1.0)
        ok = (fluct > 0) & (tvar > 0)
        return torch.where(ok, torch.minimum(want, cap), torch.ones_like(want))
    probs = ts.prior_probs()
    high_new = expected_loss(spec, centered, 0.0, prior, probs) * (1 + LOSS_BUDGET)
    target = ts.fitted_prior_loss()
    low, high = target * (1 - LOSS_BUDGET), target * (1 + LOSS_BUDGET)

    def in_band(a: float) -> bool:
        return (expected_loss(spec, centered, a, prior, probs) <= high_new
                and low <= _mean_loss(spec, centered, a, prior) <= high)

    if in_band(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if in_band(mid):
            lo = mid
        else:
            hi = mid
    return lo


def held_out_loss(spec: Any, ts_of: Any, pairs: list, b_cur: torch.Tensor,
                  a: float | torch.Tensor, n_out: int) -> float | None:
    """The loss after init on rows the bias was not fitted to (``None`` below two batches).

    The calibration batches are split in two halves (even / odd batch index); the bias is
    refitted on one half (label prior of its labels, minus the mean weight part of its
    logits, with the head scale ``a`` that init chose) and the other half is scored; both
    ways, weighted by rows.

    Args:
        ts_of: ``targets -> TargetStats`` for a list of target tensors.
        pairs: per batch ``(logits, targets)`` as the head produced them before calibration.
        b_cur: the head's bias when ``pairs`` were captured.
    """
    if len(pairs) < 2:
        return None
    udim = 1 if spec.class_dim == 1 else -1
    avec = a if torch.is_tensor(a) else torch.full((n_out,), float(a), dtype=torch.float64)
    weight_part = [((y - _bshape(y, udim, b_cur)) * _bshape(y, udim, avec), t) for y, t in pairs]
    halves = [weight_part[0::2], weight_part[1::2]]
    tot, cnt = 0.0, 0.0
    for fit, score in ((halves[0], halves[1]), (halves[1], halves[0])):
        rows = torch.cat([y.movedim(udim, -1).reshape(-1, n_out) for y, _ in fit])
        bias = ts_of([t for _, t in fit]).prior_bias().to(rows.device) - rows.mean(0)
        for y, t in score:
            logits = y + _bshape(y, udim, bias)
            n = float((scored(spec, None, t)[1] != -100).sum()) if spec.kind == "ce" \
                else float(t.numel())
            if n:
                tot += float(compute_loss(spec, logits, t.to(y.device))) * n
            cnt += n
    return tot / cnt if cnt else None


def _set_head(module: nn.Module, w: torch.Tensor, bias: torch.Tensor | None,
              a: float | torch.Tensor, prior: torch.Tensor, mu: torch.Tensor, n_out: int,
              tied: bool) -> None:
    axis = unit_axis(module, w, n_out)
    avec = a if torch.is_tensor(a) else torch.full((n_out,), float(a), dtype=torch.float64)
    with torch.no_grad():
        if not tied:
            if axis is None:
                w.mul_(float(avec.mean()))
            else:
                shape = [1] * w.dim()
                shape[axis] = -1
                w.mul_(avec.to(w.device, w.dtype).reshape(shape))
        if bias is not None:
            scale = avec if not tied else torch.ones_like(avec)
            bias.copy_((prior - scale * mu).to(bias.device, bias.dtype))


def _describe(spec: Any, a: float | torch.Tensor, direct: bool) -> str:
    if torch.is_tensor(a):
        lo, hi = float(a.min()), float(a.max())
        return f"head: bias = mean(y); per-output scale x{lo:.3g}..x{hi:.3g}"
    kind = "log prior" if spec.kind == "ce" else "log-odds"
    scale = "" if math.isclose(a, 1.0) else f"; head scaled x{a:.3g} to the loss budget"
    how = "" if direct else " (logits not the head's output: bias only)"
    return f"head: bias = {kind}{scale}{how}"
