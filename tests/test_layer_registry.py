"""The layer registry: one answer to "what is this layer?" for graph, fans, apply and init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise
from initwise.graph import layer_kind as graph_layer_kind
from initwise.graph import trace
from initwise.layers import (
    LAYER_KINDS,
    Fans,
    layer_kind,
    layer_type,
    register_layer,
    unregister_layer,
)


class Mix(nn.Module):
    """A dense layer initwise does not know: y = x W^T, W stored as ``weight`` (out, in)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.weight = nn.Parameter(torch.full((n_out, n_in), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


class MambaLike(nn.Module):
    """The parameters of a Mamba block that must keep their own init (plain torch)."""

    def __init__(self, d: int = 8, n: int = 4) -> None:
        super().__init__()
        self.in_proj = nn.Linear(d, d)
        self.dt_proj = nn.Linear(d, d)
        with torch.no_grad():  # softplus(dt_bias) drawn in [1e-3, 0.1], as Mamba does
            dt = torch.exp(torch.rand(d) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1.0)).repeat(d, 1))
        self.D = nn.Parameter(torch.ones(d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(x)
        dt = F.softplus(self.dt_proj(h))
        return self.out_proj(h * dt * (-torch.exp(self.A_log)).mean(-1) + self.D * h)


class WithFans(nn.Module):
    """A custom module that reports its fans itself (``initwise_fans``)."""

    def __init__(self, weight_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(weight_shape))

    def initwise_fans(self, name: str) -> Fans:
        return Fans(3, 3)


@pytest.fixture
def registered():
    """Register through this fixture: every registration is removed after the test."""
    done: list = []

    def register(cls, **kw):
        register_layer(cls, **kw)
        done.append(cls)
        return cls

    yield register
    for cls in reversed(done):
        try:
            unregister_layer(cls)
        except ValueError:
            pass  # the test unregistered it itself


def _mix_fans(m: Mix, name: str) -> Fans:
    return Fans(m.n_in, m.n_out)


def test_a_registered_layer_is_seen_by_graph_fans_and_apply(registered):
    def net() -> nn.Sequential:
        return nn.Sequential(Mix(12, 32), nn.ReLU(), nn.Linear(32, 2))

    x = torch.randn(5, 12)
    assert layer_kind(Mix(2, 2)) == "other"
    registered(Mix, kind="linear", fans=_mix_fans)
    assert layer_kind(Mix(2, 2)) == graph_layer_kind(Mix(2, 2)) == "linear"
    assert initwise.fans(Mix(12, 32)) == Fans(12, 32, 1)
    graph = trace(net(), x)
    assert [(n.kind, n.activation) for n in graph.layers] == [("linear", "relu"), ("linear", None)]
    torch.manual_seed(0)
    model = nn.Sequential(Mix(256, 512), nn.ReLU(), nn.Linear(512, 2))
    report = initwise.apply(model, seed=0, example_inputs=torch.randn(5, 256))
    rec = report.param("0.weight")
    assert (rec.scheme, rec.fan_in, rec.fan_out) == ("kaiming_normal", 256, 512)
    assert rec.gain == pytest.approx(math.sqrt(2.0), rel=1e-12)
    std = float(model[0].weight.detach().double().std())
    assert std == pytest.approx(math.sqrt(2.0 / 256), rel=0.01)  # 131072 draws: 0.2 % noise


def test_a_plan_keeps_a_mamba_blocks_own_init(registered):
    def keep(name: str, module: nn.Module, ctx) -> str | None:
        return "keep" if isinstance(module, MambaLike) or name.endswith("dt_proj") else None

    registered(MambaLike, kind="other", plan=keep,
               calibrate={"A_log": False, "D": False, "dt_proj.bias": False})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), MambaLike(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = initwise.apply(model, seed=0, example_inputs=torch.randn(3, 8))
    after = model.state_dict()
    for k in ("1.A_log", "1.D", "1.dt_proj.weight", "1.dt_proj.bias"):
        assert torch.equal(after[k], before[k]), k
        assert report.param(k).scheme == "skipped:policy"
    assert not torch.equal(after["1.in_proj.weight"], before["1.in_proj.weight"])
    lt = layer_type(model[1])
    assert lt.calibrates("dt_proj.bias") is False and lt.calibrates("in_proj.weight") is True


def test_without_the_plan_apply_redraws_dt_proj():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), MambaLike(), nn.Linear(8, 2))
    before = model[1].dt_proj.bias.clone()
    initwise.apply(model, seed=0, on_unknown="skip")
    assert torch.equal(model[1].dt_proj.bias, torch.zeros(8)) and not torch.equal(
        before, torch.zeros(8))


