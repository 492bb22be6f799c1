"""The monitor's acceptance scenarios: small, seeded CPU runs with a fault at a known step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise
from initwise.monitor import Monitor, Plateau, TrainingDiverged


def _task(n: int = 512, d: int = 16, classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, classes, generator=g)
    y = (x @ w).argmax(1)
    return x, y


def _mlp(act=nn.ReLU, depth: int = 3, width: int = 64, d: int = 16, classes: int = 4,
         seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(d, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def _train(net, mon, opt, steps, *, x, y, batch=64, fault=None, seed=0):
    """Plain loop; ``fault(step)`` may change the run at a step. Returns the batches' loss."""
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(1, steps + 1):
        if fault is not None:
            fault(step)
        idx = torch.randint(0, len(x), (batch,), generator=g)
        out = net(x[idx])
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss, optimizer=opt)
        losses.append(float(loss.detach()))
    return losses


def _accuracy(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).double().mean())


def test_a_diverging_run_is_stopped_within_20_steps_of_the_fault():
    x, y = _task()
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=50, sync_every=8, restore_last_good=True)

    def fault(step):
        if step == 200:
            for group in opt.param_groups:
                group["lr"] = 500.0

    with pytest.raises(TrainingDiverged) as info:
        _train(net, mon, opt, 400, x=x, y=y, fault=fault)
    err = info.value
    found = [f for f in mon.findings if f.check in ("train.nonfinite", "train.divergence")]
    assert found and min(f.step for f in found) >= 199
    assert err.step - 200 <= 20 and err.last_good_step < err.step
    assert err.restored and all(torch.isfinite(p).all() for p in net.parameters())
    assert "last good step" in str(err) and "Lower the learning rate" in str(err)
    mon.close()


def test_units_killed_mid_run_are_flagged_with_the_layer_and_the_start():
    x, y = _task()
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=20, sync_every=10)

    def fault(step):
        if step == 100:
            with torch.no_grad():
                net[2].bias[:48] = -50.0  # 48 of 64 units of the second layer die

    _train(net, mon, opt, 300, x=x, y=y, fault=fault)
    dying = {f.where: f for f in mon.findings if f.check == "units.dying"}
    assert dying["2"].severity == "error" and dying["2"].metrics["units"] >= 48
    assert 100 <= dying["2"].step <= 120  # the step the units died, not the step it was seen
    assert set(dying) <= {"2", "4"}  # units downstream may die with them: a real consequence
    mon.close()


def test_a_stalled_deep_sigmoid_run_is_flagged_as_vanishing_gradients():
    x, y = _task()
    net = _mlp(nn.Sigmoid, depth=40, width=32)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=25, sync_every=25, plateau=Plateau(patience=150, warmup=50))
    _train(net, mon, opt, 300, x=x, y=y)
    codes = {f.check for f in mon.findings if f.severity in ("warning", "error")}
    assert "grad.vanishing" in codes
    first = min(f.step for f in mon.findings if f.check == "grad.vanishing")
    assert first <= 50
    mon.close()


@pytest.mark.parametrize("arch", ["relu-adam", "tanh-sgd", "gelu-adamw", "cnn-sgd"])
def test_healthy_runs_are_silent(arch):
    x, y = _task()
    if arch == "cnn-sgd":
        torch.manual_seed(0)
        net = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 16, 3, padding=1),
                            nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(256, 4))
    else:
        act = {"relu-adam": nn.ReLU, "tanh-sgd": nn.Tanh, "gelu-adamw": nn.GELU}[arch]
        net = _mlp(act)
    initwise.init(net, (x[:256], y[:256]), seed=0)
    if arch.endswith("adam"):
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    elif arch.endswith("adamw"):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(net, every=25, sync_every=8)
    _train(net, mon, opt, 400, x=x, y=y)
    loud = [(f.check, f.where, f.evidence) for f in mon.findings
            if f.severity in ("warning", "error")]
    assert loud == []
    assert _accuracy(net, x, y) > 0.8
    mon.close()


def test_no_hooks_left_and_state_round_trips():
    x, y = _task()
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=10, sync_every=5)
    _train(net, mon, opt, 59, x=x, y=y)  # step 59: the probe for step 60 is armed
    state = mon.state_dict()
    mon.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert not opt._optimizer_step_pre_hooks
    again = Monitor(net, every=10, sync_every=5)
    again.load_state_dict(state)
    assert again.steps == 59 and math.isclose(again.loss.ema, mon.loss.ema)
    again.close()


