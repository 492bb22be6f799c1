"""repair_units: the function is preserved, repaired units live, optimizer state is exact."""

import pytest
import torch
from torch import nn

from initwise.measure import layer_facts, probe, structural_facts
from initwise.monitor import Repair, RepairEvent, dormant_units, repair_units, unit_scores
from initwise.monitor import repair as repair_mod
from initwise.nn import SparseLinear


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp(seed: int = 0, widths=(6, 16, 16, 3)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).double()
    with torch.no_grad():  # every unit alive: the tests decide which ones die
        for m in net:
            if isinstance(m, nn.Linear):
                m.bias.fill_(0.5)
    return net


def _measure(net: nn.Module, x: torch.Tensor, columns: bool = False):
    facts, source = layer_facts(net, x)
    assert source == "graph"
    with probe(net, facts, input_stats={n: True for n in facts} if columns else None) as p:
        with torch.no_grad():
            out = net(x)
    return facts, p, out


def _kill(layer: nn.Module, units: list[int]) -> None:
    with torch.no_grad():
        for j in units:
            layer.bias[j] = -1e3


def test_function_preserved_for_dead_and_constant_units():
    net = _mlp()
    x = torch.randn(64, 6, generator=_gen(1), dtype=torch.float64)
    _kill(net[0], [2, 5])
    with torch.no_grad():  # layer 2 alive; its unit 7 constant relu(0.001): dormant, not dead
        net[2].bias += 0.3
        net[2].weight[7] = 0.0
        net[2].bias[7] = 0.001
    facts, p, before = _measure(net, x)
    bias4 = net[4].bias.detach().clone()
    events = repair_units(net, facts, p.stats, policy=Repair(tau=0.01, max_fraction=0.5),
                          generator=_gen(2), step=10)
    got = {e.layer: e for e in events}
    assert got["0"].units == (2, 5) and got["0"].reason == "dead"
    assert got["0"].score == (0.0, 0.0)
    assert got["2"].units == (7,) and got["2"].reason == "dormant (tau=0.01)"
    assert 0 < got["2"].score[0] < 0.01 and all(e.step == 10 for e in events)
    with torch.no_grad():
        after = net(x)
    torch.testing.assert_close(after, before, atol=1e-10, rtol=0)
    # the constant unit's contribution moved into the consumer's bias: 0.001 * old column
    assert not torch.equal(net[4].bias, bias4)
    assert torch.all(net[4].weight[:, 7] == 0)
    # layer 2's outgoing columns 2, 5 are zero, except in its freshly drawn row 7
    keep = [i for i in range(16) if i != 7]
    assert torch.all(net[2].weight[keep][:, [2, 5]] == 0)
    assert torch.all(net[2].weight[7] != 0)
    assert torch.all(net[0].weight[[2, 5]] != 0)


def test_repaired_units_are_alive_on_the_next_batch():
    net = _mlp(widths=(6, 32, 32, 3))
    x = torch.randn(512, 6, generator=_gen(3), dtype=torch.float64) + 2.0  # not centred
    dead0, dead2 = [1, 4, 9], [0, 3, 30]
    _kill(net[0], dead0)
    _kill(net[2], dead2)
    facts, p, _ = _measure(net, x, columns=True)
    events = repair_units(net, facts, p.stats, inputs=p.columns,
                          policy=Repair(max_fraction=0.1), generator=_gen(4))
    assert [(e.layer, e.units) for e in events] == [("0", tuple(dead0)), ("2", tuple(dead2))]
    x2 = torch.randn(512, 6, generator=_gen(5), dtype=torch.float64) + 2.0
    with torch.no_grad():
        h0 = net[0](x2)
        h2 = net[2](torch.relu(h0))
    for h, units in ((h0, dead0), (h2, dead2)):
        active = (h[:, units] > 0).double().mean(0)
        assert torch.all(active > 0.25) and torch.all(active < 0.75), active


def test_scores_are_redo_mean_normalized():
    net = _mlp()
    x = torch.randn(256, 6, generator=_gen(0), dtype=torch.float64)
    with torch.no_grad():  # unit 0 constant 2.0, unit 1 constant 0.5, unit 2 dead
        net[0].weight[:3] = 0.0
        net[0].bias[:3] = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    facts, p, _ = _measure(net, x)
    s = unit_scores(p.stats["0"], facts["0"].act)
    h = torch.relu(net[0](x)).abs().mean(0)
    assert torch.allclose(s[:3], h[:3] / h.mean(), atol=0.02 * float(s[0]))
    assert s[2] == 0.0 and abs(float(s[0] / s[1]) - 4.0) < 1e-12