def test_calibrate_false_is_exposed(registered):
    registered(Mix, kind="linear", fans=_mix_fans, calibrate=False)
    lt = layer_type(Mix(2, 3))
    assert lt.calibrate is False and lt.calibrates("weight") is False
    assert layer_type(nn.Linear(2, 2)).calibrate is True


def test_clash_is_refused_naming_the_owner(registered):
    registered(Mix, kind="linear", fans=_mix_fans)
    with pytest.raises(ValueError, match=r"Mix is already registered as a 'linear' layer "
                                         r"\(owner: .*test_layer_registry\)"):
        register_layer(Mix, kind="other")
    with pytest.raises(ValueError, match=r"Linear is already registered.*initwise \(built-in\)"):
        register_layer(nn.Linear, kind="other")
    with pytest.raises(ValueError, match="unknown kind 'dense'"):
        register_layer(WithFans, kind="dense")
    with pytest.raises(TypeError, match="calibrate= must be a bool"):
        register_layer(WithFans, kind="other", calibrate={"weight": "no"})


def test_overwriting_a_builtin_then_unregistering_restores_it(registered):
    registered(nn.Linear, kind="other", calibrate=False, overwrite=True)
    assert layer_kind(nn.Linear(3, 2)) == "other"
    assert initwise.fans(nn.Linear(3, 2)) == Fans(3, 2, 1)  # inherited from the built-in entry
    unregister_layer(nn.Linear)
    assert layer_kind(nn.Linear(3, 2)) == "linear" and layer_type(nn.Linear(3, 2)).calibrate
    with pytest.raises(ValueError, match="no user registration"):
        unregister_layer(nn.Linear)


def test_a_registered_subclass_inherits_the_base_rules(registered):
    class Masked(nn.Linear):
        pass

    registered(Masked, kind="linear", calibrate=False)
    lt = layer_type(Masked(3, 2))
    assert lt.cls is Masked and lt.unit_dim == -1 and lt.axis(Masked(3, 2)) == 0
    assert initwise.fans(Masked(3, 2)) == Fans(3, 2, 1)


def test_initwise_fans_modules_are_one_kind_everywhere():
    # the rule: initwise_fans + a 2-D own weight -> "linear"; otherwise the generic rule
    assert layer_kind(WithFans((3, 3))) == graph_layer_kind(WithFans((3, 3))) == "linear"
    assert layer_kind(WithFans((3,))) == graph_layer_kind(WithFans((3,))) == "other"
    assert initwise.fans(WithFans((3,))) == Fans(3, 3)


@pytest.mark.parametrize("module,kind,unit_dim,axis", [
    (nn.Linear(3, 2), "linear", -1, 0),
    (nn.Bilinear(3, 3, 2), "bilinear", -1, 0),
    (nn.Conv2d(2, 4, 3), "conv", 1, 0),
    (nn.ConvTranspose2d(2, 4, 3), "conv_transpose", 1, 1),
    (nn.ConvTranspose2d(2, 4, 3, groups=2), "conv_transpose", 1, None),
    (nn.Embedding(5, 3), "embedding", -1, 1),
    (nn.EmbeddingBag(5, 3), "embedding_bag", -1, 1),
    (initwise.SparseLinear(5, 3), "linear", -1, 1),
    (nn.LSTM(3, 4), "rnn", None, None),
    (nn.GRUCell(3, 4), "rnn", None, None),
    (nn.MultiheadAttention(4, 2), "attention", None, None),
    (nn.BatchNorm1d(3), "norm", None, None),
    (nn.InstanceNorm2d(3), "norm", None, None),
    (nn.LayerNorm(3), "norm", None, None),
    (nn.GroupNorm(1, 3), "norm", None, None),
])
def test_builtin_entries(module, kind, unit_dim, axis):
    lt = layer_type(module)
    assert lt.kind == kind == layer_kind(module) and lt.kind in LAYER_KINDS
    assert lt.unit_dim == unit_dim and lt.axis(module) == axis
    assert lt.owner == "initwise (built-in)" and lt.calibrate is True


def test_no_layers():
    assert layer_type(nn.ReLU()) is None and layer_kind(nn.ReLU()) is None
    assert layer_kind(nn.Sequential(nn.Linear(2, 2))) is None
    assert layer_kind(nn.Dropout()) is None


def test_a_plan_returning_nonsense_is_refused_naming_the_type(registered):
    registered(MambaLike, kind="other", plan=lambda name, m, ctx: "draw")
    model = nn.Sequential(MambaLike())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"plan registered for MambaLike .* returned 'draw' for "
                                         r"module '0'"):
        initwise.apply(model, seed=0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
