"""Cost per preset (forward/backward passes) and the on_unknown policy."""

import warnings

import pytest
import torch
from torch import nn

from initwise.doctor import doctor


class Counted(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        self.forwards = 0
        self.backwards = 0
        self.net[0].weight.register_hook(self._count_backward)

    def _count_backward(self, grad):
        self.backwards += 1

    def forward(self, x):
        self.forwards += 1
        return self.net(x)


@pytest.mark.parametrize(("preset", "max_fwd", "n_bwd"),
                         [("quick", 2, 0), ("standard", 2, 1), ("full", 3, 1)])
def test_passes_per_preset(preset, max_fwd, n_bwd):
    m = Counted()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    batch = (torch.randn(32, 8), torch.randint(0, 3, (32,)))
    doctor(m, batch, optimizer=opt, checks=preset)
    # the deep copy of the step (preset "full") counts on the copy, not on m
    assert m.forwards <= max_fwd and m.backwards == n_bwd


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.scale


def test_on_unknown_policies():
    m = nn.Sequential(nn.Linear(4, 4), Custom(), nn.Linear(4, 2))
    batch = (torch.randn(16, 4), torch.randint(0, 2, (16,)))
    with pytest.raises(ValueError, match="unknown kind"):
        doctor(m, batch, on_unknown="error")
    with pytest.warns(UserWarning, match="unknown kind"):
        doctor(m, batch, on_unknown="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = doctor(m, batch, on_unknown="skip")
    assert any("unknown kind" in s for s in d.skipped)
    assert any(s.kind == "other" for s in d.layers)


def test_package_is_callable_and_keeps_its_attributes():
    import initwise.doctor as pkg

    d = pkg(nn.Linear(3, 2), torch.randn(4, 3), checks="quick")
    assert d.preset == "quick" and callable(pkg.register_check)


def test_structural_fallback_when_graph_trace_fails(monkeypatch):
    import initwise.graph

    def broken_trace(model, inputs):
        raise RuntimeError("tracer bug")

    monkeypatch.setattr(initwise.graph, "trace", broken_trace)
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        m[0].bias.fill_(-50.0)
    d = doctor(m, (torch.randn(32, 8), torch.randint(0, 2, (32,))))
    assert any("graph trace failed" in s for s in d.skipped)
    assert "units.dead" in d.codes_at("error")


def test_loss_fn_must_return_a_scalar():
    m = nn.Linear(4, 2)
    batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
    with pytest.raises(ValueError, match="scalar"):
        doctor(m, batch, loss_fn=nn.CrossEntropyLoss(reduction="none"))
    d = doctor(m, batch, loss_fn=nn.CrossEntropyLoss())
    assert d.summary["loss_kind"] == "ce"