def _trained(opt_cls, **kw):
    net = _mlp(widths=(6, 16, 16, 3))
    opt = opt_cls(net.parameters(), **kw)
    x = torch.randn(64, 6, generator=_gen(6), dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=_gen(7))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net, opt, x


@pytest.mark.parametrize("opt_cls,kw,keys", [
    (torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}, ("exp_avg", "exp_avg_sq",
                                                        "max_exp_avg_sq")),
    (torch.optim.AdamW, {"lr": 1e-2}, ("exp_avg", "exp_avg_sq")),
    (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}, ("momentum_buffer",)),
    (torch.optim.RMSprop, {"lr": 1e-3, "momentum": 0.5}, ("square_avg", "momentum_buffer")),
])
@pytest.mark.parametrize("second", ["zero", "mean"])
def test_optimizer_state_of_exactly_the_repaired_rows_and_columns(opt_cls, kw, keys, second):
    net, opt, x = _trained(opt_cls, **kw)
    _kill(net[2], [3, 11])
    facts, p, _ = _measure(net, x)
    saved = {id(q): {k: opt.state[q][k].clone() for k in keys} for q in net.parameters()}
    events = repair_units(net, facts, p.stats, optimizer=opt, generator=_gen(8),
                          policy=Repair(max_fraction=0.2, second_moment=second))
    assert [(e.layer, e.units, e.notes) for e in events] == [("2", (3, 11), ())]
    rows = torch.zeros(16, dtype=torch.bool)
    rows[[3, 11]] = True
    for k in keys:
        w2, b2, w4 = (opt.state[q][k] for q in (net[2].weight, net[2].bias, net[4].weight))
        old = {n: saved[id(q)][k] for n, q in (("w2", net[2].weight), ("b2", net[2].bias),
                                               ("w4", net[4].weight))}
        mean = second == "mean" and k in ("exp_avg_sq", "max_exp_avg_sq", "square_avg")
        fill = {n: float(old[n][~rows].mean()) if mean else 0.0 for n in ("w2", "b2")}
        fill["w4"] = float(old["w4"][:, ~rows].mean()) if mean else 0.0
        assert fill["w2"] > 0 or not mean
        assert torch.all(w2[rows] == fill["w2"]) and torch.equal(w2[~rows], old["w2"][~rows])
        assert torch.all(b2[rows] == fill["b2"]) and torch.equal(b2[~rows], old["b2"][~rows])
        assert torch.all(w4[:, rows] == fill["w4"])
        assert torch.equal(w4[:, ~rows], old["w4"][:, ~rows])
        for q in (net[0].weight, net[0].bias, net[4].bias):  # untouched tensors: same bits
            assert torch.equal(opt.state[q][k], saved[id(q)][k])


def test_unknown_optimizer_state_is_left_with_a_note():
    net, opt, x = _trained(torch.optim.Adagrad, lr=1e-2)
    _kill(net[0], [0])
    facts, p, _ = _measure(net, x)
    before = {id(q): opt.state[q]["sum"].clone() for q in net.parameters()}
    (event,) = repair_units(net, facts, p.stats, optimizer=opt, generator=_gen(0))
    assert event.units == (0,) and "Adagrad" in event.notes[-1]
    assert all(torch.equal(opt.state[q]["sum"], before[id(q)]) for q in net.parameters())


def test_caps_max_fraction_min_interval_max_repairs():
    net = _mlp(widths=(6, 20, 20, 3))
    x = torch.randn(64, 6, generator=_gen(9), dtype=torch.float64)
    _kill(net[0], list(range(10)))
    _kill(net[2], [0, 1])
    facts, p, _ = _measure(net, x)
    base = {k: v.clone() for k, v in net.state_dict().items()}

    def run(**kw):
        net.load_state_dict(base)
        return repair_units(net, facts, p.stats, generator=_gen(0), **kw)

    ev = run(policy=Repair(max_fraction=0.1))
    assert [len(e.units) for e in ev] == [2, 2]  # floor(0.1 * 20) = 2 per layer
    assert run(policy=Repair(max_fraction=0.01))[0].units == (0,)  # at least one
    past = [RepairEvent(100, "0", (3,), "dead")]
    pol = Repair(min_interval=100)
    assert [e.layer for e in run(policy=pol, step=150, history=past)] == ["2"]
    assert [e.layer for e in run(policy=pol, step=200, history=past)] == ["0", "2"]
    assert [e.layer for e in run(policy=Repair(max_repairs=1))] == ["0"]
    assert run(policy=Repair(max_repairs=1), history=past) == []


