"""The monitor's detectors on synthetic series (no model): their documented semantics."""

from __future__ import annotations

import math

import torch

from initwise.monitor import DyingUnits, EpochCliff, LossTracker, Monitor, Plateau, Warmup


def _feed(values, plateau=None, beta=0.9):
    lt, pl = LossTracker(beta=beta), plateau or Plateau(patience=50, warmup=10, cooldown=30)
    found = []
    for step, v in enumerate(values, 1):
        lt.update(v)
        ev = pl.update(step, lt)
        if ev is not None:
            found.append((step, ev))
    return lt, found


def test_loss_tracker_matches_a_direct_ema():
    lt = LossTracker(beta=0.9)
    xs = [3.0, 2.0, 2.5, 1.0, 1.5]
    for x in xs:
        lt.update(x)
    ema = xs[0]
    for x in xs[1:]:
        ema = 0.9 * ema + 0.1 * x
    assert math.isclose(lt.ema, ema, rel_tol=1e-12) and lt.first == 3.0 and lt.steps == 5


def test_plateau_fires_after_patience_and_respects_cooldown():
    flat = [1.0] * 300
    _, found = _feed(flat)
    steps = [s for s, _ in found]
    # first report: patience (50) steps after the last improvement (the EMA's first step, 10)
    assert steps[0] == 60
    assert all(b - a >= 30 for a, b in zip(steps, steps[1:]))  # cooldown between reports
    assert found[0][1]["since"] == 10


def test_a_steadily_falling_loss_is_no_plateau():
    _, found = _feed([2.0 * 0.995 ** i for i in range(400)])
    assert found == []


def test_noise_alone_is_no_improvement():
    g = torch.Generator().manual_seed(0)
    noisy = (1.0 + 0.05 * torch.randn(400, generator=g)).tolist()
    _, found = _feed(noisy)
    assert found  # a flat, noisy loss is a plateau (improvements within the noise do not count)


def test_dying_units_need_activity_first_and_a_full_window():
    d = DyingUnits(window=2, min_fraction=0.25)
    on, off = torch.tensor([True, True, True, True]), torch.tensor([True, False, False, True])
    never = {"x": torch.tensor([False, True, True, True])}
    assert d.update(1, {"a": on, **never}) == []
    assert d.update(2, {"a": off, **never}) == []  # inactive for 1 measurement only
    ev = d.update(3, {"a": off, **never})
    assert len(ev) == 1 and ev[0]["layer"] == "a" and ev[0]["units"] == 2 and ev[0]["since"] == 2
    d.forget("a", torch.tensor([1, 2]))
    assert d.update(4, {"a": off, **never}) == []  # repaired units start over


def test_warmup_flags_early_explosions_only():
    lt, w = LossTracker(beta=0.5), Warmup(steps=50)
    ev = None
    for step in range(1, 40):
        lt.update(1.0 * 1.2 ** step)
        ev = ev or w.update(step, lt, None)
    assert ev is not None and ev["loss_ema"] > 2.0
    lt2, w2 = LossTracker(beta=0.5), Warmup(steps=50)
    for step in range(1, 200):
        lt2.update(1.0 / step)
        assert w2.update(step, lt2, 1.0) is None


def test_epoch_cliff_on_the_validation_loss():
    c = EpochCliff(factor=0.02)
    assert c.update(100, 0, 0.50) is None
    assert c.update(200, 0, 0.45) is None
    ev = c.update(300, 1, 0.47)  # first validation of epoch 2: 4.4 % above epoch 1's best
    assert ev is not None and math.isclose(ev["jump"], 0.47 / 0.45 - 1)
    mon = Monitor(torch.nn.Linear(2, 2))
    assert mon.epoch_end(0.5, epoch=0) == [] and mon.epoch_end(0.45, epoch=0) == []
    found = mon.epoch_end(0.47, epoch=1)
    assert [f.check for f in found] == ["train.epoch_cliff"] and mon.findings == found
    mon.close()
