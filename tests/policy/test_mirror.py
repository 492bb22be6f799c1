"""Looks-linear (mirrored) draws of the auto policy: where they apply, their structure, and that
the chain they build is exactly linear (affine after ``initwise.init``) at initialization."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise.datainit as di
from initwise.policy import apply
from initwise.policy._mirror import odd_linear_slope
from initwise.schemes.gains import gain


def _chain(act, width: int = 16, depth: int = 4, n_in: int = 6, n_out: int = 3,
           bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = n_in
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width, bias=bias), act()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, n_out))


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name, module, c", [
    ("relu", nn.ReLU(), 1.0),
    ("leaky_relu", nn.LeakyReLU(0.2), 1.2),
    ("gelu", nn.GELU(), 1.0),
    ("gelu", nn.GELU(approximate="tanh"), 1.0),
    ("silu", nn.SiLU(), 1.0),
    ("softplus", nn.Softplus(), 1.0),
    ("hardswish", nn.Hardswish(), 1.0),
    ("tanh", nn.Tanh(), None),
    ("sigmoid", nn.Sigmoid(), None),
    ("elu", nn.ELU(), None),
    ("selu", nn.SELU(), None),
    ("mish", nn.Mish(), None),
    ("relu6", nn.ReLU6(), None),
    ("prelu", nn.PReLU(), None),  # learnable slope: never mirrored
])
def test_odd_linear_slope_against_torch(name, module, c):
    got = odd_linear_slope(name, module)
    assert got == (None if c is None else pytest.approx(c, rel=1e-12))
    if isinstance(module, nn.PReLU):
        return
    # the slow twin: phi(z) - phi(-z) against c z with torch itself, float64, wide range
    z = torch.linspace(-12, 12, 2001, dtype=torch.float64)
    with torch.no_grad():
        diff = module.double()(z) - module.double()(-z)
    if c is None:
        assert float((diff - diff[-1] / z[-1] * z).abs().max()) > 1e-3
    else:
        assert torch.allclose(diff, c * z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("act, c", [(nn.ReLU, 1.0), (nn.GELU, 1.0), (nn.SiLU, 1.0),
                                    (lambda: nn.LeakyReLU(0.1), 1.1), (nn.Hardswish, 1.0)])
def test_chain_is_mirrored_and_exactly_linear_at_init(act, c):
    model = _chain(act).double()
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6, dtype=torch.float64))
    lins = _linears(model)
    assert [report.param(f"{i}.weight").scheme for i in (0, 2, 4, 6, 8)] == ["looks_linear"] * 5
    w = [m.weight.detach() for m in lins]
    assert torch.equal(w[0][8:], -w[0][:8])  # first layer: [B; -B]
    for m in w[1:-1]:  # middle: [[A, -A], [-A, A]]
        a = m[:8, :8]
        assert torch.equal(m, torch.cat([torch.cat([a, -a], 1), torch.cat([-a, a], 1)]))
        # A orthogonal with gain 1/c: each pre-activation an isometric image of the previous
        assert torch.allclose(a @ a.T, torch.eye(8, dtype=a.dtype) / c**2, atol=1e-12)
    assert torch.equal(w[-1][:, 8:], -w[-1][:, :8])  # head: [H, -H]
    # the network IS the linear map H A3 A2 A1 B times c^4 (biases are 0)
    lin = w[0][:8]
    for m in w[1:-1]:
        lin = m[:8, :8] @ lin
    lin = w[-1][:, :8] @ lin * c**4
    x = torch.randn(32, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x), x @ lin.T, rtol=0, atol=1e-12)


def test_relu_pairs_keep_kaimings_entry_std_and_preserve_norms(h):
    model = _chain(nn.ReLU, width=256, depth=20, n_in=256, n_out=4)
    report = apply(model, seed=0, example_inputs=torch.randn(2, 256))
    for m in _linears(model)[:-1]:  # every hidden weight: std sqrt(2 / 256), as Kaiming's
        h.assert_std(m.weight, math.sqrt(2.0 / 256))
    rec = report.param("2.weight")
    assert rec.fan_in == 128 and rec.gain == pytest.approx(1.0, rel=1e-12)
    assert "looks-linear" in rec.note and "relu" in rec.note
    # exact isometry through 20 layers: every pre-activation has the norm of the first one
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(2))
    norms = []
    with torch.no_grad():
        hid = x
        for layer in model:
            hid = layer(hid)
            if isinstance(layer, nn.Linear) and layer.out_features == 256:
                norms.append(hid.norm(dim=1))
    for n in norms[1:]:
        assert torch.allclose(n, norms[0], rtol=1e-4)
    # the head reads the pairs with gain 1 / sqrt(2): logits of the usual rule's variance
    assert report.param("40.weight").gain == pytest.approx(1 / gain("relu"), rel=1e-12)


class _Branch(nn.Module):
    """Linear -> relu whose output feeds two layers: not a plain chain."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        z = torch.relu(self.a(x))
        return self.head(self.b(z) + self.c(z))