def test_same_generator_seed_same_bits():
    outs = []
    for seed in (5, 5, 6):
        net = _mlp()
        x = torch.randn(32, 6, generator=_gen(1), dtype=torch.float64)
        _kill(net[0], [1, 2])
        facts, p, _ = _measure(net, x)
        repair_units(net, facts, p.stats, policy=Repair(max_fraction=0.2),
                     generator=_gen(seed))
        outs.append(torch.cat([q.detach().flatten() for q in net.parameters()]))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_conv_units_and_a_flatten_consumer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).double()
    x = torch.randn(16, 2, 6, 6, generator=_gen(1), dtype=torch.float64)
    _kill(net[0], [1, 6])
    _kill(net[2], [2])
    facts, p, before = _measure(net, x, columns=True)
    events = repair_units(net, facts, p.stats, inputs=p.columns,
                          policy=Repair(max_fraction=0.25), generator=_gen(2))
    assert [(e.layer, e.units, e.reason) for e in events] == [("0", (1, 6), "dead"),
                                                               ("2", (2,), "dead")]
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, atol=1e-10, rtol=0)
        assert torch.all(net[2].weight[[0, 1, 3], :][:, [1, 6]] == 0)  # row 2 is redrawn
        assert torch.all(net[5].weight[:, 2 * 36:3 * 36] == 0)
        h = net[0](x)
    active = (h[:, [1, 6]] > 0).double().mean((0, 2, 3))
    assert torch.all(active > 0.2) and torch.all(active < 0.8), active


class _SparseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = SparseLinear(50, 16, dtype=torch.float64)
        self.mid = SparseLinear(16, 8, dtype=torch.float64)
        self.head = nn.Linear(8, 2, dtype=torch.float64)

    def forward(self, x):
        return self.head(torch.relu(self.mid(torch.relu(self.emb(x)))))


def test_sparse_linear_weight_stored_in_out():
    net = _SparseNet()
    g = _gen(3)
    dense = (torch.rand(40, 50, generator=g) < 0.1).double()
    x = dense.to_sparse()
    with torch.no_grad():
        net.emb.bias[[0, 9]] = -1e3
        net.mid.bias[[4]] = -1e3
    facts, p, before = _measure(net, x)
    events = repair_units(net, facts, p.stats, policy=Repair(max_fraction=0.2),
                          generator=_gen(4))
    assert [(e.layer, e.units) for e in events] == [("emb", (0, 9)), ("mid", (4,))]
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, atol=1e-10, rtol=0)
    assert torch.all(net.mid.weight[[0, 9]][:, [0, 1, 2, 3, 5, 6, 7]] == 0)  # column 4 redrawn
    assert torch.all(net.head.weight[:, 4] == 0)
    assert torch.all(net.emb.weight[:, [0, 9]] != 0)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.branch = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        return self.head(h + torch.relu(self.branch(h)))


@pytest.mark.parametrize("make,layer,reason", [
    (lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 2)),
     "0", "feeds the norm layer '2'"),
    (lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)),
     "1", "layer kind 'norm' is not supported"),
    (_Residual, "inp", "merges several inputs"),
    (_Residual, "branch", "residual path"),
])
def test_a_unit_feeding_a_norm_or_a_residual_is_skipped_with_a_reason(make, layer, reason):
    torch.manual_seed(0)
    net = make().double()
    x = torch.randn(32, 6, generator=_gen(0), dtype=torch.float64)
    with torch.no_grad():
        target = dict(net.named_modules())[layer]
        target.bias[3] = -1e3 if not isinstance(target, nn.BatchNorm1d) else -1e3
    facts, p, _ = _measure(net, x)
    if layer == "branch":  # the branch's ReLU reads its own output: dead unit 3 is seen there
        assert facts["branch"].residual
    before = {k: v.clone() for k, v in net.state_dict().items()}
    events = [e for e in repair_units(net, facts, p.stats, generator=_gen(0)) if e.layer == layer]
    assert len(events) == 1 and not events[0].repaired, events
    assert events[0].reason.startswith("skipped: ") and reason in events[0].reason
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_structural_facts_give_no_consumers_and_a_remedy():
    net = _mlp()
    x = torch.randn(32, 6, generator=_gen(0), dtype=torch.float64)
    _kill(net[0], [0])
    facts = structural_facts(net)
    with probe(net, facts) as p, torch.no_grad():
        net(x)
    (event,) = repair_units(net, facts, p.stats)
    assert not event.repaired and "layer_facts(model, inputs)" in event.reason


