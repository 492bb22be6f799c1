"""LayerFacts: where each activation is measured, from the graph and from the structure."""

import pytest
import torch
from torch import nn

from initwise.graph import trace
from initwise.measure import facts_from_graph, layer_facts, structural_facts


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.branch = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        return self.head(torch.tanh(h + self.branch(h)))


def test_norm_carries_the_activation_of_the_layer_it_normalizes():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    facts, source = layer_facts(net, torch.randn(16, 4))
    assert source == "graph"
    lin, bn = facts["0"], facts["1"]
    assert lin.act is None and lin.activation.name == "relu" and lin.followed_by_norm
    assert bn.act.name == "relu" and bn.normalizes == "0" and bn.unit_dim == 1
    assert lin.reads_input and not bn.reads_input and facts["3"].is_output


def test_residual_branch_measures_no_activation():
    facts = facts_from_graph(trace(Residual(), torch.randn(5, 6)))
    assert facts["inp"].act.name == "relu"
    assert facts["branch"].residual and facts["branch"].act is None
    assert facts["branch"].activation.name == "tanh"


def test_structural_facts_agree_with_the_graph_on_a_sequential():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    traced, _ = layer_facts(net, torch.randn(2, 3, 6, 6))
    plain = structural_facts(net)
    assert list(traced) == list(plain) == ["0", "3"]
    for name in traced:
        a, b = traced[name], plain[name]
        assert (a.kind, a.unit_dim) == (b.kind, b.unit_dim)
        assert (a.act is None) == (b.act is None)
        assert a.act is None or (a.act.name, a.act.gain) == (b.act.name, b.act.gain)
    assert traced["0"].act.sat_threshold == plain["0"].act.sat_threshold > 1.8


def test_a_model_whose_forward_raises_is_not_diagnosed_from_its_structure():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

        def forward(self, x):
            raise RuntimeError("cannot run")

    with pytest.raises(RuntimeError, match="cannot run"):
        layer_facts(Broken(), torch.randn(2, 3))


def test_untraceable_model_falls_back_with_the_reason(monkeypatch):
    import initwise.graph

    def broken_trace(model, inputs):
        raise RuntimeError("tracer bug")

    monkeypatch.setattr(initwise.graph, "trace", broken_trace)
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    facts, source = layer_facts(net, torch.randn(2, 3))
    assert source.startswith("structural (graph trace failed") and "tracer bug" in source
    assert facts["0"].act.name == "relu"
