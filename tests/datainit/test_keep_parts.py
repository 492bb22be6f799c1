"""init(overrides=, calibrate=, include_frozen=): the parts a user protects stay exactly as set.

The Mamba-like block is written in plain torch (no mamba_ssm): its ``dt_proj`` bias is the
inverse softplus of a step size drawn log-uniformly in [1e-3, 0.1], ``A_log`` holds the log of
1..d_state per channel and ``D`` is one; a generic rule that zeroes biases or rescales them
destroys exactly what makes the block work (softplus(0) = 0.693 in every channel).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise


class MambaLike(nn.Module):
    """A selective-scan block in plain torch (Gu & Dao 2023, arXiv:2312.00752, Alg. 2)."""

    def __init__(self, d: int = 16, d_inner: int = 32, d_state: int = 8, dt_rank: int = 4):
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.in_proj = nn.Linear(d, 2 * d_inner)
        self.conv1d = nn.Conv1d(d_inner, d_inner, 4, groups=d_inner, padding=3)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner)
        g = torch.Generator().manual_seed(5)
        dt = torch.exp(torch.rand(d_inner, generator=g) * (math.log(0.1) - math.log(1e-3))
                       + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d)
        length = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, b, c = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))  # (B, L, d_inner)
        a = -torch.exp(self.A_log)  # (d_inner, d_state)
        h = x.new_zeros(x.shape[0], u.shape[-1], self.d_state)
        ys = []
        for t in range(length):
            da = torch.exp(dt[:, t, :, None] * a)
            h = da * h + dt[:, t, :, None] * b[:, t, None, :] * u[:, t, :, None]
            ys.append((h * c[:, t, None, :]).sum(-1))
        y = torch.stack(ys, 1) + u * self.D
        return self.out_proj(y * F.silu(z))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(50, 16)
        self.block = MambaLike()
        self.head = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.emb(ids)).mean(1))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 50, (32, 12), generator=g), torch.randint(0, 4, (32,), generator=g)


def _protected(net: Net) -> dict[str, torch.Tensor]:
    b = net.block
    return {"dt_proj.weight": b.dt_proj.weight.detach().clone(),
            "dt_proj.bias": b.dt_proj.bias.detach().clone(),
            "A_log": b.A_log.detach().clone(), "D": b.D.detach().clone()}


def test_overrides_skip_keeps_dt_proj_a_log_and_d_bit_exact():
    net = Net()
    before = _protected(net)
    with pytest.warns(UserWarning):
        report = initwise.init(net, _data(), overrides={"*.dt_proj": "skip"}, seed=0)
    after = _protected(net)
    for name, value in before.items():
        assert torch.equal(value, after[name]), name
    dt = F.softplus(net.block.dt_proj.bias.detach())
    assert 1e-3 <= float(dt.min()) and float(dt.max()) <= 0.1
    notes = {lc.module: lc.note for lc in report.layers}
    assert "overrides['*.dt_proj'] is 'skip'" in notes["block.dt_proj"]
    # the rest was initialized and calibrated: the head's bias is at the label prior
    assert not torch.equal(net.head.bias, Net().head.bias)


@pytest.mark.parametrize("calibrate", [False, {"dt_proj.bias": False, "A_log": False}])
def test_a_layer_registration_keeps_the_block(calibrate):
    """register_layer(plan=keep, calibrate=...) protects the block in apply AND init."""
    initwise.register_layer(MambaLike, kind="other", plan=lambda name, module, ctx: "keep",
                            calibrate=calibrate)
    try:
        net = Net()
        before = _protected(net)
        report = initwise.init(net, _data(), seed=0)
    finally:
        initwise.unregister_layer(MambaLike)
    after = _protected(net)
    for name, value in before.items():
        assert torch.equal(value, after[name]), name
    notes = {lc.module: lc.note for lc in report.layers}
    # a registered type is one layer for the graph: the block as a whole is left alone
    assert "not calibrated: registered MambaLike with calibrate False" in notes["block"]
    assert notes["head"].startswith("head: bias = log prior")


def test_without_protection_init_changes_the_step_sizes():
    net = Net()
    with pytest.warns(UserWarning):
        initwise.init(net, _data(), seed=0)
    dt = F.softplus(net.block.dt_proj.bias.detach())
    assert not (1e-3 <= float(dt.min()) and float(dt.max()) <= 0.1)


def test_calibrate_false_leaves_the_structural_init_of_a_subtree():
    x, y = _data()
    ref = Net()
    with pytest.warns(UserWarning):
        initwise.apply(ref, seed=0, example_inputs=x)
    net = Net()
    with pytest.warns(UserWarning):
        report = initwise.init(net, (x, y), seed=0, calibrate={"block": False})
    for (name, p), q in zip(net.block.named_parameters(), ref.block.parameters()):
        assert torch.equal(p, q), name
    keep = [lc.module for lc in report.layers if lc.note.startswith("not calibrated")]
    assert "block.in_proj" in keep and "block.out_proj" in keep


def test_frozen_layers_are_neither_drawn_nor_calibrated():
    x, y = _data()
    net = Net()
    net.emb.weight.requires_grad_(False)
    table = net.emb.weight.detach().clone()
    with pytest.warns(UserWarning):
        initwise.init(net, (x, y), seed=0)
    assert torch.equal(net.emb.weight, table)
    net2 = Net()
    net2.emb.weight.requires_grad_(False)
    with pytest.warns(UserWarning):
        initwise.init(net2, (x, y), seed=0, include_frozen=True)
    assert not torch.equal(net2.emb.weight, table)


@pytest.mark.parametrize("bad, err, words", [
    ({"nothing.here": False}, ValueError, "matches no module"),
    ({"block": "no"}, TypeError, "True or False"),
    ({3: False}, TypeError, "keys must be"),
    (["block"], TypeError, "expected a dict"),
])
def test_bad_calibrate_is_refused_before_any_change(bad, err, words):
    net = Net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(err, match=words):
        initwise.init(net, _data(), calibrate=bad, seed=0)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_seed_and_generator_int_are_the_same_and_exclusive():
    x, y = _data()
    a, b = Net(), Net()
    with pytest.warns(UserWarning):
        initwise.init(a, (x, y), seed=3)
        initwise.init(b, (x, y), generator=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="not both"):
        initwise.init(Net(), (x, y), seed=3, generator=3)
    with pytest.raises(TypeError, match="bool"):
        initwise.init(Net(), (x, y), generator=True)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        initwise.init(Net(), (x, y), seed=2**70)
