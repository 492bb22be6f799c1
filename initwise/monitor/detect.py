"""Time-series detectors of the monitor: plain state machines over host-side numbers.

Each detector sees the numbers the monitor synchronizes every ``sync_every`` steps (never a
tensor) and returns findings with the step where the problem started. They are pure Python,
so they are tested on synthetic series without a model.

* :class:`Plateau` -- ``patience`` / ``min_delta`` / ``cooldown`` with the meaning Keras' and
  torch's ``ReduceLROnPlateau`` give them (mode "min", relative threshold), on the training
  loss EMA; an improvement must also exceed the loss noise, so a noisy flat loss is a plateau and
  a slowly falling one is not.
* :class:`Divergence` -- the loss EMA far above its best, or a non-finite loss or gradient.
* :class:`DyingUnits` -- units active at an earlier measurement and inactive for ``window``
  measurements since (dead *during* training, not at init).
* :class:`Warmup` -- the first steps explode: the loss EMA over the first ``steps`` steps rises
  ``factor`` x above its start, or the gradient norm grows ``factor`` x.
* :class:`EpochCliff` -- the validation loss jumps at the start of the second epoch (sparse CTR
  models overfit their embedding tables in one pass; Zhang et al. 2022, arXiv:2209.06053).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Divergence", "DyingUnits", "EpochCliff", "LossTracker", "Plateau", "Warmup"]


@dataclass
class LossTracker:
    """Exponential moving average and noise (EMA of squared deviations) of the training loss.

    Args:
        beta: EMA decay per step. Default 0.98 (about 50 steps of memory).
    """

    beta: float = 0.98
    steps: int = 0
    ema: float = math.nan
    var: float = 0.0
    first: float = math.nan

    def update(self, x: float) -> None:
        """Fold one finite loss value in."""
        self.steps += 1
        if self.steps == 1:
            self.ema, self.first = x, x
            return
        d = x - self.ema
        self.ema += (1 - self.beta) * d
        self.var = self.beta * (self.var + (1 - self.beta) * d * d)

    @property
    def noise(self) -> float:
        """Std of the loss around its EMA."""
        return math.sqrt(max(self.var, 0.0))

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "steps": self.steps, "ema": self.ema, "var": self.var,
                "first": self.first}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)


@dataclass
class Plateau:
    """Training-loss plateau, ``ReduceLROnPlateau`` semantics on the loss EMA.

    Args:
        patience: steps without improvement before the plateau is reported. Default 1000.
        min_delta: relative improvement that counts (``ema < best * (1 - min_delta)``); it must
            also exceed ``noise_factor`` x the loss noise / sqrt(patience). Default 1e-3.
        cooldown: steps after a report before watching again. Default 1000.
        warmup: steps before the first check (the EMA must settle). Default 200.
        noise_factor: Default 1.0.
    """

    patience: int = 1000
    min_delta: float = 1e-3
    cooldown: int = 1000
    warmup: int = 200
    noise_factor: float = 1.0
    best: float = math.inf
    best_step: int = 0
    cooling_until: int = -1

    def update(self, step: int, loss: LossTracker) -> dict[str, Any] | None:
        """Evidence dict when a plateau is found at ``step``, else ``None``."""
        if loss.steps < self.warmup or not math.isfinite(loss.ema):
            return None
        margin = max(self.min_delta * abs(self.best),
                     self.noise_factor * loss.noise / math.sqrt(max(self.patience, 1)))
        if loss.ema < self.best - margin or not math.isfinite(self.best):
            self.best, self.best_step = loss.ema, step
            return None
        if step < self.cooling_until or step - self.best_step < self.patience:
            return None
        self.cooling_until = step + self.cooldown
        start, self.best_step = self.best_step, step  # watch again after the cooldown
        return {"since": start, "best_ema": self.best, "ema": loss.ema, "noise": loss.noise,
                "patience": self.patience}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step,
                "cooling_until": self.cooling_until}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)


@dataclass
class Divergence:
    """The loss EMA ``factor`` x above its best value and ``lost_share`` of the progress since
    the first loss undone (after ``warmup`` steps).

    Args:
        factor: Default 3.0. warmup: Default 50. lost_share: Default 0.25.
    """

    factor: float = 3.0
    warmup: int = 50
    lost_share: float = 0.25
    best: float = math.inf
    best_step: int = 0

    def update(self, step: int, loss: LossTracker) -> dict[str, Any] | None:
        if not math.isfinite(loss.ema):
            return None
        if loss.ema < self.best:
            self.best, self.best_step = loss.ema, step
            return None
        if loss.steps < self.warmup or self.best <= 0:
            return None
        # a spike from 0.003 to 0.02 after starting at 1.4 is noise near zero, not divergence:
        # the EMA must also have lost a share of the progress made since the first loss
        lost = loss.ema - self.best >= self.lost_share * max(loss.first - self.best, 0.0)
        if loss.ema > self.factor * self.best and lost:
            return {"best_ema": self.best, "best_step": self.best_step, "ema": loss.ema}
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)


@dataclass
class DyingUnits:
    """Units that were active and have stayed inactive for ``window`` measurements.

    Args:
        window: consecutive scheduled measurements a unit must be inactive. Default 2 (with
            the monitor's every=100: reported within 200 steps of the units' death).
        min_fraction: report a layer when this share of its units died. Default 0.2 (healthy
            Transformer FFNs lose 6-15 % of their ReLUs over 2,000 steps,
            benchmarks/monitor_faults.py; the dead-unit faults kill 50 % and more).
    """

    window: int = 2
    min_fraction: float = 0.2
    seen_active: dict[str, torch.Tensor] = field(default_factory=dict)
    inactive_for: dict[str, torch.Tensor] = field(default_factory=dict)
    died_at: dict[str, torch.Tensor] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)

    def update(self, step: int, active: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        """``active``: layer -> bool tensor (unit active on some row at this measurement)."""
        out = []
        for name, act in active.items():
            act = act.detach().cpu().bool()
            if name not in self.seen_active or self.seen_active[name].shape != act.shape:
                self.seen_active[name] = act.clone()
                self.inactive_for[name] = torch.zeros(act.shape, dtype=torch.long)
                self.died_at[name] = torch.full(act.shape, -1, dtype=torch.long)
                continue
            ever = self.seen_active[name]
            run = torch.where(act, torch.zeros_like(self.inactive_for[name]),
                              self.inactive_for[name] + 1)
            self.died_at[name] = torch.where((run == 1) & ever, torch.full_like(run, step),
                                             torch.where(act, -1, self.died_at[name]))
            self.inactive_for[name] = run
            self.seen_active[name] = ever | act
            dying = ever & (run >= self.window)
            frac = float(dying.double().mean())
            if frac >= self.min_fraction and frac > self.reported.get(name, 0) + 0.05:
                self.reported[name] = frac
                since = int(self.died_at[name][dying].min())
                out.append({"layer": name, "fraction": frac, "units": int(dying.sum()),
                            "of": int(act.numel()), "since": since})
        return out

    def forget(self, name: str, units: torch.Tensor) -> None:
        """Units that were repaired start over."""
        if name in self.inactive_for:
            idx = units.long().cpu()
            self.inactive_for[name][idx] = 0
            self.died_at[name][idx] = -1
            self.seen_active[name][idx] = False
            self.reported[name] = 0

    def state_dict(self) -> dict[str, Any]:
        return {"seen_active": dict(self.seen_active), "inactive_for": dict(self.inactive_for),
                "died_at": dict(self.died_at), "reported": dict(self.reported)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, dict(v))


@dataclass
class Warmup:
    """The first steps explode: a missing learning-rate warm-up.

    Args:
        steps: the window after the start that is watched. Default 100.
        factor: loss EMA above ``factor`` x its first value, or the gradient norm above
            ``grad_factor`` x its first value while the loss EMA is above its first value.
            Default 2.0 (loss), 10 x for the gradient norm.
    """

    steps: int = 100
    factor: float = 2.0
    grad_factor: float = 10.0
    first_grad: float = math.nan
    done: bool = False

    def update(self, step: int, loss: LossTracker, grad_norm: float | None) -> dict | None:
        if self.done or step > self.steps:
            self.done = True
            return None
        if grad_norm is not None and math.isfinite(grad_norm):
            if math.isnan(self.first_grad):
                self.first_grad = grad_norm
            elif grad_norm > self.grad_factor * self.first_grad > 0 and loss.steps >= 2 \
                    and loss.ema > loss.first:
                # gradients that grow while the loss falls are learning (a network leaving a
                # flat start), not an explosion: only growth with a rising loss counts
                self.done = True
                return {"grad_norm": grad_norm, "first_grad_norm": self.first_grad,
                        "loss_ema": loss.ema, "first_loss": loss.first}
        if loss.steps >= 10 and loss.ema > self.factor * loss.first > 0:
            self.done = True
            return {"loss_ema": loss.ema, "first_loss": loss.first}
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"first_grad": self.first_grad, "done": self.done}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)


@dataclass
class EpochCliff:
    """The validation loss at the start of epoch 2 jumps above its end-of-epoch-1 value.

    Args:
        factor: relative jump reported. Default 0.02 (2 %).
    """

    factor: float = 0.02
    history: list[tuple[int, int, float]] = field(default_factory=list)

    def update(self, step: int, epoch: int, val_loss: float) -> dict[str, Any] | None:
        self.history.append((epoch, step, val_loss))
        by_epoch: dict[int, list[tuple[int, float]]] = {}
        for e, s, v in self.history:
            by_epoch.setdefault(e, []).append((s, v))
        if epoch < 1 or epoch - 1 not in by_epoch or len(by_epoch[epoch]) != 1:
            return None
        prev_best = min(v for _, v in by_epoch[epoch - 1])
        if val_loss > prev_best * (1 + self.factor):
            return {"epoch": epoch, "val_loss": val_loss, "previous_best": prev_best,
                    "jump": val_loss / prev_best - 1}
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.history = [tuple(x) for x in d["history"]]
