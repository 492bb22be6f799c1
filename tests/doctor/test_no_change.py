"""The no-change guarantee, bitwise, under every preset -- also when the forward raises."""

import copy

import pytest
import torch
from torch import nn

from initwise.doctor import PRESETS, doctor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.b = nn.Linear(16, 3)
        self.unused = nn.Linear(2, 2)
        self.boom = False

    def forward(self, x):
        h = self.drop(torch.relu(self.bn(self.a(x))))
        if self.boom:
            raise RuntimeError("boom")
        return self.b(h)


def _setup():
    torch.manual_seed(0)
    net = Net().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()  # optimizer state exists; grads exist on some parameters
    net.b.bias.grad = None
    net.a.register_forward_hook(lambda m, i, o: None)
    net.eval().bn.train()  # mixed modes
    return net, opt, (x, y)


def _state(net, opt):
    return {
        "sd": {k: v.clone() for k, v in net.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in net.parameters()],
        "grad_ids": [id(p.grad) for p in net.parameters()],
        "modes": [m.training for m in net.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for m in net.modules()],
        "opt": copy.deepcopy(opt.state_dict()),
        "rng": torch.get_rng_state().clone(),
    }


def _assert_same(before, after):
    assert before["sd"].keys() == after["sd"].keys()
    for k in before["sd"]:
        assert torch.equal(before["sd"][k], after["sd"][k]), k
    for g0, g1 in zip(before["grads"], after["grads"]):
        assert (g0 is None) == (g1 is None)
        assert g0 is None or torch.equal(g0, g1)
    assert before["grad_ids"] == after["grad_ids"]
    assert before["modes"] == after["modes"]
    assert before["hooks"] == after["hooks"]
    assert torch.equal(before["rng"], after["rng"])
    s0, s1 = before["opt"]["state"], after["opt"]["state"]
    assert s0.keys() == s1.keys()
    for k in s0:
        for key in s0[k]:
            assert torch.equal(s0[k][key], s1[k][key])


@pytest.mark.parametrize("preset", PRESETS)
def test_doctor_changes_nothing(preset):
    net, opt, batch = _setup()
    before = _state(net, opt)
    d = doctor(net, batch, optimizer=opt, checks=preset)
    _assert_same(before, _state(net, opt))
    # the caller's next random draw is the one it would have got without the doctor
    torch.set_rng_state(before["rng"])
    expected = torch.rand(3)
    torch.set_rng_state(before["rng"])
    doctor(net, batch, optimizer=opt, checks=preset)
    assert torch.equal(torch.rand(3), expected)
    assert d.preset == preset


@pytest.mark.parametrize("preset", PRESETS)
def test_model_raising_mid_forward_leaves_no_trace(preset):
    net, opt, batch = _setup()
    net.boom = True
    before = _state(net, opt)
    with pytest.raises(RuntimeError, match="boom"):
        doctor(net, batch, optimizer=opt, checks=preset)
    _assert_same(before, _state(net, opt))


def test_failing_user_check_restores_state():
    from initwise.doctor import register_check, unregister_check

    def bad(ctx):
        with torch.no_grad():
            ctx.params["a.weight"].add_(1.0)  # a misbehaving check
        raise KeyError("bad check")

    register_check("test.bad", bad)
    try:
        net, opt, batch = _setup()
        before = _state(net, opt)
        with pytest.raises(KeyError):
            doctor(net, batch, optimizer=opt)
        _assert_same(before, _state(net, opt))
    finally:
        unregister_check("test.bad")


def test_diagnosis_is_deterministic_with_dropout():
    net, opt, batch = _setup()
    net.train()
    a = doctor(net, batch, checks="standard").to_dict()
    b = doctor(net, batch, checks="standard").to_dict()
    assert a == b
