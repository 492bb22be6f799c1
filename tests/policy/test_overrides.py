"""Overrides by name glob and module type, and the policy registry."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

import initwise.policy._types as types_mod
from initwise.policy import ModulePlan, ParamInit, apply, policies, register_policy


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 3))

    def forward(self, x):
        return self.head(self.encoder(x)) + self.conv(x[:, None, :9].reshape(-1, 1, 3, 3)).sum()


def test_overrides_by_glob_and_type(h):
    model = Net()
    ones = nn.init.ones_  # a tensor scheme without generator=: runs on the seeded global RNG
    overrides = {"head": "xavier_normal", nn.Conv2d: "orthogonal", "encoder.*": ones}
    report = apply(model, seed=0, overrides=overrides, example_inputs=torch.randn(2, 64))
    assert report.param("head.0.weight").scheme == "xavier_normal"  # the subtree of 'head'
    h.assert_std(model.head[0].weight, math.sqrt(2 / (64 + 32)))
    assert report.param("head.1.weight").scheme == "xavier_normal"
    w = model.conv.weight.reshape(4, 9)
    assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
    assert torch.equal(model.encoder[0].weight, torch.ones(64, 64))
    assert report.param("encoder.0.weight").scheme == "ones"
    assert report.param("encoder.0.bias").scheme == "zeros"  # 1-d: as auto decides


def test_a_type_override_covers_the_subtree_of_a_container_type():
    # regression: {nn.TransformerEncoderLayer: ...} matched nothing (the layer owns no
    # parameters itself, its Linear/MHA children are not of that type) and was silently ignored
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), nn.Linear(8, 2))
    report = apply(model, seed=0, overrides={nn.TransformerEncoderLayer: "xavier_uniform"})
    inner = [r for r in report.params if r.name.startswith("0.") and r.name.endswith("weight")
             and "norm" not in r.name]
    assert [r.name for r in inner] == ["0.self_attn.in_proj_weight",
                                       "0.self_attn.out_proj.weight", "0.linear1.weight",
                                       "0.linear2.weight"]
    assert {r.scheme for r in inner} == {"xavier_uniform"}
    assert report.param("1.weight").scheme == "lecun_normal"  # outside the subtree: auto


def test_first_matching_override_wins_and_skip():
    model = Net()
    before = model.encoder[2].weight.clone()
    report = apply(model, seed=0, overrides={"encoder.2": "skip", "encoder*": "lecun_normal"})
    assert torch.equal(model.encoder[2].weight, before)
    assert report.param("encoder.2.weight").scheme == "skipped:policy"
    assert report.param("encoder.0.weight").scheme == "lecun_normal"
    report = apply(model, seed=0, overrides={"encoder*": "lecun_normal", "encoder.2": "skip"})
    assert report.param("encoder.2.weight").scheme == "lecun_normal"


def test_callable_override_with_generator_is_reproducible():
    normal = functools.partial(nn.init.normal_, std=0.02)
    a, b = Net(), Net()
    state = torch.get_rng_state()
    for m in (a, b):
        apply(m, seed=3, overrides={nn.Linear: normal})
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.head[1].weight, b.head[1].weight)
    assert abs(float(a.encoder[0].weight.detach().std()) / 0.02 - 1) < 5 / math.sqrt(2 * 64 * 64)


def test_override_with_policy_names_and_reset():
    model = Net()
    report = apply(model, "xavier", seed=0, overrides={"conv": "torch", "head.1": "auto"})
    assert report.param("conv.weight").scheme == "reset_parameters"
    assert report.param("head.1.weight").scheme == "lecun_normal"
    assert report.param("encoder.0.weight").scheme == "xavier_uniform"
    report = apply(model, seed=0, overrides={"conv": "reset_parameters"})
    assert report.param("conv.weight").scheme == "reset_parameters"


def test_register_policy_guard_and_use():
    name = "test_constant_policy"

    def constant(qname, module, ctx):
        return ModulePlan({p: ParamInit("fives", lambda t, g: t.fill_(5.0))
                           for p, _ in module.named_parameters(recurse=False)})

    try:
        register_policy(name, constant, description="all fives")
        assert policies()[name] == "all fives" and "auto" in policies()
        with pytest.raises(ValueError, match="already registered.*overwrite=True"):
            register_policy(name, constant)
        register_policy(name, constant, overwrite=True)
        model = nn.Linear(3, 3)
        report = apply(model, name, seed=0)
        assert report.policy == name and torch.equal(model.weight, torch.full((3, 3), 5.0))
        assert apply(Net(), seed=0, overrides={"head": name}).param("head.0.bias").scheme \
            == "fives"
    finally:
        types_mod._REGISTRY.pop(name, None)
    with pytest.raises(ValueError, match="non-empty string"):
        register_policy("", constant)
    with pytest.raises(TypeError, match="callable"):
        register_policy("x", 3)