class _Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.mid, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        z = F.relu(self.a(x))
        z = F.relu(self.mid(z))
        return self.head(F.relu(self.mid(z)))  # mid called twice


@pytest.mark.parametrize("model, layer", [
    (_chain(nn.Tanh), "2"),
    (_chain(nn.SELU), "2"),
    (_chain(nn.ReLU, width=15), "2"),  # odd width
    (_chain(nn.ReLU, bias=False), "2"),  # no bias: a dead unit could not be re-centred
    (nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                   nn.Linear(8, 2)), "3"),  # normalized network
    (nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2)), "3"),
    (nn.Sequential(nn.Linear(6, 8), nn.PReLU(), nn.Linear(8, 2)), "2"),
    (_Branch(), "b"),
    (_Reused(), "mid"),
])
def test_no_mirror_outside_plain_chains(model, layer):
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6))
    assert all(p.scheme != "looks_linear" for p in report.params), layer
    assert report.param(f"{layer}.weight").scheme in ("orthogonal", "kaiming_normal",
                                                      "lecun_normal")


def test_tied_weights_are_not_mirrored():
    model = _chain(nn.ReLU, width=8, depth=2, n_in=8, n_out=8)
    model[4].weight = model[2].weight  # (8, 8) tied
    report = apply(model, seed=0, example_inputs=torch.randn(2, 8))
    assert report.param("0.weight").scheme != "looks_linear"
    assert model[4].weight is model[2].weight


def test_same_seed_same_bits_and_generator_only():
    a, b = _chain(nn.GELU), _chain(nn.GELU)
    x = torch.zeros(2, 6)
    apply(a, generator=torch.Generator().manual_seed(3), example_inputs=x)
    state = torch.get_rng_state()
    apply(b, generator=torch.Generator().manual_seed(3), example_inputs=x)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(state, torch.get_rng_state())  # drawn from the generator only
    c = _chain(nn.GELU)
    apply(c, generator=torch.Generator().manual_seed(4), example_inputs=x)
    assert not torch.equal(a[2].weight, c[2].weight)


class _Bag(nn.Module):
    """EmbeddingBag -> ReLU (+ 3) -> mirrored ReLU chain: the first Linear reads inputs with a
    large common positive part, so some of its units are inactive on every sample (and their
    mirrors active on every sample)."""

    def __init__(self) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(50, 16, mode="sum")
        self.body = _chain(nn.ReLU, width=16, depth=3, n_in=16)

    def forward(self, idx, offsets):
        return self.body(self.features(idx, offsets))

    def features(self, idx, offsets):
        return torch.relu(self.bag(idx, offsets)) + 3.0


def test_init_keeps_pairs_recentres_dead_ones_together_and_stays_affine():
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 50, (256 * 4,), generator=g)
    offsets = torch.arange(0, 256 * 4, 4)
    y = torch.randint(0, 3, (256,), generator=g)
    model = _Bag()
    apply(model, seed=0, example_inputs=(idx, offsets))
    with torch.no_grad():  # the structural draw alone leaves pairs with a dead unit
        assert not bool((model.body[0](model.features(idx, offsets)) > 0).any(0).all())
    rep = di.init(model, ((idx, offsets), y), generator=0)
    lins = _linears(model)
    for m in lins[:-1]:  # every hidden layer still in exact pairs, bias included
        assert torch.equal(m.weight[8:], -m.weight[:8]) and torch.equal(m.bias[8:], -m.bias[:8])
    first = next(lc for lc in rep.layers if lc.module == "body.0")
    assert "looks-linear pairs" in first.note and first.active_fraction == 1.0
    assert bool(lins[0].bias.ne(0).any())  # dead pairs were re-centred (bias -mean, +mean)
    with torch.no_grad():
        h = model.features(idx, offsets)
        assert bool((lins[0](h) > 0).any(0).all())  # no unit inactive on every sample
        # the body is affine at init: f(0.3 a + 0.7 b) = 0.3 f(a) + 0.7 f(b)
        a, b = h[:128], h[128:]
        mid = model.body(0.3 * a + 0.7 * b)
        assert torch.allclose(mid, 0.3 * model.body(a) + 0.7 * model.body(b), atol=1e-5)
    assert abs(rep.loss.after - rep.loss.target) < 0.05 * rep.loss.target


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(F.gelu(self.b(F.relu(self.a(x)))))


