"""Calibration outcomes: dead units, the label prior, standardization, re-draws, convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import initwise.datainit as di
from initwise.datainit._output import TargetStats, shrinkage
from initwise.modelio import LossSpec, label_prior_loss
from initwise.nn import SparseLinear


class _Bag(nn.Module):
    """Sparse first layer -> ReLU -> head. ``bias=False`` uses the ``nn.EmbeddingBag`` idiom
    (no bias: dead units need the sign-flip rule)."""

    def __init__(self, n_in: int, bias: bool) -> None:
        super().__init__()
        self.first = SparseLinear(n_in, 64) if bias else nn.EmbeddingBag(n_in, 64, mode="sum")
        self.head = nn.Linear(64, 3)

    def forward(self, *x):
        return self.head(torch.relu(self.first(*x)))


def _first_max(net: nn.Module, x) -> torch.Tensor:
    out = []
    h = net.first.register_forward_hook(lambda m, a, o: out.append(o.detach()))
    try:
        with torch.no_grad():
            net(*x)
    finally:
        h.remove()
    return out[0].amax(0)


@pytest.mark.parametrize("bias", [True, False])
def test_no_dead_relu_unit_on_nonnegative_sparse_input(bias):
    # every row uses only columns {0, 1, 2} with positive counts: a unit whose three weights are
    # negative is dead on every sample (1/8 of the units under a symmetric structural init).
    rng = np.random.default_rng(0)
    idx = torch.from_numpy(rng.integers(0, 3, size=256))
    off = torch.arange(0, 256, 2)
    psw = torch.from_numpy(rng.integers(1, 4, 256).astype(np.float32))
    if bias:
        x = (torch.sparse_coo_tensor(torch.stack([torch.arange(128).repeat_interleave(2), idx]),
                                     psw, (128, 1000)).coalesce(),)
    else:
        x = (idx, off, psw)
    y = torch.from_numpy(rng.integers(0, 3, 128))
    from initwise.policy import apply

    probe = _Bag(1000, bias)
    apply(probe, "auto", generator=torch.Generator().manual_seed(3), example_inputs=x)
    assert int((_first_max(probe, x) <= 0).sum()) > 0  # the test can fail
    torch.manual_seed(0)
    net = _Bag(1000, bias)
    rep = di.init(net, (x, y), generator=3)
    assert bool((_first_max(net, x) > 0).all())
    assert rep.layer("first").active_fraction == 1.0


@pytest.mark.parametrize("kind", ["ce", "bce", "mse"])
def test_initial_loss_matches_label_prior(kind, mlp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=g) * 30 + 5
    if kind == "ce":
        y = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), 512, True, generator=g)
        n_out = 4
    elif kind == "bce":
        y = (torch.rand(512, 3, generator=g) < torch.tensor([0.05, 0.5, 0.8])).float()
        n_out = 3
    else:
        y = torch.randn(512, 2, generator=g) * torch.tensor([50.0, 0.1]) + 300
        n_out = 2
    torch.manual_seed(0)
    net = mlp(10, 32, n_out)
    batches = [(x[i:i + 128], y[i:i + 128]) for i in range(0, 512, 128)]
    rep = di.init(net, batches, generator=1)
    prior = label_prior_loss(LossSpec(kind), y, n_out)  # the shared twin of the target
    assert rep.loss.kind == kind
    assert rep.loss.target == pytest.approx(prior, rel=1e-9)
    assert abs(rep.loss.after - prior) <= 0.05 * prior
    assert rep.loss.before > 1.2 * prior  # raw inputs: the default init is far off


def test_ce_mean_logits_are_the_log_prior():
    torch.manual_seed(0)
    net = nn.Linear(6, 3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 6, generator=g) * 1e-4
    y = torch.tensor([0] * 200 + [1] * 150 + [2] * 50)
    di.init(net, (x, y), generator=0)
    counts = torch.tensor([200.0, 150.0, 50.0])
    a = shrinkage(counts)  # the prior is shrunk toward uniform by leave-one-out likelihood
    p = (counts + a) / (400 + 3 * a)
    expect = p.log() - p.log().mean()
    with torch.no_grad():
        mean_logits = net(x).mean(0)
    assert torch.allclose(mean_logits, expect, atol=1e-5)


def test_badly_scaled_columns_get_an_input_standardization_on_the_first_layer(mlp):
    from initwise.nn.standardize import INV_SCALE, SHIFT

    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([1e-3, 1.0, 1e3, 1e6, 1.5e9])
    x = torch.rand(256, 5, generator=g) * scales + scales
    y = torch.randint(0, 2, (256,), generator=g)
    torch.manual_seed(0)
    net = mlp(5, 32, 2)
    rep = di.init(net, (x, y), generator=0)
    z = net[0](x).detach()
    assert float(z.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=0.05)
    # the layer's buffers are the calibration columns' mean and 1/std (population)
    xd = x.double()
    torch.testing.assert_close(net[0]._buffers[SHIFT].double(), xd.mean(0).float().double(),
                               rtol=1e-5, atol=0)
    torch.testing.assert_close(net[0]._buffers[INV_SCALE].double(),
                               (1 / xd.std(0, unbiased=False)).float().double(), rtol=1e-4, atol=0)
    # the trainable weights act on standardized columns: same order of magnitude per column
    contrib = net[0].weight.detach().abs().mean(0)
    assert float(contrib.max() / contrib.min()) < 3
    assert "input standardization added" in rep.layer("0").note
    assert any("bake_input_standardization" in w for w in rep.warnings)
    assert not any(SHIFT in name for name, _ in net[2].named_buffers())


def test_raw_columns_train_like_hand_standardized_columns(mlp):
    """Regression: folding 1/s into the weights made one Adam step blow the loss up (2.5 ->
    1e6) and SGD give NaN; with the standardization on the layer, gradients are those of the
    standardized problem, so SGD steps on raw and hand-standardized data are identical."""
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([1e-2, 1.0, 1e2, 1e4, 1e6, 1e8])
    x = torch.randn(256, 6, generator=g) * scales + 3 * scales
    y = (x[:, 3] > 3e4).long()
    torch.manual_seed(0)
    raw = mlp(6, 16, 2)
    di.init(raw, (x, y), generator=0)
    xs = (x.double() - x.double().mean(0)) / x.double().std(0, unbiased=False)
    twin = mlp(6, 16, 2)  # the slow twin: the same weights on hand-standardized inputs
    twin.load_state_dict({k: v for k, v in raw.state_dict().items() if "initwise" not in k})
    opts = [torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9) for n in (raw, twin)]
    for _ in range(5):
        for net, inp, opt in ((raw, x, opts[0]), (twin, xs.float(), opts[1])):
            loss = nn.functional.cross_entropy(net(inp), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert torch.isfinite(loss)
    for a, b in zip(raw.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_well_scaled_columns_are_folded_without_adding_anything(mlp):
    from initwise.nn import has_input_standardization

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 5, generator=g) * torch.tensor([0.2, 0.5, 1.0, 2.0, 8.0])
    torch.manual_seed(0)
    net = mlp(5, 32, 2)
    rep = di.init(net, (x, torch.randint(0, 2, (256,), generator=g)), generator=0)
    assert not has_input_standardization(net[0])
    assert "folded" in rep.layer("0").note
    assert not any("standardization added" in w for w in rep.warnings)


def test_hidden_layers_hit_the_target_rms(mlp):
    torch.manual_seed(0)
    net = mlp(20, 64, 5, depth=6, act=nn.Tanh)
    x = torch.randn(256, 20) * 4
    rep = di.init(net, (x, torch.randint(0, 5, (256,))), target="unit", generator=0)
    for lc in rep.layers[:-1]:
        assert lc.converged
        assert lc.pre_std == pytest.approx(1.0, rel=0.05)
        assert lc.saturated_fraction == 0.0


class _ZeroLinear(nn.Linear):
    """A user layer whose own reset zeroes its weight (constant output)."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


