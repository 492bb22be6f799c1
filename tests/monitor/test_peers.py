"""The benchmark's peers (benchmarks/peers): each does what its paper says, on tiny models."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from peers import ContinualBackprop, ReDo, ShrinkPerturb  # noqa: E402


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                        nn.Linear(12, 3)).double()
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        net[2].bias.fill_(0.5)
        net[0].bias[[1, 7]] = -1e3  # two dead units
    return net


def _adam_step(net: nn.Module, x: torch.Tensor) -> torch.optim.Adam:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(x).square().mean().backward()
    opt.step()
    return opt


def test_redo_recycles_dormant_units_with_its_recipe():
    net, x = _net(), torch.randn(64, 5, generator=torch.Generator().manual_seed(1),
                                 dtype=torch.float64)
    opt = _adam_step(net, x)
    redo = ReDo(net, every=10, tau=0.1, seed=0)
    s0 = redo.scores(x)[0]
    assert s0[1] == s0[7] == 0 and abs(float(s0.mean()) - 1.0) < 1e-12
    assert redo.after_step(8, x, opt) == 0  # not a recycle step
    n = redo.after_step(9, x, opt)
    assert n >= 2 and redo.scores(x)[0][[1, 7]].min() > 0
    assert torch.all(net[2].weight[:, [1, 7]] == 0) and torch.all(net[0].bias[[1, 7]] == 0)
    assert torch.all(opt.state[net[0].weight]["exp_avg"][[1, 7]] == 0)


def test_continual_backprop_replaces_at_its_rate_and_keeps_the_function():
    net, g = _net(), torch.Generator().manual_seed(2)
    cbp = ContinualBackprop(net, rate=0.05, maturity=3, decay=0.9, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: only CBP moves the weights
    x = torch.randn(32, 5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        net[2].bias[4] = -1e3  # one dead unit in the second layer too
    total, first = 0, None
    for step in range(10):
        before = net(x).detach()
        net(x).sum().backward()
        opt.step()
        n = cbp.after_step(step, x, opt)
        total += n
        if n and first is None:  # one per layer, the dead ones (utility 0): same function
            first = step
            torch.testing.assert_close(net(x), before, atol=1e-10, rtol=0)
            assert net[0].bias[1] == 0 and net[2].bias[4] == 0
            rows = [i for i in range(12) if i != 4]  # row 4 of layer 2 was redrawn itself
            assert torch.all(net[2].weight[rows, 1] == 0) and torch.all(net[4].weight[:, 4] == 0)
    assert first == 4
    # per layer, owed += 0.05 x (mature units) each step from step 3 (age > 3), one unit per
    # whole unit owed, a replaced unit young again: 3 per layer in 10 steps
    assert total == cbp.replaced == 6


def test_shrink_perturb_is_exactly_shrink_plus_noise():
    net = _net()
    w = net[0].weight.detach().clone()
    b = net[0].bias.detach().clone()
    snp = ShrinkPerturb(net, every=5, shrink=0.8, sigma=0.01, seed=3)
    assert snp.after_step(3, None, None) == 0 and torch.equal(net[0].weight, w)
    snp.after_step(4, None, None)
    eps = torch.randn(w.shape, generator=torch.Generator().manual_seed(3), dtype=w.dtype)
    torch.testing.assert_close(net[0].weight.detach(), 0.8 * w + 0.01 * eps, atol=1e-15,
                               rtol=0)
    assert torch.equal(net[0].bias, b)