@pytest.mark.parametrize("inputs", [torch.randn(2, 6), None])  # traced, and torch.fx
def test_functional_activations_traced_and_fx(inputs):
    model = _Functional()
    report = apply(model, seed=0, example_inputs=inputs)
    assert [report.param(f"{n}.weight").scheme for n in ("a", "b", "head")] == ["looks_linear"] * 3
    assert "the relu pairs before it" in report.param("b.weight").note
    assert "the gelu pairs before it" in report.param("head.weight").note
    w = model.b.weight.detach()
    assert torch.equal(w[4:], -w[:4]) and torch.equal(w[:, 4:], -w[:, :4])


class _Features(nn.Module):
    """Returns the hidden features beside the logits: they must not be mirror copies."""

    def __init__(self, pre: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.pre = nn.Linear(6, 8), nn.Linear(8, 2), pre

    def forward(self, x):
        h = self.a(x)
        z = torch.relu(h)
        return self.b(z), (h if self.pre else z)


class _Masked(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight * (self.weight.abs() > 0.01), self.bias)


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("inputs", [torch.randn(2, 6), None])
def test_returned_features_are_not_mirrored(inputs, pre):
    report = apply(_Features(pre), seed=0, example_inputs=inputs)
    assert all(p.scheme != "looks_linear" for p in report.params)


def test_linear_subclass_with_its_own_forward_is_not_mirrored():
    model = nn.Sequential(_Masked(6, 8), nn.ReLU(), nn.Linear(8, 2))
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6))
    assert all(p.scheme != "looks_linear" for p in report.params)


def test_weight_norm_layer_is_not_mirrored():
    from torch.nn.utils import parametrizations

    model = _chain(nn.ReLU, width=8, depth=2)
    parametrizations.weight_norm(model[2])
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6))
    assert report.param("0.weight").scheme != "looks_linear"  # its consumer is parametrized
    assert report.param("4.weight").scheme != "looks_linear"  # its producer is
    assert all(p.scheme != "looks_linear" for p in report.params)


def test_pairs_need_both_halves_drawn_by_the_auto_rule(monkeypatch):
    from initwise.policy import critical

    x = torch.randn(2, 6)
    # an override on either half: the other half is drawn as usual, not half a pair
    for key in ("0", "2"):
        model = _chain(nn.ReLU, width=8, depth=1)
        report = apply(model, seed=0, example_inputs=x, overrides={key: "kaiming_normal"})
        assert all(p.scheme != "looks_linear" for p in report.params), key
    # a frozen producer (a kept backbone) and a new head: the head is not anti-mirrored
    model = _chain(nn.ReLU, width=8, depth=1)
    model[0].weight.requires_grad_(False)
    report = apply(model, seed=0, example_inputs=x)
    assert report.param("2.weight").scheme == "lecun_normal"
    # the critical policy draws its own hidden layers: no pairs anywhere, head included
    model = _chain(nn.ReLU, width=8, depth=2)
    report = apply(model, critical(), seed=0, example_inputs=x)
    assert all(p.scheme != "looks_linear" for p in report.params)


def test_orthogonal_cost_bound_applies_to_the_drawn_block(monkeypatch):
    import initwise.policy._rules as rules

    monkeypatch.setattr(rules, "ORTHOGONAL_MAX_WORK", 8 * 8 * 8)  # the 8 x 8 block, not 16^3
    model = _chain(nn.ReLU, width=16, depth=3)
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6))
    a = model[2].weight.detach()[:8, :8].double()
    assert torch.allclose(a @ a.T, torch.eye(8, dtype=a.dtype), atol=1e-6)
    assert "A orthogonal" in report.param("2.weight").note
    monkeypatch.setattr(rules, "ORTHOGONAL_MAX_WORK", 8 * 8 * 8 - 1)
    report = apply(model, seed=0, example_inputs=torch.randn(2, 6))
    assert "A Gaussian" in report.param("2.weight").note


def test_walk_redraws_a_flat_dead_pair_as_a_pair():
    model = _chain(nn.ReLU, width=16, depth=3)
    apply(model, seed=0, example_inputs=torch.randn(2, 6))
    with torch.no_grad():  # units 3 and 11 of the middle layer: constant 0, i.e. dead and flat
        model[2].weight[[3, 11]] = 0.0
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(128, 6, generator=g), torch.randint(0, 3, (128,), generator=g)
    di.init(model, (x, y), generator=0, policy=lambda name, module, ctx: "skip")
    w, b = model[2].weight, model[2].bias
    assert torch.equal(w[8:], -w[:8]) and torch.equal(b[8:], -b[:8])
    assert bool(w[3].any())  # re-drawn, and its mirror with it