def test_the_loss_is_not_synchronized_on_every_step(monkeypatch):
    """The cheap tier reads the device only every sync_every steps (no .item per step)."""
    x, y = _task()
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=10**9, sync_every=16)
    reads = []
    real = torch.Tensor.tolist

    def counting(self):
        reads.append(mon.steps)
        return real(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting)
    g = torch.Generator().manual_seed(0)
    for _ in range(64):
        idx = torch.randint(0, len(x), (32,), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss, optimizer=opt)
    # host reads happen on synchronization steps only: the losses, the gradient norms and the
    # update ratios, one read each
    assert sorted(set(reads)) == [16, 32, 48, 64] and len(reads) <= 3 * 4
    mon.close()


def test_repair_revives_units_killed_mid_run_and_keeps_the_accuracy():
    """The issue's scenario: ReLUs die; the monitor flags them, and with repair the dead
    fraction falls below 5 % and the accuracy is no worse than without repair."""
    from initwise.monitor import Repair

    x, y = _task()
    results = {}
    for repair in (False, Repair(max_fraction=1.0, min_interval=20)):
        net = _mlp()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        mon = Monitor(net, every=20, sync_every=10, repair=repair)

        def fault(step, net=net):
            if step == 100:
                with torch.no_grad():
                    net[2].bias[:40] = -50.0

        _train(net, mon, opt, 400, x=x, y=y, fault=fault)
        with torch.no_grad():
            z = net[2](torch.relu(net[0](x)))
        dead = float((z.amax(0) <= 0).double().mean())
        results[bool(repair)] = (dead, _accuracy(net, x, y), mon)
        mon.close()
    dead_off, acc_off, mon_off = results[False]
    dead_on, acc_on, mon_on = results[True]
    assert any(f.check == "units.dying" and f.where == "2" for f in mon_off.findings)
    assert dead_off > 0.5 and dead_on < 0.05
    assert acc_on >= acc_off - 0.01
    assert mon_on.events and all(e.repaired for e in mon_on.events)
    assert {e.layer for e in mon_on.events} >= {"2"}


def test_a_layer_the_optimizer_never_moves_is_flagged():
    x, y = _task()
    net = _mlp()
    frozen = [net[2].weight, net[2].bias]
    rest = [p for p in net.parameters() if all(p is not q for q in frozen)]
    opt = torch.optim.SGD([{"params": rest, "lr": 0.05}, {"params": frozen, "lr": 0.0}])
    mon = Monitor(net, every=10**9, sync_every=8)
    _train(net, mon, opt, 60, x=x, y=y)
    found = [f for f in mon.findings if f.check == "update.ratio"]
    assert [f.where for f in found] == ["2.weight"] and found[0].metrics["reason"] == "frozen"
    mon.close()


def test_an_embedding_table_collapsing_to_rank_one_is_flagged():
    torch.manual_seed(0)
    emb = nn.EmbeddingBag(200, 16, mode="sum")
    head = nn.Linear(16, 2)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = emb, head

        def forward(self, ids):
            return self.head(self.emb(ids))

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    mon = Monitor(model, every=20, sync_every=10)
    g = torch.Generator().manual_seed(0)
    for step in range(1, 121):
        if step == 60:
            with torch.no_grad():  # every row onto one direction
                emb.weight.copy_(emb.weight[:, :1] * torch.ones(1, 16))
        ids = torch.randint(0, 200, (32, 5), generator=g)
        loss = F.cross_entropy(model(ids), (ids[:, 0] % 2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss, optimizer=opt)
    found = [f for f in mon.findings if f.check == "embedding.collapse"]
    assert found and found[0].where == "emb" and 60 <= found[0].step <= 80
    assert found[0].metrics["effective_rank"] < 2.0 < found[0].metrics["first"]
    mon.close()


def test_an_evaluation_forward_between_steps_is_not_measured():
    x, y = _task()
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mon = Monitor(net, every=10, sync_every=5)
    _train(net, mon, opt, 9, x=x, y=y)  # the probe is armed for step 10
    assert mon._probe is not None
    net.eval()
    with torch.no_grad():
        net(torch.full((7, 16), -100.0))  # an evaluation forward: not the training batch
    net.train()
    assert mon._probe.order == []
    out = net(x[:64])
    loss = F.cross_entropy(out, y[:64])
    opt.zero_grad()
    loss.backward()
    opt.step()
    p = mon._probe
    mon.step(loss=loss, optimizer=opt)
    assert p.stats["0"].count == 64
    mon.close()
