"""apply(): the acceptance model, safety (tied, frozen, parametrized, meta, lazy), atomicity,
determinism and the caller's RNG state."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from initwise.policy import ModulePlan, ParamInit, Policy, apply
from initwise.schemes.gains import gain


def test_acceptance_model_every_parameter_reported(h):
    model, inputs = h.Acceptance(), h.inputs()
    frozen = {k: v.clone() for k, v in model.frozen.state_dict().items()}
    with pytest.warns(UserWarning, match=r"'gate' \(NoReset\).*overrides=\{'gate'"):
        report = apply(model, seed=1, example_inputs=inputs)
    schemes = {r.name: r.scheme for r in report.params}
    assert schemes == {
        "emb.weight": "normal",
        "bag.weight": "normal",
        "attn.in_proj_weight": "lecun_normal",
        "attn.in_proj_bias": "zeros",
        "attn.out_proj.weight": "lecun_normal",
        "attn.out_proj.bias": "zeros",
        "lstm.weight_ih_l0": "lecun_normal",
        "lstm.weight_hh_l0": "orthogonal",
        "lstm.bias_ih_l0": "constant",
        "lstm.bias_hh_l0": "zeros",
        "up.weight": "lecun_normal",
        "up.bias": "zeros",
        "frozen.weight": "skipped:frozen",
        "frozen.bias": "skipped:frozen",
        "custom.weight": "reset_parameters",
        "gate.scale": "skipped:unknown",
        "head.weight": "tied:emb.weight",
    }
    assert model.head.weight is model.emb.weight  # still tied
    assert all(torch.equal(frozen[k], v) for k, v in model.frozen.state_dict().items())
    assert torch.equal(model.gate.scale, torch.full((16,), 3.0))
    assert len(report.warnings) == 1 and report.seed == 1
    # the tied table is the head's weight: LeCun for the head, fan_in = embedding_dim
    emb = report.param("emb.weight")
    assert (emb.fan_in, emb.gain) == (16, 1.0) and "tied to output layer 'head'" in emb.note
    # ConvTranspose2d(1, 2, 4, stride=2): fan_in = 1 * 4 * 4 / (2 * 2) = 4, not torch's 32
    up = report.param("up.weight")
    assert (up.fan_in, up.fan_out) == (4, 32)
    _assert_printable_and_json(report)


def _assert_printable_and_json(report):
    """str(report) is a table with one row per parameter; to_json round-trips every record."""
    import json

    lines = str(report).splitlines()
    assert lines[1].split() == ["parameter", "type", "scheme", "fan_in", "fan_out", "gain", "std"]
    rows = [line.split()[:3] for line in lines[3:3 + len(report.params)]]
    assert rows == [[r.name, r.module_type, r.scheme] for r in report.params]
    data = json.loads(report.to_json())
    assert data["policy"] == report.policy and data["seed"] == report.seed
    assert [(d["name"], d["scheme"], d["fan_in"], d["gain"]) for d in data["params"]] == [
        (r.name, r.scheme, r.fan_in, r.gain) for r in report.params]


def test_on_unknown_error_names_module_and_remedy_and_changes_nothing(h):
    model, inputs = h.Acceptance(), h.inputs()
    before = h.bits(model)
    with pytest.raises(ValueError, match=r"'gate' \(NoReset\).*overrides=.*on_unknown='skip'"):
        apply(model, seed=0, example_inputs=inputs, on_unknown="error")
    assert h.same_bits(before, h.bits(model))


def test_on_unknown_skip_is_silent(h):
    model, inputs = h.Acceptance(), h.inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = apply(model, seed=0, example_inputs=inputs, on_unknown="skip")
    assert report.param("gate.scale").scheme == "skipped:unknown" and not report.warnings


def test_include_frozen_initializes_frozen_params(h):
    model, inputs = h.Acceptance(), h.inputs()
    report = apply(model, seed=0, example_inputs=inputs, on_unknown="skip", include_frozen=True)
    assert report.param("frozen.weight").scheme == "orthogonal"  # a hidden Linear
    assert not model.frozen.weight.requires_grad  # the flag itself is kept


def test_same_seed_same_bits_and_generator_equals_seed(h):
    a, b, c = h.Acceptance(), h.Acceptance(), h.Acceptance()
    inputs = h.inputs()
    assert not h.same_bits(h.bits(a), h.bits(b))
    kw = {"example_inputs": inputs, "on_unknown": "skip"}
    report = apply(a, seed=7, **kw)
    apply(b, generator=torch.Generator().manual_seed(7), **kw)
    apply(c, seed=8, **kw)
    skipped = {r.name for r in report.params if r.scheme.startswith("skipped")}
    assert skipped == {"frozen.weight", "frozen.bias", "gate.scale"}
    ba, bb = h.bits(a), h.bits(b)
    assert h.same_bits({k: v for k, v in ba.items() if k not in skipped},
                       {k: v for k, v in bb.items() if k not in skipped})
    assert not torch.equal(a.lstm.weight_ih_l0, c.lstm.weight_ih_l0)


def test_global_rng_untouched_and_reset_parameters_reproducible(h):
    a, b = h.Acceptance(), h.Acceptance()
    state = torch.get_rng_state()
    b.load_state_dict(a.state_dict())  # the same frozen/unknown parameters, which stay
    for p in b.parameters():
        p.data.normal_(generator=torch.Generator().manual_seed(9))
    b.frozen.load_state_dict(a.frozen.state_dict())
    b.gate.load_state_dict(a.gate.state_dict())
    for m in (a, b):
        apply(m, "torch", seed=3, on_unknown="skip")
    assert torch.equal(torch.get_rng_state(), state)
    assert h.same_bits(h.bits(a), h.bits(b))  # custom.reset_parameters drew from seeded global RNG
    report = apply(a, seed=None, example_inputs=h.inputs(), on_unknown="skip")
    assert isinstance(report.seed, int)  # a fresh seed, reported
    assert torch.equal(torch.get_rng_state(), state)


def test_torch_policy_is_each_modules_reset(h):
    model = h.Acceptance()
    report = apply(model, "torch", seed=0, on_unknown="skip")
    assert report.param("attn.in_proj_weight").scheme == "reset_parameters"  # via _reset_parameters
    assert report.param("head.weight").scheme == "tied:emb.weight"
    bound = 1 / math.sqrt(16)  # torch's Linear default: kaiming_uniform(a=sqrt 5) -> 1/sqrt(fan_in)
    assert float(model.custom.weight.detach().abs().max()) <= bound
    assert model.frozen.weight.requires_grad is False


class _Boom(Exception):
    pass


def test_atomic_when_the_policy_raises_midway(h):
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8),
                          nn.Linear(8, 2))
    model[1].running_mean.fill_(0.5)
    model[3].weight.requires_grad_(False)
    model.eval()
    before, flags = h.bits(model), [p.requires_grad for p in model.parameters()]
    seen = []

    def explode(name, module, ctx):
        seen.append(name)
        if name == "4":
            raise _Boom("midway")
        from initwise.policy._rules import auto_policy

        return auto_policy(name, module, ctx)

    with pytest.raises(_Boom):
        apply(model, Policy("explode", explode, needs_graph=True), seed=0, include_frozen=True)
    assert seen == ["0", "1", "3", "4"]  # it really ran midway
    assert h.same_bits(before, h.bits(model))
    assert [p.requires_grad for p in model.parameters()] == flags and not model.training


def test_atomic_when_a_fill_raises(h):
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    before = h.bits(model)

    def bad_fill(t, g):
        t.fill_(1.0)
        raise RuntimeError("fill failed")

    def policy(name, module, ctx):
        if name == "1":
            return ModulePlan({"weight": ParamInit("bad", bad_fill)})
        return ModulePlan({"weight": ParamInit("ones", lambda t, g: t.fill_(1.0)),
                           "bias": ParamInit("ones", lambda t, g: t.fill_(1.0))})

    with pytest.raises(RuntimeError, match="fill failed"):
        apply(model, policy, seed=0)
    assert h.same_bits(before, h.bits(model))


def test_parametrized_weight_keeps_parametrization(h):
    model = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
    parametrizations.orthogonal(model[0])

    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

        def right_inverse(self, w):
            return w / 2

    parametrize.register_parametrization(model[2], "weight", Double())
    report = apply(model, seed=0, example_inputs=torch.randn(4, 32))
    assert parametrize.is_parametrized(model[0], "weight")
    assert parametrize.is_parametrized(model[2], "weight")
    w = model[0].weight
    assert torch.allclose(w @ w.T, torch.eye(32), atol=1e-5)  # still orthogonal
    rec = report.param("2.parametrizations.weight.original")
    assert rec.scheme == "lecun_normal" and "parametrized" in rec.note
    # the parametrized weight (2 * original) is what the rule sets: N(0, 1/32)
    orig = model[2].parametrizations.weight.original
    assert torch.equal(model[2].weight, 2 * orig)
    h.assert_std(model[2].weight, 1 / math.sqrt(32))
    report = apply(model, "torch", seed=0)  # reset_parameters through a plain copy
    assert parametrize.is_parametrized(model[2], "weight")
    assert float(model[2].weight.detach().abs().max()) <= 1 / math.sqrt(32)


def test_parametrization_without_right_inverse_fills_the_original(h):
    class Sym(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).T

    model = nn.Linear(64, 64)
    parametrize.register_parametrization(model, "weight", Sym())
    report = apply(model, seed=0)
    rec = report.param("parametrizations.weight.original")
    assert "without right_inverse" in rec.note and parametrize.is_parametrized(model)
    h.assert_std(model.parametrizations.weight.original, 1 / 8)
    w = model.weight.detach()
    assert torch.equal(w, w.T)


def test_meta_model_needs_to_empty_then_works():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match=r"to_empty\(device="):
        apply(model, seed=0)
    model.to_empty(device="cpu")
    report = apply(model, seed=0)
    assert report.param("0.weight").gain == pytest.approx(math.sqrt(2))  # fx saw the ReLU
    assert torch.equal(model[1].running_mean, torch.zeros(16))
    assert torch.equal(model[1].running_var, torch.ones(16))
    assert torch.isfinite(model(torch.randn(2, 16))).all()


def test_lazy_module_not_materialized():
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="lazy.*forward pass"):
        apply(model, seed=0)
    model(torch.randn(2, 3))
    assert apply(model, seed=0).param("0.weight").fan_in == 3


def test_a_precomputed_graph_is_used_and_checked():
    from initwise.graph import trace

    def model_fn():
        return nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 2))

    model = model_fn()
    graph = trace(model, torch.randn(2, 8))
    report = apply(model, seed=0, graph=graph)
    assert report.param("0.weight").gain == pytest.approx(gain("gelu"), rel=1e-12)
    with pytest.raises(ValueError, match="traced on another model"):
        apply(model_fn(), seed=0, graph=graph)
    with pytest.raises(TypeError, match="ModelGraph"):
        apply(model, seed=0, graph={"layers": []})


def test_modules_without_parameters():
    report = apply(nn.Sequential(nn.ReLU(), nn.Flatten()), seed=0)
    assert report.params == []


def test_low_precision_model_gets_the_float32_draws(h):
    a = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    b = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).to(torch.bfloat16)
    apply(a, seed=5)
    apply(b, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa.to(torch.bfloat16), pb)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"on_unknown": "ignore"}, ValueError, "on_unknown.*'warn', 'error', 'skip'"),
    ({"policy": "nope"}, ValueError, "unknown policy 'nope'.*register_policy"),
    ({"seed": 1, "generator": torch.Generator()}, ValueError, "not both"),
    ({"seed": -1}, ValueError, "seed"),
    ({"generator": "3"}, TypeError, "torch.Generator"),
    ({"generator": True}, TypeError, "bool"),  # an int seed is accepted; a bool is not
    ({"seed": 2**70}, ValueError, "2\\*\\*64"),
    ({"overrides": {"haed": "xavier_normal"}}, ValueError, "'haed' matches no module"),
    ({"overrides": {"0": "xavier_normel"}}, ValueError, "unknown scheme or policy"),
    ({"overrides": {nn.Conv2d: "orthogonal"}}, ValueError, "no Conv2d"),
    ({"overrides": {3: "orthogonal"}}, TypeError, "keys must be"),
    ({"overrides": ["0"]}, TypeError, "expected a dict"),
    ({"include_frozen": "yes"}, TypeError, "include_frozen"),
])
def test_bad_arguments(kwargs, exc, match):
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(exc, match=match):
        apply(model, **kwargs)


def test_bad_policy_return_value():
    with pytest.raises(TypeError, match="returned int for module '0'"):
        apply(nn.Sequential(nn.Linear(2, 2)), lambda n, m, c: 3, seed=0)
    with pytest.raises(ValueError, match="returned 'zeros'"):
        apply(nn.Sequential(nn.Linear(2, 2)), lambda n, m, c: "zeros", seed=0)
    with pytest.raises(TypeError, match="not an nn.Module|torch.nn.Module"):
        apply("model")


def _mlp():
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))


@pytest.mark.parametrize("policy", ["auto", "xavier"])
def test_old_style_spectral_norm_weight_orig_is_initialized(policy):
    # regression: weight_orig was reported "reset_parameters" but left untouched (the module's
    # reset wrote into the computed `weight` attribute), and u, v stayed those of the old weight
    plain, model = _mlp(), _mlp()
    nn.utils.spectral_norm(model[0])
    apply(plain, policy, seed=4)
    report = apply(model, policy, seed=4)
    rec = report.param("0.weight_orig")
    assert rec.scheme == {"auto": "orthogonal", "xavier": "xavier_uniform"}[policy]
    assert "spectral_norm" in rec.note and rec.fan_in == 64
    assert torch.equal(model[0].weight_orig, plain[0].weight)  # the same draws as unwrapped
    w, u, v = model[0].weight_orig.detach(), model[0].weight_u, model[0].weight_v
    # power iteration estimate (always <= sigma_max): ~0 with the stale u, v; >= 0.9 after
    assert float(u @ w @ v) / float(torch.linalg.matrix_norm(w, 2)) > 0.9
    model.eval()
    assert torch.allclose(model[0](torch.eye(64)) - model[0].bias, (w / float(u @ w @ v)).T)


def test_old_style_spectral_norm_under_the_torch_policy_resets_weight_orig():
    model = _mlp()
    nn.utils.spectral_norm(model[0])
    before = model[0].weight_orig.detach().clone()
    report = apply(model, "torch", seed=4)
    assert report.param("0.weight_orig").scheme == "reset_parameters"
    assert not torch.equal(before, model[0].weight_orig)
    assert float(model[0].weight_orig.detach().abs().max()) <= 1 / 8  # Linear's U(-1/sqrt(64), ..)


def test_old_style_weight_norm_sets_direction_and_magnitude():
    plain, model = _mlp(), _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the old weight_norm
        nn.utils.weight_norm(model[0])
    apply(plain, seed=4)
    report = apply(model, seed=4)
    names = {"0.weight_v", "0.weight_g", "0.bias", "2.weight", "2.bias"}
    assert {r.name for r in report.params} == names
    assert report.param("0.weight_v").scheme == report.param("0.weight_g").scheme
    assert report.param("0.weight_v").scheme == "orthogonal"
    assert torch.equal(model[0].weight_v, plain[0].weight)
    assert torch.allclose(model[0](torch.eye(64)) - model[0].bias, plain[0].weight.T, atol=1e-6)


def test_atomic_after_a_spectral_norm_layer_was_filled(h):
    model = _mlp()
    nn.utils.spectral_norm(model[0])
    before = h.bits(model)  # weight_orig, weight_u, weight_v included

    def explode(name, module, ctx):
        if name == "2":
            raise _Boom("after layer 0")
        from initwise.policy._rules import auto_policy

        return auto_policy(name, module, ctx)

    with pytest.raises(_Boom):
        apply(model, Policy("explode", explode), seed=0)
    assert h.same_bits(before, h.bits(model))


def test_weight_norm_parametrization_reports_both_originals():
    # regression: only `original0` (the magnitude) was reported; `original1` was set (through
    # right_inverse) but missing from the report and from the tied-tensor bookkeeping
    plain, model = _mlp(), _mlp()
    parametrizations.weight_norm(model[0])
    apply(plain, seed=4)
    report = apply(model, seed=4)
    g = report.param("0.parametrizations.weight.original0")
    v = report.param("0.parametrizations.weight.original1")
    assert g.scheme == v.scheme == "orthogonal"
    assert v.note == "set together with 0.parametrizations.weight.original0"
    original1 = model[0].parametrizations.weight.original1.detach()
    assert v.std == pytest.approx(float(original1.std(unbiased=False)))
    assert torch.allclose(model[0].weight, plain[0].weight, atol=1e-6)
