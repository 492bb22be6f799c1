"""`Monitor`: the doctor's checks carried into training, at a cost too small to notice.

Two tiers, both on the measurement core (:mod:`initwise.measure`):

* **cheap, every step, on the device** -- the loss goes into a device ring buffer and a
  non-finite flag is OR-ed on the device: no ``.item()`` per step. Every ``sync_every`` steps
  (``k``) the buffer is read once (one host synchronization) into the loss EMA / noise, the
  plateau, divergence and warm-up detectors; on those steps only, the global gradient norm
  (``torch._foreach_norm``; sparse gradients through their values) and the update/weight ratio
  of every tensor are measured, the update from the parameters the optimizer really changed
  (a step pre-hook copies them just before that ``optimizer.step()``).
* **scheduled, every ``every`` steps** -- a :func:`~initwise.measure.probe` is armed for the
  user's next forward (hooks exist for that one forward only), and the step's
  :class:`~initwise.measure.Measurements` (``.grad`` as the backward filled it, the real update)
  go through the doctor's checks that are meaningful in training (``phase="train"``) and the
  dying-unit detector; with ``repair=`` dead units are revived in place
  (:func:`initwise.monitor.repair.repair_units`).

Findings carry the step where the problem started. A non-finite loss or gradient stops the run
with :class:`TrainingDiverged` naming the last good step (optionally restoring the weights of
that step).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initwise.doctor import CHECKS, Check, CheckRegistry, Finding, run_checks
from initwise.measure import (
    LayerFacts,
    Probe,
    dist_active,
    from_training_step,
    layer_facts,
    probe,
    structural_facts,
)
from initwise.measure.stats import all_reduce_sum
from initwise.monitor.detect import Divergence, DyingUnits, EpochCliff, LossTracker, Plateau, Warmup
from initwise.monitor.repair import Repair, repair_units
from initwise.options import resolve_generator

__all__ = ["JointOptimizer", "Monitor", "MonitorReport", "TrainingDiverged", "UPDATE_BAND"]

#: Update/weight ratio bands per optimizer family: outside, for ``UPDATE_PATIENCE`` sampled
#: steps in a row, is a finding. SGD: the classic ~1e-3 (Karpathy's rule); Adam-like: the step is
#: ~lr per element whatever the gradient, so its ratio is lr / |w| and the band is wider.
UPDATE_BAND = {"sgd": (1e-6, 5e-2), "adam": (1e-6, 1e-1), "other": (1e-7, 1e-1)}
UPDATE_PATIENCE = 3
#: Embedding collapse: effective rank below this share of its first measurement.
COLLAPSE_SHARE, COLLAPSE_ROWS = 0.5, 2048
#: A tensor's ratio more than UPDATE_JUMP x its own median over its last UPDATE_HISTORY healthy
#: samples is out of band too (Adam at lr x100 on one layer stays inside the absolute band).
UPDATE_JUMP, UPDATE_HISTORY = 10.0, 8
#: Monitor codes (added to the doctor's vocabulary for training).
MONITOR_CODES = ("train.nonfinite", "train.divergence", "train.plateau", "train.warmup",
                 "train.epoch_cliff", "units.dying", "update.ratio", "embedding.collapse")


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient: the run was stopped.

    Attributes:
        step: the step at which it was seen. last_good_step: the last step whose loss and
        gradients were all finite. finding: the ``train.nonfinite`` finding. restored: whether
        the weights of ``last_good_step`` were put back.
    """

    def __init__(self, msg: str, *, step: int, last_good_step: int | None, finding: Finding,
                 restored: bool) -> None:
        super().__init__(msg)
        self.step, self.last_good_step = step, last_good_step
        self.finding, self.restored = finding, restored


@dataclass
class MonitorReport:
    """What a monitor found so far: findings (with their start step) and repair events."""

    step: int
    findings: list[Finding]
    events: list[Any] = field(default_factory=list)
    loss_ema: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "loss_ema": self.loss_ema,
                "findings": [f.to_dict() for f in self.findings],
                "events": [e.to_dict() if hasattr(e, "to_dict") else dict(vars(e))
                           for e in self.events]}

    def __str__(self) -> str:
        head = f"initwise monitor at step {self.step}"
        if self.loss_ema is not None and math.isfinite(self.loss_ema):
            head += f" (loss EMA {self.loss_ema:.4g})"
        if not self.findings and not self.events:
            return head + ": no alarm."
        lines = [head + ":"]
        for f in self.findings:
            lines.append(f"  [{f.severity}] {f.check} at {f.where} (since step {f.step}): "
                         f"{f.evidence}")
            lines.append(f"      fix: {f.fix}")
        for e in self.events:
            lines.append(f"  [repair] step {e.step}: {e.layer}: {len(e.units)} unit(s) "
                         f"({e.reason})")
        return "\n".join(lines)


