"""The activation registry: one place that says what an activation is, for gain, graph and apply."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise
from initwise.activations import (
    FLAGS,
    activation_facts,
    known_activations,
    module_activation,
    register_activation,
    unregister_activation,
)
from initwise.graph import trace, trace_structure


class Squash(nn.Module):
    """softsign written by hand: a user activation initwise has never seen."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1 + x.abs())


class Tagged(nn.Module):
    initwise_activation = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * F.relu(x)


class TaggedTanh(nn.Module):
    initwise_activation = "tanh"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class NotAReLU(nn.ReLU):
    initwise_activation = False


@pytest.fixture
def registered():
    """Register through this fixture: every registration is removed after the test."""
    done: list = []

    def register(target, **kw):
        register_activation(target, **kw)
        done.append(target)
        return target

    yield register
    for target in reversed(done):
        try:
            unregister_activation(target)
        except ValueError:
            pass  # the test unregistered it itself


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), Squash(), nn.Linear(16, 3))


def test_a_registered_module_is_seen_by_gain_graph_and_apply(registered):
    x = torch.randn(4, 8)
    before = initwise.apply(_net(), seed=0, example_inputs=x)
    assert before.param("0.weight").gain == 1.0  # the bug: "no activation follows"
    registered(Squash, kinks=(0.0,))
    g = initwise.gain("softsign")  # Squash IS softsign: the theory's exact closed-form twin
    assert initwise.gain(Squash()) == pytest.approx(g, rel=1e-12)
    assert [(n.name, n.activation) for n in trace(_net(), x).layers] == [("0", "Squash"),
                                                                        ("2", None)]
    assert [n.activation for n in trace_structure(_net()).layers] == ["Squash", None]
    model = _net()
    report = initwise.apply(model, seed=0, example_inputs=x)
    rec = report.param("0.weight")
    assert rec.gain == pytest.approx(g, rel=1e-12) and "Squash" in rec.note
    w = model[0].weight.detach().double()  # hidden Linear: g * sqrt(out/in) * orthogonal
    assert torch.allclose(w.T @ w, g * g * 2.0 * torch.eye(8, dtype=w.dtype), atol=1e-4)
    assert report.param("2.weight").gain == 1.0  # the output layer


def test_fx_tracer_keeps_a_registered_module_as_a_leaf(registered):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.act, self.out = nn.Linear(4, 6), Squash(), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.act(self.lin(x)))

    assert trace_structure(Net()).layers[0].activation is None
    registered(Squash)
    graph = trace_structure(Net())
    assert graph.method == "fx" and graph.layers[0].activation == "Squash"


def test_facts_of_a_registered_module(registered):
    registered(Squash, kinks=(0.0,))
    facts = activation_facts(Squash())
    assert facts.name == "Squash" and facts.saturating and not facts.relu_family
    assert facts.sat_threshold == pytest.approx(math.sqrt(10.0) - 1.0, rel=1e-12)
    assert facts.gain == initwise.gain(Squash())
    assert facts.odd_slope is None and not facts.homogeneous


def test_clash_is_refused_naming_the_owner(registered):
    registered(Squash)
    with pytest.raises(ValueError, match=r"Squash is already registered.*owner: .*"
                                         r"test_activation_registry"):
        register_activation(Squash)
    with pytest.raises(ValueError, match=r"torch.nn.*Tanh.*owner: initwise \(built-in\)"):
        register_activation(nn.Tanh)
    with pytest.raises(ValueError, match=r"'tanh'.*owner: the initwise.theory registry"):
        register_activation("tanh", fn=np.tanh)


def test_overwriting_a_builtin_then_unregistering_restores_it(registered):
    g_tanh = initwise.gain("tanh")
    registered(nn.Tanh, name="double_tanh", fn=lambda x: 2.0 * torch.tanh(x), overwrite=True)
    assert module_activation(nn.Tanh()) == "double_tanh"
    assert initwise.gain(nn.Tanh()) == pytest.approx(g_tanh / 2.0, rel=1e-9)
    assert activation_facts(nn.Tanh()).gain == pytest.approx(g_tanh / 2.0, rel=1e-9)
    unregister_activation(nn.Tanh)
    assert module_activation(nn.Tanh()) == "tanh"
    assert initwise.gain(nn.Tanh()) == g_tanh and activation_facts(nn.Tanh()).gain == g_tanh
    with pytest.raises(ValueError, match="no user registration"):
        unregister_activation(nn.Tanh)