def test_constant_output_layer_is_redrawn_not_blown_up():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), _ZeroLinear(16, 16), nn.ReLU(),
                        nn.Linear(16, 2))
    x = torch.randn(128, 8)
    rep = di.init(net, (x, torch.randint(0, 2, (128,))), policy="torch", generator=0)
    lc = rep.layer("2")
    assert "re-drawn" in lc.note
    w = net[2].weight.detach()
    assert float(w.std()) > 0
    assert float(w.abs().max()) < 10  # a re-draw, not a 1e8 multiplier
    assert lc.pre_std == pytest.approx(lc.target_std, rel=0.05)


class _Shared(nn.Module):
    """One Linear applied three times: its scale feeds back into its own input."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.loop = nn.Linear(16, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.inp(x)
        for _ in range(3):
            h = self.loop(h)
        return self.head(h)


def test_max_iters_warning_names_the_layer():
    torch.manual_seed(0)
    net = _Shared()
    x = torch.randn(64, 4)
    with pytest.warns(UserWarning, match="'loop'"):
        # Gaussian draws: an orthogonal 'loop' preserves norms and converges in one step
        rep = di.init(net, (x, torch.randint(0, 2, (64,))), max_iters=1, generator=0,
                      policy="kaiming")
    assert not rep.layer("loop").converged
    assert any("'loop'" in w and "max_iters=1" in w for w in rep.warnings)
    rep2 = di.init(_Shared(), (x, torch.randint(0, 2, (64,))), max_iters=30, generator=0,
                   policy="kaiming")
    assert rep2.layer("loop").converged  # the same layer converges given iterations


class _ResMLP(nn.Module):
    def __init__(self, blocks: int, width: int = 32) -> None:
        super().__init__()
        self.inp = nn.Linear(10, width)
        self.a = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.b = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        h = self.inp(x)
        for a, b in zip(self.a, self.b):
            h = h + b(torch.relu(a(h)))
        return self.head(torch.relu(h))


def test_residual_branches_are_scaled_so_depth_does_not_blow_up():
    torch.manual_seed(0)
    net = _ResMLP(16)
    x = torch.randn(256, 10)
    rep = di.init(net, (x, torch.randint(0, 3, (256,))), generator=0)
    assert rep.layer("b.0").target_std == pytest.approx(1 / math.sqrt(16))
    with torch.no_grad():
        h = net.inp(x)
        for a, b in zip(net.a, net.b):
            h = h + b(torch.relu(a(h)))
    assert float(h.pow(2).mean().sqrt()) < math.e  # variance grows at most (1 + 1/L)^L


def test_layer_before_batchnorm_is_left_to_the_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    net.train()
    x = torch.randn(64, 6) * 100
    before_rm = net[1].running_mean.clone()
    rep = di.init(net, (x, torch.randint(0, 2, (64,))), generator=0)
    assert "batchnorm" in rep.layer("0").note
    assert net.training and net[1].training
    assert torch.equal(net[1].running_mean, before_rm)  # calibration forwards left no trace


class _WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def test_recurrent_layer_is_reported_per_on_unknown():
    x = torch.randn(16, 5, 4)
    y = torch.randint(0, 2, (16,))
    torch.manual_seed(0)
    net = _WithLSTM()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="'rnn'.*on_unknown"):
        di.init(net, (x, y), on_unknown="error", generator=0)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    with pytest.warns(UserWarning, match="'rnn'"):
        rep = di.init(net, (x, y), on_unknown="warn", generator=0)
    assert [lc.module for lc in rep.layers] == ["head"]
    # 16 rows: the prior init sets is shrunk toward uniform, so the loss is that prior's
    fitted = TargetStats.collect(LossSpec("ce"), [y], 2).fitted_prior_loss()
    assert rep.loss.target < fitted
    assert abs(rep.loss.after - fitted) <= 0.05 * fitted


def test_critical_target_uses_the_theory_fixed_point(mlp):
    from initwise.datainit._api import critical_rms
    from initwise.theory.criticality import critical_point

    q = critical_point("tanh", di.CRITICAL_SIGMA_B).q_star
    assert critical_rms("tanh") == pytest.approx(math.sqrt(q))
    assert critical_rms("relu") is None  # critical at every q: the walk aims at 1
    torch.manual_seed(0)
    net = mlp(8, 32, 3, depth=4, act=nn.Tanh)
    x = torch.randn(128, 8)
    rep = di.init(net, (x, torch.randint(0, 3, (128,))), target="critical", generator=0)
    for lc in rep.layers[:-1]:
        assert lc.pre_std == pytest.approx(math.sqrt(q), rel=0.05)


def test_a_head_that_starts_below_the_prior_is_brought_back_to_it():
    """Regression: the loss band was one-sided, so a random head whose logits happened to track
    the labels started far below the label prior (deep nets on breast_cancer: -20 to -50 %)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    y = (x[:, 0] > 0).long()  # the first input column decides the label
    net = nn.Linear(4, 2)
    with torch.no_grad():  # an "informative" random head: a user-loaded or lucky draw
        net.weight.copy_(torch.tensor([[-8.0, 0, 0, 0], [8.0, 0, 0, 0]]))
    batches = [(x[i:i + 128], y[i:i + 128]) for i in range(0, 512, 128)]
    rep = di.init(net, batches, policy=lambda name, module, ctx: "skip",
                 generator=0)
    prior = label_prior_loss(LossSpec("ce"), y, 2)
    assert rep.loss.before < 0.5 * prior  # the kept head is far below the prior
    assert abs(rep.loss.after - prior) <= di.LOSS_BUDGET * prior * 1.01