class JointOptimizer:
    """Several optimizers seen as one (e.g. Adam on the dense layers + SparseAdam on a table):
    the union of their ``param_groups``; ``optimizers`` lists them.

    Checks read ``param_groups`` (which parameters are optimized, their learning rates); the
    repair resets each optimizer's own state (:func:`initwise.monitor.repair.repair_units`).
    """

    def __init__(self, optimizers: list[Any]) -> None:
        if not optimizers:
            raise ValueError("Monitor: optimizer= is an empty sequence.")
        self.optimizers = optimizers

    @classmethod
    def of(cls, optimizer: Any) -> JointOptimizer:
        return cls(list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer])

    def same(self, optimizer: Any) -> bool:
        other = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
        return len(other) == len(self.optimizers) and all(
            a is b for a, b in zip(other, self.optimizers))

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers for g in o.param_groups]

    @property
    def name(self) -> str:
        return " + ".join(type(o).__name__ for o in self.optimizers)


def _family(optimizer: Any) -> str:
    if isinstance(optimizer, JointOptimizer):
        optimizer = optimizer.optimizers[0]
    name = type(optimizer).__name__.lower()
    if "adam" in name or "rmsprop" in name or "adagrad" in name or "lion" in name:
        return "adam"
    return "sgd" if "sgd" in name else "other"


def _norm(g: torch.Tensor) -> torch.Tensor:
    if g.is_sparse:
        return g.coalesce().values().double().norm()
    return g.detach().double().norm()


