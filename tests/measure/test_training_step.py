"""The doctor's checks on measurements of a live training step (.grad filled, real step)."""

import math

import torch
from torch import nn

from initwise.doctor import run_checks
from initwise.measure import UpdateTracker, from_training_step, layer_facts, measure, probe


def _net_and_batch(dead_bias: float = 0.0):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 10, generator=g), torch.randint(0, 3, (128,), generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                        nn.Linear(32, 3))
    with torch.no_grad():
        net[2].bias.fill_(dead_bias)
    return net, x, y


def _train_step(net, opt, x, y, facts, step):
    opt.zero_grad()
    with probe(net, facts, inputs=x) as p:
        out = net(x)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    tracker = UpdateTracker(net, opt)
    opt.step()
    return from_training_step(net, p, facts, output=out, targets=y, inputs=x, loss=loss,
                              optimizer=opt, updates=tracker.finish(), step=step)


def test_checks_run_on_a_live_training_step():
    net, x, y = _net_and_batch(dead_bias=-100.0)  # layer "2": every unit dead
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    facts, _ = layer_facts(net, x)
    m = _train_step(net, opt, x, y, facts, step=7)
    assert m.step == 7 and m.needs == {"forward", "grad", "update"}
    assert m.layer("2").dead_units == 32 and m.first_layer == "0"
    codes = {f.check for f in run_checks(m, preset="full", phase="train")}
    assert "units.dead" in codes
    # the update is the optimizer's real one: ||dW|| = lr * ||g|| for plain SGD
    g0 = m.grads["0.weight"]
    u = m.updates["0.weight"]
    assert math.isclose(u["delta"], 0.1 * float(g0.double().norm()), rel_tol=1e-5)
    assert math.isclose(m.layer("0").update_ratio, u["ratio"])


def test_training_step_agrees_with_the_doctors_own_pass():
    net, x, y = _net_and_batch()
    facts, _ = layer_facts(net, x)
    own = measure(net, (x, y), needs=("forward", "grad"), facts=facts)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # a zero step: the weights stay
    live = _train_step(net, opt, x, y, facts, step=0)
    assert [s.name for s in own.layers] == [s.name for s in live.layers]
    for a, b in zip(own.layers, live.layers):
        assert a.pre_std == b.pre_std and a.dead_units == b.dead_units
        assert math.isclose(a.grad_norm, b.grad_norm, rel_tol=1e-6)
    assert math.isclose(own.loss0, live.loss0, rel_tol=1e-7) and own.prior == live.prior
    assert sorted(f.check for f in run_checks(own, phase="train")) == \
        sorted(f.check for f in run_checks(live, phase="train"))


def test_probe_removes_its_hooks_on_error():
    net, x, _ = _net_and_batch()
    facts, _ = layer_facts(net, x)
    try:
        with probe(net, facts, inputs=x):
            raise RuntimeError("user code failed")
    except RuntimeError:
        pass
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