def test_error_midway_leaves_model_and_optimizer_as_before(monkeypatch):
    net, opt, x = _trained(torch.optim.Adam, lr=1e-2)
    _kill(net[0], [1])
    _kill(net[2], [2])
    facts, p, _ = _measure(net, x)
    params = {k: v.clone() for k, v in net.state_dict().items()}
    state = {id(q): {k: v.clone() for k, v in opt.state[q].items()} for q in net.parameters()}
    calls = []
    real = repair_mod._draw

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:  # the second layer's draw, after the first layer was rewritten
            raise RuntimeError("boom")
        return real(*args, **kw)

    monkeypatch.setattr(repair_mod, "_draw", failing)
    with pytest.raises(RuntimeError, match="boom"):
        repair_units(net, facts, p.stats, optimizer=opt, generator=_gen(0))
    assert all(torch.equal(v, params[k]) for k, v in net.state_dict().items())
    for q in net.parameters():
        assert all(torch.equal(v, state[id(q)][k]) for k, v in opt.state[q].items())


def test_policy_is_validated():
    with pytest.raises(ValueError, match="scale='xavier'; valid values"):
        Repair(scale="xavier")
    with pytest.raises(ValueError, match="max_fraction"):
        Repair(max_fraction=0.0)
    with pytest.raises(ValueError, match="tau"):
        Repair(tau=-1)
    with pytest.raises(ValueError, match="second_moment='one'; valid values"):
        Repair(second_moment="one")
    with pytest.raises(TypeError, match="policy must be a Repair"):
        repair_units(nn.Linear(2, 2), {}, {}, policy={"tau": 0})
    assert RepairEvent(3, "a", (1,), "dead", (0.0,)).to_dict() == {
        "step": 3, "layer": "a", "units": [1], "reason": "dead", "score": [0.0], "notes": []}


def _teacher_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    x = torch.randn(1024, 10, generator=g)
    t1, t2 = torch.randn(10, 32, generator=g), torch.randn(32, 4, generator=g)
    return x, (torch.tanh(x @ t1) @ t2).argmax(1)


def _dead_fraction(net: nn.Module, facts, x: torch.Tensor) -> float:
    with probe(net, facts) as p, torch.no_grad():
        net(x)
    hidden = [n for n, f in facts.items() if f.act is not None]
    return sum(p.stats[n].dead_units() for n in hidden) / sum(p.stats[n].units for n in hidden)


def _train(repair: bool, seed: int = 0, steps: int = 400) -> tuple[float, float, int]:
    """Adam at lr 3e-3 with a 10-step spike to lr 0.3 at step 100 (ReLUs die); repair every 50
    steps on the pre-activations of 512 training rows."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                        nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    x, y = _teacher_data(seed)
    (x, xt), (y, yt) = x.split([768, 256]), y.split([768, 256])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    facts, _ = layer_facts(net, x[:8])
    policy, gen, order = Repair(max_fraction=0.25, min_interval=50), _gen(seed), _gen(seed + 1)
    history: list[RepairEvent] = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 0.3 if 100 <= step < 110 else 3e-3
        idx = torch.randint(0, 768, (64,), generator=order)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
        if repair and step % 50 == 49:
            with probe(net, facts, input_stats={"0": True}) as p, torch.no_grad():
                net(x[:512])
            history += repair_units(net, facts, p.stats, optimizer=opt, policy=policy,
                                    generator=gen, step=step, history=history,
                                    inputs=p.columns)
    with torch.no_grad():
        acc = float((net(xt).argmax(1) == yt).double().mean())
    return acc, _dead_fraction(net, facts, x), sum(len(e.units) for e in history)


def test_training_with_a_learning_rate_spike_repair_revives_units():
    acc0, dead0, n0 = _train(repair=False)
    acc1, dead1, n1 = _train(repair=True)
    assert n0 == 0 and dead0 > 0.3  # the spike killed a third of the ReLUs
    assert n1 > 0 and dead1 < 0.05
    assert acc1 >= acc0


def test_explicit_units_are_repaired_with_the_function_kept_to_first_order():
    net = _mlp()
    x = torch.randn(64, 6, generator=_gen(1), dtype=torch.float64)
    _kill(net[0], [4])
    facts, p, before = _measure(net, x)
    assert dormant_units(p.stats["0"], facts["0"].act) == [4]
    (event,) = repair_units(net, facts, p.stats, units={"0": [4, 1]}, generator=_gen(0))
    assert (event.layer, event.units, event.reason) == ("0", (1, 4), "selected")
    with torch.no_grad():  # unit 1 was live: its mean moved into the bias, its variation is lost
        err = (net(x) - before).abs().max()
    assert 0 < err < before.abs().max()
    (bad,) = repair_units(net, facts, p.stats, units={"0": [99]})
    assert not bad.repaired and "units asked [99]" in bad.reason