class Monitor:
    """Watch a training run; report stalls, dying units, bad gradients and updates; repair.

    Args:
        model: the model being trained.
        every: steps between two scheduled measurements (probe on the user's forward + the
            doctor's training checks). Default 100.
        sync_every: steps between two host synchronizations of the cheap tier (the loss buffer,
            gradient norm and update ratios are read then). Default 16.
        checks: the doctor preset whose training-phase checks run on scheduled steps
            (``"quick"`` forward only, ``"standard"`` + gradients, ``"full"`` + updates).
            Default "full".
        registry: the checks to run (a :class:`~initwise.doctor.CheckRegistry` or Checks);
            default: the registered ones.
        repair: ``False``, ``True`` (the default :class:`~initwise.monitor.Repair` policy), or a
            ``Repair``: revive dead units in place on scheduled steps. Default False.
        log: a sink or a list of sinks, each ``write(step, scalars: dict[str, float])`` and
            ``close()`` (:mod:`initwise.monitor.sinks`). Default None.
        example_inputs: inputs for one graph trace (exact activations, functional ones too);
            without them the first scheduled step captures the user's inputs and traces once.
        stop_on_nonfinite: raise :class:`TrainingDiverged` on a non-finite loss/gradient.
            Default True.
        restore_last_good: keep a copy of the weights at each clean synchronization and put it
            back when stopping (costs one copy of the parameters). Default False.
        plateau, divergence, dying, warmup: detector settings (:mod:`initwise.monitor.detect`).
        seed: seeds the repair draws (:func:`initwise.options.resolve_generator`). Default 0.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> mon = Monitor(net, every=20, sync_every=5)
        >>> x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
        >>> for _ in range(40):
        ...     loss = nn.functional.cross_entropy(net(x), y)
        ...     opt.zero_grad(); loss.backward(); opt.step()
        ...     _ = mon.step(loss=loss, optimizer=opt)
        >>> mon.findings
        []
        >>> mon.close()
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 100,
        sync_every: int = 16,
        checks: str = "full",
        registry: CheckRegistry | Iterable[Check] | None = None,
        repair: Any = False,
        log: Any = None,
        example_inputs: Any = None,
        stop_on_nonfinite: bool = True,
        restore_last_good: bool = False,
        plateau: Plateau | None = None,
        divergence: Divergence | None = None,
        dying: DyingUnits | None = None,
        warmup: Warmup | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Monitor: model must be an nn.Module, got {type(model).__name__}.")
        for name, v in (("every", every), ("sync_every", sync_every)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Monitor: {name}={v!r}; expected a positive int.")
        if checks not in ("quick", "standard", "full"):
            raise ValueError(f"Monitor: checks={checks!r}; valid: 'quick', 'standard', 'full'.")
        self.model = getattr(model, "_orig_mod", model)  # torch.compile: hook the original
        if self.model is not model:
            warnings.warn("Monitor: a torch.compile'd model: the scheduled tier hooks the "
                          "original module, which recompiles the graph on scheduled steps; pass "
                          "every= large, or checks='quick', to keep that rare.", stacklevel=2)
        self.every, self.sync_every, self.checks = every, sync_every, checks
        self.registry = registry if registry is not None else CHECKS
        self.repair_policy = self._repair_policy(repair)
        self.sinks = [] if log is None else (list(log) if isinstance(log, (list, tuple))
                                            else [log])
        self.stop_on_nonfinite, self.restore_last_good = stop_on_nonfinite, restore_last_good
        self.generator, _ = resolve_generator(seed=seed, where="Monitor")
        self.loss = LossTracker()
        self.plateau = plateau or Plateau()
        self.divergence = divergence or Divergence()
        self.dying = dying or DyingUnits()
        self.warmup = warmup or Warmup()
        self.cliff = EpochCliff()
        self.steps = 0
        self.findings: list[Finding] = []
        self.events: list[Any] = []  # repairs made (RepairEvent with units)
        self.skipped_repairs: list[Any] = []  # layers a repair left alone, with the reason
        self.last_good_step: int | None = None
        self._active: dict[tuple[str, str], Finding] = {}
        self._update_strikes: dict[str, int] = {}
        self._ratio_history: dict[str, list[float]] = {}
        self._erank0: dict[str, float] = {}
        self._data_checked = False
        self._facts: dict[str, LayerFacts] = structural_facts(self.model)
        self._traced = False
        self._example = example_inputs
        self._pending: list[Any] = []
        self._scale: float | None = None
        self._skipped = False
        self._optimizer: Any = None
        self._pre_hook: list[Any] | None = None
        self._before: dict[str, torch.Tensor] | None = None
        self._stack: contextlib.ExitStack | None = None
        self._probe: Probe | None = None
        self._capture: Any = None
        self._captured: Any = None
        self._good: dict[str, torch.Tensor] | None = None
        self.scalars: dict[str, float] = {}
        self._pending_scalars: dict[str, float] = {}
        if example_inputs is not None:
            self._trace(example_inputs)

    # ---- Lightning-style hooks (the framework adapters call them) --------------------------
    def on_train_start(self) -> None:
        """Called when training starts (nothing to do: the monitor is ready when built)."""

    def on_train_end(self) -> None:
        """Called when training ends: removes every hook the monitor holds."""
        self.close()

    # ---- the public loop API ---------------------------------------------------------------
    def step(self, loss: torch.Tensor | float | None = None, optimizer: Any = None, *,
             outputs: Any = None, targets: Any = None, scaler: Any = None,
             skipped: bool = False) -> list[Finding]:
        """Record one optimizer step (call it after ``optimizer.step()``).

        Args:
            loss: the step's loss (a tensor stays on the device). Default None.
            optimizer: the optimizer, or a sequence of optimizers stepped together (e.g. Adam +
                SparseAdam), for update ratios and the repair's state reset; given once is
                enough.
            outputs: the model's output of this step (optional: output scale checks).
            targets: the batch's targets (optional: the label prior of the loss check).
            scaler: a ``torch.amp.GradScaler`` whose scaled gradients are unscaled here; a step
                the scaler skipped (inf/NaN gradients, its scale then drops) is not a
                divergence.
            skipped: the optimizer skipped this step (an AMP overflow seen by a framework):
                its gradients are not checked for non-finite values. Default False.

        Returns:
            The findings new at this step (also appended to :attr:`findings`).

        Raises:
            TrainingDiverged: a non-finite loss or gradient with ``stop_on_nonfinite``.
        """
        self.steps += 1
        if scaler is not None and scaler.is_enabled():
            scale = float(scaler.get_scale()) if self.steps % self.sync_every == 0 else None
            if scale is not None and self._scale is not None and scale < self._scale:
                skipped = True  # GradScaler lowers its scale exactly when it skipped a step
            self._scale = scale if scale is not None else self._scale
        self._skipped = skipped
        if optimizer is not None and (self._optimizer is None
                                      or not self._optimizer.same(optimizer)):
            self._attach_optimizer(optimizer)
        if loss is not None:
            self._record_loss(loss)
        new: list[Finding] = []
        if self._probe is not None:
            new += self._scheduled(outputs, targets, scaler)
        if self.steps % self.sync_every == 0:
            new += self._sync(scaler)
        if (self.steps + 1) % self.every == 0:
            self._arm()
        self._before = None  # a sampled update is used by this step only
        for f in new:
            self.findings.append(f)
        return new

    def epoch_end(self, val_loss: float, epoch: int | None = None) -> list[Finding]:
        """Report an epoch's validation loss (for the epoch-2 cliff of sparse CTR models).

        Call it at least twice per epoch for the cliff test (e.g. every N steps with the epoch
        number); ``epoch`` counts from 0.
        """
        ev = self.cliff.update(self.steps, int(epoch if epoch is not None else 0), float(val_loss))
        if ev is None:
            return []
        f = self._finding("train.epoch_cliff", "warning", "model", self.steps,
                          f"validation loss {ev['val_loss']:.4g} at the start of epoch "
                          f"{ev['epoch'] + 1}, {ev['jump']:.1%} above epoch {ev['epoch']}'s best "
                          f"{ev['previous_best']:.4g}",
                          "Sparse embedding tables overfit in one pass: the second pass over the "
                          "same ids memorizes them (the one-epoch phenomenon, Zhang et al. 2022, "
                          "arXiv:2209.06053).",
                          "Train one epoch, or lower the embedding tables' learning rate / add "
                          "weight decay on them from epoch 2.", ev)
        if f is not None:
            self.findings.append(f)
            return [f]
        return []

    def report(self) -> MonitorReport:
        """The findings and repair events so far."""
        return MonitorReport(self.steps, list(self.findings), list(self.events),
                             self.loss.ema if self.loss.steps else None)

    def close(self) -> None:
        """Remove every hook the monitor holds; close the sinks."""
        self._disarm()
        if self._pre_hook is not None:
            for h in self._pre_hook:
                h.remove()
            self._pre_hook = None
        if self._capture is not None:
            self._capture.remove()
            self._capture = None
        for s in self.sinks:
            s.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to keep the monitor's history."""
        return {"steps": self.steps, "loss": self.loss.state_dict(),
                "plateau": self.plateau.state_dict(), "divergence": self.divergence.state_dict(),
                "dying": self.dying.state_dict(), "warmup": self.warmup.state_dict(),
                "cliff": self.cliff.state_dict(), "last_good_step": self.last_good_step,
                "findings": [f.to_dict() for f in self.findings],
                "events": [e.to_dict() for e in self.events if hasattr(e, "to_dict")],
                "update_strikes": dict(self._update_strikes),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the model's own weights are the checkpoint's business)."""
        self.steps = int(state["steps"])
        self.loss.load_state_dict(state["loss"])
        self.plateau.load_state_dict(state["plateau"])
        self.divergence.load_state_dict(state["divergence"])
        self.dying.load_state_dict(state["dying"])
        self.warmup.load_state_dict(state["warmup"])
        self.cliff.load_state_dict(state["cliff"])
        self.last_good_step = state["last_good_step"]
        self.findings = [Finding.from_dict(d) for d in state["findings"]]
        self._active = {(f.check, f.where): f for f in self.findings}
        self._update_strikes = dict(state.get("update_strikes", {}))
        self.generator.set_state(state["generator"])

    # ---- cheap tier ------------------------------------------------------------------------
    def _record_loss(self, loss: torch.Tensor | float) -> None:
        # a reference to the detached scalar: no device op, no host sync on this step
        self._pending.append(loss.detach() if isinstance(loss, torch.Tensor) else float(loss))

    def _attach_optimizer(self, optimizer: Any) -> None:
        if self._pre_hook is not None:
            for h in self._pre_hook:
                h.remove()
        self._optimizer = JointOptimizer.of(optimizer)
        self._pre_hook = [o.register_step_pre_hook(self._before_step)
                          for o in self._optimizer.optimizers
                          if hasattr(o, "register_step_pre_hook")]

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        # the step about to happen is number self.steps + 1: sample it on sync steps (once,
        # before the first of several optimizers steps)
        if self._before is not None:
            return
        if (self.steps + 1) % self.sync_every == 0 or (self.steps + 1) % self.every == 0:
            with torch.no_grad():
                self._before = {n: p.detach().clone() for n, p in self.model.named_parameters()
                                if p.requires_grad and p.dim() >= 2}

    def _read_losses(self) -> list[float]:
        """The losses recorded since the last sync, read with one host synchronization."""
        items, self._pending = self._pending, []
        tensors = [t for t in items if isinstance(t, torch.Tensor)]
        if len(tensors) == len(items) and tensors:
            return torch.stack([t.reshape(()).double() for t in tensors]).tolist()
        return [float(t) for t in items]

    def _grad_norms(self, scaler: Any) -> dict[str, float]:
        """Per-tensor gradient norms (unscaled with ``scaler``), one host synchronization."""
        named = [(n, p.grad) for n, p in self.model.named_parameters() if p.grad is not None]
        dense = [(n, g) for n, g in named if not g.is_sparse]
        sparse = [(n, g) for n, g in named if g.is_sparse]
        norms = list(torch._foreach_norm([g.detach() for _, g in dense])) if dense else []
        norms += [_norm(g) for _, g in sparse]
        if not norms:
            return {}
        values = torch.stack([v.double().reshape(()) for v in norms]).tolist()
        if scaler is not None and scaler.is_enabled():
            inv = 1.0 / float(scaler.get_scale())
            values = [v * inv for v in values]
        return dict(zip([n for n, _ in dense] + [n for n, _ in sparse], values))

    def _sync(self, scaler: Any) -> list[Finding]:
        new: list[Finding] = []
        values = self._read_losses()
        grads = self._grad_norms(scaler)
        gnorm = math.sqrt(sum(g * g for g in grads.values())) if grads else None
        bad_loss = any(not math.isfinite(v) for v in values)
        bad_grad = gnorm is not None and not math.isfinite(gnorm) and not self._skipped
        if self._skipped and gnorm is not None and not math.isfinite(gnorm):
            gnorm = None  # an AMP step the scaler skipped: its inf gradients were not applied
        if dist_active():
            flags = all_reduce_sum([float(bad_loss), float(bad_grad)])
            bad_loss, bad_grad = flags[0] > 0, flags[1] > 0
            if values:
                total = all_reduce_sum([sum(v for v in values if math.isfinite(v)),
                                        float(len(values))])
                values = [total[0] / max(total[1], 1.0)] * len(values)
        if bad_loss or bad_grad:
            return self._nonfinite(bad_loss, bad_grad)
        for v in values:
            self.loss.update(v)
        self.last_good_step = self.steps
        if self.restore_last_good:
            with torch.no_grad():
                self._good = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        self.scalars = {"loss_ema": self.loss.ema, "loss_noise": self.loss.noise,
                        **self._pending_scalars}
        self._pending_scalars = {}
        if gnorm is not None:
            self.scalars["grad_norm"] = gnorm
        new += self._loss_findings(gnorm)
        new += self._update_findings(grads)
        for s in self.sinks:
            s.write(self.steps, dict(self.scalars))
        return new

    def _loss_findings(self, gnorm: float | None) -> list[Finding]:
        out = []
        ev = self.warmup.update(self.steps, self.loss, gnorm)
        if ev is not None:
            out.append(self._finding(
                "train.warmup", "warning", "model", 1,
                "the first steps explode: " + ", ".join(f"{k} {v:.4g}" for k, v in ev.items()),
                "Adaptive optimizers take full-size steps before their second-moment estimates "
                "settle, and post-LN Transformers amplify them (Liu et al. 2020, "
                "arXiv:1908.03265; Xiong et al. 2020, arXiv:2002.04745).",
                "Add a learning-rate warm-up (e.g. linear over the first 1-5 % of steps) or "
                "lower the initial learning rate.", ev))
        ev = self.divergence.update(self.steps, self.loss)
        if ev is not None:
            out.append(self._finding(
                "train.divergence", "error", "model", ev["best_step"],
                f"loss EMA {ev['ema']:.4g} is {ev['ema'] / ev['best_ema']:.1f}x its best "
                f"{ev['best_ema']:.4g} (step {ev['best_step']})",
                "A loss far above its best value means the steps overshoot: the learning rate "
                "exceeds the stable range for the current curvature (Cohen et al. 2021, "
                "arXiv:2103.00065).",
                "Lower the learning rate (e.g. x0.3), clip gradients, or add warm-up.", ev))
        ev = self.plateau.update(self.steps, self.loss)
        if ev is not None:
            out.append(self._finding(
                "train.plateau", "warning", "model", ev["since"],
                f"loss EMA {ev['ema']:.4g} has not improved on {ev['best_ema']:.4g} by more "
                f"than its noise ({ev['noise']:.2g}) for {self.steps - ev['since']} steps "
                f"(patience {ev['patience']})",
                "A flat training loss with finite gradients: the steps are too small, units "
                "are dead or saturated, or the gradient vanishes before the early layers.",
                "Look at the units.* and grad.* findings of this run; else raise the learning "
                "rate or reduce it on plateau (torch.optim.lr_scheduler.ReduceLROnPlateau).",
                ev))
        return [f for f in out if f is not None]

    def _ratios(self) -> dict[str, float]:
        """||W_after - W_before|| / ||W_before|| per sampled tensor: float32 norms on the device
        (one fused call each), divided in float64 on the host."""
        params = dict(self.model.named_parameters())
        names = [n for n, b in self._before.items() if n in params]
        if not names:
            return {}
        with torch.no_grad():
            before = [self._before[n] for n in names]
            after = [params[n].detach() for n in names]
            deltas = torch._foreach_norm(torch._foreach_sub(after, before))
            norms = torch._foreach_norm(before)
            pairs = torch.stack([torch.stack([d.double(), w.double()])
                                 for d, w in zip(deltas, norms)]).tolist()
        return {n: d / w for n, (d, w) in zip(names, pairs) if w > 0}

    def _update_findings(self, grads: dict[str, float]) -> list[Finding]:
        if self._before is None or self._optimizer is None:
            return []
        lo, hi = UPDATE_BAND[_family(self._optimizer)]
        ratios = self._ratios()
        self._before = None
        out = []
        for n, r in ratios.items():
            self.scalars[f"update_ratio/{n}"] = r
            hist = self._ratio_history.setdefault(n, [])
            typical = sorted(hist)[len(hist) // 2] if len(hist) >= UPDATE_HISTORY // 2 else None
            reason = None
            if r > hi:
                reason = "above"
            elif r == 0.0 and grads.get(n, 0.0) > 0:
                reason = "frozen"  # a gradient, but the step did not move it at all
            elif 0 < r < lo:
                reason = "below"
            elif typical is not None and typical > 0 and r > UPDATE_JUMP * typical:
                reason = "jump"
            if reason is None:
                self._update_strikes.pop(n, None)
                hist.append(r)
                del hist[:-UPDATE_HISTORY]
                continue
            self._update_strikes[n] = self._update_strikes.get(n, 0) + 1
            if self._update_strikes[n] != UPDATE_PATIENCE:
                continue
            expected = (f"{UPDATE_JUMP:g}x above its own median {typical:.3g} of the last "
                        f"sampled steps" if reason == "jump" else f"expected {lo:g} to {hi:g} "
                        f"for {self._optimizer.name}")
            if reason == "frozen":
                evidence = (f"the step did not move it at all on {UPDATE_PATIENCE} sampled steps "
                            f"in a row although its gradient norm is {grads.get(n, 0.0):.3g}")
            else:
                evidence = (f"||dW|| / ||W|| = {r:.3g} on {UPDATE_PATIENCE} sampled steps in a "
                            f"row ({'not ' if reason == 'jump' else ''}{expected})")
            fix = ("Lower the learning rate of this tensor's group." if reason in ("above", "jump")
                   else "Check that this parameter is in the optimizer with a non-zero learning "
                        "rate and not frozen by mistake." if reason == "frozen" else
                   "Raise the learning rate, or check that this parameter is in the optimizer.")
            out.append(self._finding(
                "update.ratio", "warning", n, self.steps, evidence,
                "Each step should move a weight by a small, steady fraction of itself: ~1e-3 for "
                "SGD (Karpathy 2019); adaptive optimizers move ~lr per element.", fix,
                {"ratio": r, "band": [lo, hi], "reason": reason, "typical": typical}))
        return [f for f in out if f is not None]

    def _nonfinite(self, bad_loss: bool, bad_grad: bool) -> list[Finding]:
        what = " and ".join(x for x, b in (("loss", bad_loss), ("gradient", bad_grad)) if b)
        f = self._finding(
            "train.nonfinite", "error", "model", self.steps,
            f"non-finite {what} within steps {self.steps - self.sync_every + 1}-{self.steps}; "
            f"last good step {self.last_good_step}",
            "Once a NaN/Inf enters the weights every later step is NaN: the run is lost.",
            "Lower the learning rate, add gradient clipping or warm-up; with AMP pass the "
            "GradScaler (scaler=) so overflowing steps are skipped.",
            {"last_good_step": self.last_good_step}, force=True)
        restored = False
        if self.restore_last_good and self._good is not None:
            with torch.no_grad():
                for n, p in self.model.named_parameters():
                    if n in self._good:
                        p.copy_(self._good[n])
            restored = True
        if not self.stop_on_nonfinite:
            return [f]
        self.findings.append(f)
        raise TrainingDiverged(
            f"initwise.Monitor: {f.evidence}; training stopped"
            + (f" and the weights of step {self.last_good_step} restored" if restored else "")
            + f". {f.fix}", step=self.steps, last_good_step=self.last_good_step, finding=f,
            restored=restored)

    # ---- scheduled tier --------------------------------------------------------------------
    def _trace(self, inputs: Any) -> None:
        facts, source = layer_facts(self.model, inputs)
        self._facts, self._traced = facts, source == "graph"

    def _arm(self) -> None:
        if self._capture is None and ((not self._traced and self._example is None)
                                      or not self._data_checked):
            def grab(module: nn.Module, args: tuple, kwargs: dict) -> None:
                self._captured = (args, kwargs)

            self._capture = self.model.register_forward_pre_hook(grab, with_kwargs=True)
        self._disarm()
        self._stack = contextlib.ExitStack()
        self._probe = self._stack.enter_context(probe(self.model, self._facts, post=False,
                                                      when=self._training_forward))

    def _training_forward(self) -> bool:
        """Only forwards that train are measured (grad enabled, model in train mode): an
        evaluation forward between two steps is not the step's batch."""
        return torch.is_grad_enabled() and self.model.training

    def _disarm(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._probe = None, None

    def _scheduled(self, outputs: Any, targets: Any, scaler: Any) -> list[Finding]:
        p, facts = self._probe, self._facts
        self._disarm()
        if not p.order:
            return []  # the model did not run between arming and this step
        # the update ratios come from the cheap tier (float32 norms on the device); the float64
        # per-tensor statistics of measure.update_stats cost a full pass over every table
        updates = None
        m = from_training_step(self.model, p, facts, output=outputs, targets=targets,
                               optimizer=self._optimizer, updates=updates, step=self.steps)
        new = []
        stalled = self.steps - self.plateau.best_step >= self.plateau.patience // 2
        for f in run_checks(m, self.registry, preset=self.checks, phase="train"):
            if f.check == "units.saturated" and not stalled:
                continue  # trained tanh nets saturate while the loss still falls: not a fault
            g = self._finding(f.check, f.severity, f.where, self.steps, f.evidence, f.why, f.fix,
                              f.metrics, fix_code=f.fix_code)
            if g is not None:
                new.append(g)
        new += self._dying(p, facts)
        new += self._collapse(facts)
        if self.repair_policy is not None:
            self._repair(facts, p)
        if self._capture is not None and self._captured is not None:
            self._capture.remove()
            self._capture = None
            args, kwargs = self._captured
            self._captured = None
            inputs = args[0] if len(args) == 1 and not kwargs else (kwargs or args)
            if not self._data_checked:
                new += self._data_checks(p, facts, inputs)
            if not self._traced:
                with contextlib.suppress(Exception):  # facts stay structural if no trace
                    self._trace(inputs)
        return new

    def _data_checks(self, p: Probe, facts: dict[str, LayerFacts], inputs: Any) -> list[Finding]:
        """Once, on the first scheduled step: the doctor's data checks on the user's batch (a
        sparse first layer drawn at the wrong scale is visible only against its input)."""
        self._data_checked = True
        if not isinstance(self.registry, CheckRegistry):
            return []
        checks = [c for c in self.registry.checks_for(preset=self.checks, phase="init")
                  if all(code.startswith("data.") for code in c.codes)]
        try:
            m = from_training_step(self.model, p, facts, inputs=inputs, step=self.steps)
        except (TypeError, ValueError):  # inputs the profiler cannot read: no data checks
            return []
        out = []
        for f in run_checks(m, checks, preset=self.checks, phase="init"):
            g = self._finding(f.check, f.severity, f.where, self.steps, f.evidence, f.why, f.fix,
                              f.metrics, fix_code=f.fix_code)
            if g is not None:
                out.append(g)
        return out

    def _collapse(self, facts: dict[str, LayerFacts]) -> list[Finding]:
        """Embedding collapse: a table's effective rank (Roy & Vetterli 2007: exp of the entropy
        of its normalized singular values, on up to COLLAPSE_ROWS rows) below COLLAPSE_SHARE of
        the first value measured."""
        out = []
        for name, f in facts.items():
            if f.kind not in ("embedding", "embedding_bag") or f.weight is None:
                continue
            w = f.weight.detach()
            if w.shape[0] > COLLAPSE_ROWS:
                g = torch.Generator().manual_seed(0)
                w = w[torch.randperm(w.shape[0], generator=g)[:COLLAPSE_ROWS].to(w.device)]
            sv = torch.linalg.svdvals(w.double())
            q = sv / sv.sum().clamp_min(1e-300)
            erank = float(torch.exp(-(q * q.clamp_min(1e-300).log()).sum()))
            self._pending_scalars[f"effective_rank/{name}"] = erank
            first = self._erank0.setdefault(name, erank)
            if erank < COLLAPSE_SHARE * first:
                out.append(self._finding(
                    "embedding.collapse", "warning", name, self.steps,
                    f"effective rank {erank:.3g} of {min(w.shape)} dimensions, down from "
                    f"{first:.3g} at the first measurement (expected >= {COLLAPSE_SHARE:.0%} "
                    f"of it)",
                    "When every embedding row moves into a few directions the table stops "
                    "telling ids apart (dimensional collapse, Jing et al. 2022, "
                    "arXiv:2110.09348; Guo et al. 2023, arXiv:2310.04400 for recommenders).",
                    "Lower the table's learning rate, add weight decay or a normalization on "
                    "the embeddings, or check the interaction layer for a shortcut.",
                    {"effective_rank": erank, "first": first}))
        return [x for x in out if x is not None]

    def _dying(self, p: Probe, facts: dict[str, LayerFacts]) -> list[Finding]:
        active = {n: p.stats[n].zmax > 0 for n, f in facts.items()
                  if f.act is not None and f.act.relu_family and p.stats[n].units
                  and p.stats[n].count > 0}
        for n, a in active.items():  # one scalar per layer per check, written at the next sync
            self._pending_scalars[f"dead_fraction/{n}"] = 1.0 - float(a.double().mean())
        out = []
        for ev in self.dying.update(self.steps, active):
            out.append(self._finding(
                "units.dying", "error" if ev["fraction"] >= 0.5 else "warning", ev["layer"],
                ev["since"],
                f"{ev['units']} of {ev['of']} units ({ev['fraction']:.0%}) were active earlier "
                f"and have been inactive on every measured batch since step {ev['since']}",
                "A ReLU unit whose pre-activation is negative on every input gets no gradient "
                "and never recovers (Lu et al. 2019, arXiv:1903.06733); dying units cost "
                "capacity and, in continual training, plasticity (Dohare et al. 2024).",
                "Lower the learning rate, use a leaky activation, or revive the units in place: "
                "Monitor(..., repair=True).", ev))
        return [f for f in out if f is not None]

    # ---- repair ------------------------------------------------------------------------------
    @staticmethod
    def _repair_policy(repair: Any) -> Any:
        if repair is False or repair is None:
            return None
        if repair is True:
            return Repair()
        if isinstance(repair, Repair):
            return repair
        raise TypeError(f"Monitor: repair must be False, True or a Repair, got {repair!r}.")

    def _repair(self, facts: dict[str, LayerFacts], p: Probe) -> None:
        events = repair_units(self.model, facts, p.stats, optimizer=self._optimizer,
                              policy=self.repair_policy, generator=self.generator,
                              step=self.steps, history=self.events,
                              inputs=None)
        for e in events:
            if e.repaired:
                self.dying.forget(e.layer, torch.as_tensor(e.units, dtype=torch.long))
                self.events.append(e)
            else:
                self.skipped_repairs.append(e)

    # ---- findings ----------------------------------------------------------------------------
    def _finding(self, check: str, severity: str, where: str, step: int, evidence: str, why: str,
                 fix: str, metrics: dict[str, Any] | None = None, *, fix_code: str = "",
                 force: bool = False) -> Finding | None:
        key = (check, where)
        if key in self._active and not force:
            return None
        f = Finding(check=check, severity=severity, where=where, evidence=evidence, why=why,
                    fix=fix, fix_code=fix_code, metrics=dict(metrics or {}), step=step)
        self._active[key] = f
        return f