def test_a_named_callable_resolves_everywhere_a_name_does(registered):
    def lecun_tanh(x):
        return 1.7159 * np.tanh(2.0 * x / 3.0)

    registered("lecun_tanh", fn=lecun_tanh)
    assert "lecun_tanh" in known_activations()
    expected = initwise.gain(lambda x: 1.7159 * np.tanh(2.0 * x / 3.0))
    assert initwise.gain("lecun_tanh") == pytest.approx(expected, rel=1e-12)
    assert activation_facts("lecun_tanh").saturating
    unregister_activation("lecun_tanh")
    assert "lecun_tanh" not in known_activations()
    with pytest.raises(ValueError, match="unknown activation"):
        initwise.gain("lecun_tanh")


def test_the_class_attribute_registers_and_opts_out():
    assert module_activation(Tagged()) == "Tagged"
    assert activation_facts(Tagged()).gain == pytest.approx(1.0 / math.sqrt(2.0), rel=1e-9)
    assert activation_facts(Tagged()).odd_slope == 2.0 and activation_facts(Tagged()).homogeneous
    facts = activation_facts(TaggedTanh())
    assert facts.name == "tanh" and facts.gain == initwise.gain("tanh")
    assert module_activation(NotAReLU()) is None


@pytest.mark.parametrize("name,closed_form", [
    ("tanh", math.atanh(math.sqrt(0.9))),  # 1 - tanh^2 = 0.1
    ("sigmoid", 2.0 * math.acosh(math.sqrt(10.0))),  # s (1 - s) = 0.025
    ("softsign", math.sqrt(10.0) - 1.0),  # 1 / (1 + z)^2 = 0.1
    ("hardtanh", 1.0),
    ("hardsigmoid", 3.0),
    ("relu6", 6.0),
])
def test_saturation_thresholds_are_the_closed_forms(name, closed_form):
    assert activation_facts(name).sat_threshold == pytest.approx(closed_form, rel=1e-12)


def test_non_saturating_activations_have_no_threshold():
    assert activation_facts("relu").sat_threshold is None
    assert activation_facts("gelu").sat_threshold is None


@pytest.mark.parametrize("name", ["hardtanh", "relu", "tanh", "gelu", "selu", "softplus"])
def test_the_facts_gain_is_initwise_gain(name):
    assert activation_facts(name).gain == initwise.gain(name)


def test_hardtanh_gain_is_the_exact_one():
    # E[clip(z)^2] = 2 (Phi(1) - 1/2 - phi(1)) + 2 (1 - Phi(1)), closed form
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(1 / math.sqrt(2))
    m2 = 2 * ((0.5 - tail) - phi1) + 2 * tail
    assert activation_facts("hardtanh").gain == pytest.approx(1 / math.sqrt(m2), rel=1e-12)
    assert activation_facts(nn.Hardtanh()).gain == initwise.gain("hardtanh")


@pytest.mark.parametrize("act,c,homogeneous", [
    ("relu", 1.0, True), (nn.LeakyReLU(0.2), 1.2, True), ("gelu", 1.0, False),
    ("tanh", None, False), ("identity", 2.0, True), ("elu", None, False),
])
def test_odd_slope_and_homogeneity(act, c, homogeneous):
    facts = activation_facts(act)
    assert facts.odd_slope == (pytest.approx(c, rel=1e-12) if c is not None else None)
    assert facts.homogeneous is homogeneous


def test_facts_are_cached_by_name_and_parameters_but_keep_the_inputs_torch_fn(monkeypatch):
    import initwise.activations as acts

    register_activation("cache_probe", fn=np.tanh)  # any registry change empties the cache
    unregister_activation("cache_probe")
    calls: list = []
    real = acts.variance_gain
    monkeypatch.setattr(acts, "variance_gain", lambda a: calls.append(a) or real(a))
    module = nn.LeakyReLU()
    a, b = activation_facts("leaky_relu"), activation_facts(module)
    assert len(calls) == 1 and (a.gain, a.sat_threshold, a.odd_slope) == (
        b.gain, b.sat_threshold, b.odd_slope)
    assert b.torch_fn is module and b.spec.torch_fn is module
    assert activation_facts(nn.LeakyReLU(0.2)).odd_slope == pytest.approx(1.2, rel=1e-12)
    assert len(calls) == 2
    prelu = nn.PReLU(3, init=0.1)
    assert activation_facts(prelu).torch_fn is prelu  # per-channel: the module, not a copy


def test_unresolvable_gives_none_and_bad_registrations_are_refused():
    assert activation_facts(None) is None and activation_facts(42) is None
    with pytest.raises(ValueError, match=f"valid: {list(FLAGS)}".replace("[", r"\[")
                       .replace("]", r"\]")):
        register_activation(Squash, bounded=True)
    with pytest.raises(TypeError, match="needs fn="):
        register_activation("nameless")
    with pytest.raises(TypeError, match="nn.Module subclass or a name"):
        register_activation(Squash())
    assert module_activation(Squash()) is None  # nothing was registered
