"""One registration makes a new activation module known to apply, init AND the doctor.

Two hand-written modules stand in for what users bring: ``Clamp`` (a ReLU written as a clamp:
zero on a half-line, so its units can die) and ``Squash`` (x / (1 + |x|): bounded, so its units
can saturate). Unregistered, none of the three components recognizes them.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initwise
from initwise.activations import activation_facts


class Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0.0)


class Squash(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1 + x.abs())


@pytest.fixture
def registered():
    initwise.register_activation(Clamp, kinks=(0.0,))
    initwise.register_activation(Squash)
    yield
    initwise.unregister_activation(Clamp)
    initwise.unregister_activation(Squash)


def _net(act: type[nn.Module], depth: int = 4, width: int = 32) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(10, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


def _batch(scale: float = 1.0):
    g = torch.Generator().manual_seed(0)
    return torch.randn(256, 10, generator=g) * scale, torch.randint(0, 3, (256,), generator=g)


def test_facts_of_the_registered_modules(registered):
    clamp, squash = activation_facts(Clamp()), activation_facts(Squash())
    assert clamp.relu_family and not clamp.saturating
    assert math.isclose(clamp.gain, math.sqrt(2.0), rel_tol=1e-9)
    assert squash.saturating and not squash.relu_family
    assert math.isclose(squash.sat_threshold, math.sqrt(10.0) - 1.0, rel_tol=1e-9)


def test_apply_draws_with_the_registered_gain(registered):
    net = _net(Clamp)
    report = initwise.apply(net, seed=0, example_inputs=_batch()[0], overrides={
        "*": "kaiming_normal"})
    gains = {r.name: r.gain for r in report.params if r.name.endswith("weight")}
    assert math.isclose(gains["0.weight"], math.sqrt(2.0), rel_tol=1e-9)


def test_doctor_finds_dead_units_behind_the_registered_module(registered):
    net = _net(Clamp)
    with torch.no_grad():
        net[2].bias.fill_(-100.0)
    d = initwise.doctor(net, _batch())
    dead = [f for f in d.findings if f.check == "units.dead"]
    assert dead and dead[0].severity == "error" and "2" in dead[0].where
    assert d.layers[1].dead_units == 32


def test_doctor_finds_saturation_behind_the_registered_module(registered):
    net = _net(Squash)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(40.0)
    d = initwise.doctor(net, _batch())
    assert "units.saturated" in d.codes_at("warning") | d.codes_at("error")


def test_init_revives_dead_units_of_the_registered_module(registered):
    net = _net(Clamp)
    report = initwise.init(net, _batch(), seed=0)
    hidden = [lc for lc in report.layers if lc.module in ("0", "2", "4", "6")]
    assert hidden and all(lc.active_fraction == 1.0 for lc in hidden)


def test_unregistered_modules_are_invisible(registered):
    initwise.unregister_activation(Clamp)
    try:
        net = _net(Clamp)
        with torch.no_grad():
            net[2].bias.fill_(-100.0)
        d = initwise.doctor(net, _batch())
        assert "units.dead" not in d.codes_at("error")
        report = initwise.init(_net(Clamp), _batch(), seed=0)
        assert all(lc.active_fraction is None for lc in report.layers)
    finally:
        initwise.register_activation(Clamp, kinks=(0.0,))
