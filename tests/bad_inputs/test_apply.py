"""Bad inputs to `initwise.apply`: each refuses naming the problem and the remedy, and leaves the
model and the caller's RNG exactly as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initwise
from initwise.graph import trace


def _mlp() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


def _apply(model, *args, **kw):
    return lambda: initwise.apply(model, *args, **kw)


@pytest.mark.parametrize("args, kw, exc, words", [
    (("foo",), {}, ValueError, ("unknown policy 'foo'", "'auto'", "register_policy")),
    ((3,), {}, TypeError, ("policy name", "got int")),
    ((), {"on_unknown": "x"}, ValueError, ("apply: on_unknown='x'", "'warn'")),
    ((), {"include_frozen": 1}, TypeError, ("apply: include_frozen", "bool")),
    ((), {"generator": True}, TypeError, ("apply: generator", "got bool")),
    ((), {"generator": 2**70}, ValueError, ("outside [0, 2**64)",)),
    ((), {"generator": "a"}, TypeError, ("got str",)),
    ((), {"seed": -3}, ValueError, ("seed=-3",)),
    ((), {"generator": 1, "seed": 1}, ValueError, ("not both",)),
    ((), {"overrides": {"zzz": "xavier_normal"}}, ValueError, ("'zzz' matches no module",)),
    ((), {"overrides": {"0": "xavier_typo"}}, ValueError, ("unknown scheme", "xavier_normal")),
    ((), {"overrides": [1]}, TypeError, ("expected a dict",)),
    ((), {"graph": "g"}, TypeError, ("ModelGraph",)),
])
def test_bad_options(args, kw, exc, words, refuse):
    net = _mlp()
    refuse(net, _apply(net, *args, **kw), exc, *words)


def test_a_graph_of_another_model(refuse):
    net = _mlp()
    other = trace(_mlp(), torch.randn(2, 4))
    refuse(net, _apply(net, graph=other), ValueError, "another model", "graph=None")


def test_example_inputs_with_the_wrong_feature_count(refuse):
    net = _mlp()
    refuse(net, _apply(net, example_inputs=torch.randn(2, 5)), ValueError,
           "apply: example_inputs", "layer '0' (Linear)", "expects 4 input features", "gives 5")


def test_example_inputs_of_an_integer_dtype(refuse):
    net = _mlp()
    refuse(net, _apply(net, example_inputs=torch.ones(2, 4, dtype=torch.long)), TypeError,
           "torch.float32 parameters", "x.float()")


def test_example_inputs_a_forward_cannot_take_keeps_the_model_error(refuse):
    class Raises(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            raise RuntimeError("boom in forward")

    net = Raises()
    refuse(net, _apply(net, example_inputs=torch.randn(2, 4)), RuntimeError, "boom in forward")


def test_meta_device_model(refuse):
    net = nn.Linear(4, 3, device="meta")
    refuse(net, _apply(net), ValueError, "meta device", "to_empty")


def test_unmaterialized_lazy_linear(refuse):
    net = nn.Sequential(nn.LazyLinear(3))
    refuse(net, _apply(net), ValueError, "lazy", "run one forward pass", "then call apply")


def test_a_torchscript_module(refuse):
    net = torch.jit.script(_mlp())
    refuse(None, _apply(net), TypeError, "TorchScript", "initialize the eager nn.Module")


def test_a_non_module(refuse):
    refuse(None, _apply("net"), TypeError, "torch.nn.Module", "got str")


def test_an_uncovered_parameter_with_on_unknown_error(refuse):
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 3))

        def forward(self, x):
            return x @ self.w

    net = Custom()
    refuse(net, _apply(net, on_unknown="error"), ValueError, "['w']", "reset_parameters",
           "on_unknown='skip'")


def test_a_failing_tensor_scheme_leaves_the_model_as_it_was(refuse):
    def broken(t, generator=None):
        raise ArithmeticError("scheme bug")

    net = _mlp()
    refuse(net, _apply(net, overrides={"2": broken}), ArithmeticError, "scheme bug")


def test_frozen_parameters_are_left_alone_and_reported():
    net = _mlp()
    net[0].weight.requires_grad_(False)
    before = net[0].weight.detach().clone()
    rep = initwise.apply(net, seed=0)
    assert torch.equal(net[0].weight, before)
    assert any(r.name == "0.weight" and r.scheme == "skipped:frozen" for r in rep.params)


def test_an_int_seed_is_accepted_as_by_init():
    a, b = _mlp(), _mlp()
    initwise.apply(a, generator=3)
    initwise.apply(b, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_uncovered_modules_get_one_grouped_warning():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(8))

        def forward(self, x):
            return x * self.w

    net = nn.Sequential(nn.Linear(4, 8), *[Gate() for _ in range(5)], nn.Linear(8, 2))
    with pytest.warns(UserWarning) as caught:
        rep = initwise.apply(net, seed=0)
    msgs = [str(w.message) for w in caught if "does not cover" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("apply: 5 modules")
    assert all(f"'{i}' (Gate: ['w'])" in msgs[0] for i in range(1, 6))
    assert "overrides={'Gate': fn}" in msgs[0]
    assert sum("does not cover" in w for w in rep.warnings) == 5  # the report keeps the detail
