"""The rules of the built-in policies, checked against closed forms on real modules."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initwise.policy import apply
from initwise.schemes.gains import gain


def _mlp(act: nn.Module, width: int = 512) -> nn.Sequential:
    return nn.Sequential(nn.Linear(256, width), act, nn.Linear(width, width), act,
                         nn.Linear(width, 10))


@pytest.mark.parametrize("act, g", [
    (nn.ReLU(), math.sqrt(2.0)),
    (nn.LeakyReLU(0.2), math.sqrt(2.0 / (1 + 0.2**2))),
    (nn.Tanh(), None),
    (nn.GELU(), None),
    (nn.SELU(), 1.0),
])
def test_dense_std_is_gain_over_sqrt_fan_in(h, act, g):
    model = _mlp(act, width=511)  # odd width: no looks-linear pairs (tests/policy/test_mirror.py)
    report = apply(model, seed=0, example_inputs=torch.randn(2, 256))
    expected = gain(act) if g is None else g
    for name, fan_in in (("0", 256), ("2", 511)):
        rec = report.param(f"{name}.weight")
        assert rec.gain == pytest.approx(expected, rel=1e-9) and rec.fan_in == fan_in
        layer = getattr(model, name)
        h.assert_std(layer.weight, expected / math.sqrt(fan_in))
        assert rec.std == pytest.approx(float(layer.weight.detach().std(unbiased=False)))
        assert not layer.bias.any()
    out = report.param("4.weight")  # the output layer: gain 1 (documented choice)
    assert out.gain == 1.0 and out.scheme == "lecun_normal" and "output layer" in out.note
    h.assert_std(model[4].weight, 1 / math.sqrt(511))
    # hidden Linear layers get an orthogonal draw with the same per-output variance
    assert report.param("0.weight").scheme == report.param("2.weight").scheme == "orthogonal"


@pytest.mark.parametrize("shape", [(48, 48), (32, 80), (80, 32)])
def test_hidden_linear_is_scaled_orthogonal(shape):
    out_f, in_f = shape
    model = nn.Sequential(nn.Linear(7, in_f), nn.Tanh(), nn.Linear(in_f, out_f), nn.Tanh(),
                          nn.Linear(out_f, 3))
    report = apply(model, seed=0, example_inputs=torch.randn(2, 7))
    rec, w = report.param("2.weight"), model[2].weight.detach().double()
    g = gain("tanh")
    assert rec.scheme == "orthogonal" and rec.gain == pytest.approx(g, rel=1e-9)
    # rows of squared norm g^2 on average (Kaiming's output variance), exactly orthogonal
    assert float(w.pow(2).sum(1).mean()) == pytest.approx(g * g, rel=1e-6)
    if out_f <= in_f:
        assert torch.allclose(w @ w.T, g * g * torch.eye(out_f, dtype=w.dtype), atol=1e-5)
    else:
        eye = torch.eye(in_f, dtype=w.dtype)
        assert torch.allclose(w.T @ w, g * g * out_f / in_f * eye, atol=1e-5)
    assert report.param("4.weight").scheme == "lecun_normal"  # the output layer stays Gaussian


def test_orthogonal_work_bound_is_inclusive(monkeypatch):
    import initwise.policy._rules as rules

    def scheme(limit):
        monkeypatch.setattr(rules, "ORTHOGONAL_MAX_WORK", limit)
        model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(),
                              nn.Linear(8, 2))
        return apply(model, seed=0, example_inputs=torch.randn(2, 5)).param("2.weight").scheme

    assert scheme(8 * 16 * 8) == "orthogonal"
    assert scheme(8 * 16 * 8 - 1) == "kaiming_normal"


def test_no_orthogonal_draw_in_a_normalized_net_or_for_attention_out_proj():
    normed = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 16),
                           nn.ReLU(), nn.Linear(16, 2))
    report = apply(normed, seed=0, example_inputs=torch.randn(2, 6))
    assert report.param("3.weight").scheme == "kaiming_normal"

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.attn = nn.Linear(6, 16), nn.MultiheadAttention(16, 2, batch_first=True)
            self.mid, self.head = nn.Linear(16, 16), nn.Linear(16, 2)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            h = self.attn(h, h, h, need_weights=False)[0]
            return self.head(torch.relu(self.mid(h)).mean(1))

    report = apply(Attn(), seed=0, example_inputs=torch.randn(2, 3, 6))
    assert report.param("attn.out_proj.weight").scheme == "lecun_normal"
    assert report.param("mid.weight").scheme == "orthogonal"


def test_orthogonal_through_weight_norm_and_other_shapes_fall_back_to_gaussian():
    from torch.nn.utils import parametrizations

    from initwise.policy._rules import _scaled_orthogonal, normal

    model = nn.Sequential(nn.Linear(5, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                          nn.Linear(24, 2))
    parametrizations.weight_norm(model[2])
    apply(model, seed=0, example_inputs=torch.randn(2, 5))
    w = model[2].weight.detach().double()  # the weight the layer computes: g * orthogonal
    assert torch.allclose(w @ w.T, gain("relu") ** 2 * torch.eye(24, dtype=w.dtype), atol=1e-5)
    fill = _scaled_orthogonal(2.0, (4, 3), normal(0.5))
    flat = torch.empty(12)
    fill(flat, torch.Generator().manual_seed(0))  # not the (out, in) shape: Gaussian, no error
    assert torch.equal(flat, torch.empty(12).normal_(0, 0.5,
                                                     generator=torch.Generator().manual_seed(0)))


def test_orthogonal_draw_has_a_cost_bound():
    from initwise.policy._rules import ORTHOGONAL_MAX_FAN_IN

    model = nn.Sequential(nn.Linear(ORTHOGONAL_MAX_FAN_IN + 1, 4), nn.Tanh(), nn.Linear(4, 2))
    report = apply(model, seed=0, example_inputs=torch.randn(2, ORTHOGONAL_MAX_FAN_IN + 1))
    assert report.param("0.weight").scheme == "kaiming_normal"


def test_functional_activation_found_by_trace_and_fx(h):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(300, 400), nn.Linear(400, 3)

        def forward(self, x):
            return self.b(F.leaky_relu(self.a(x), 0.1))

    g = math.sqrt(2 / (1 + 0.01))
    for kwargs in ({"example_inputs": torch.randn(2, 300)}, {}):  # traced, then fx
        model = Net()
        report = apply(model, seed=0, **kwargs)
        assert report.param("a.weight").gain == pytest.approx(g, rel=1e-9)
        h.assert_std(model.a.weight, g / math.sqrt(300))


def test_conv_and_conv_transpose_fans(h):
    model = nn.Sequential(nn.Conv2d(8, 64, 3, padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(64, 32, 4, stride=2), nn.Tanh(),
                          nn.Conv2d(32, 4, 1, groups=4))
    report = apply(model, seed=0, example_inputs=torch.randn(1, 8, 5, 5))
    h.assert_std(model[0].weight, math.sqrt(2) / math.sqrt(8 * 9))
    # transposed conv, kernel 4 stride 2: each output sums 64 * 16 / 4 = 256 terms
    assert (report.param("2.weight").fan_in, report.param("2.weight").fan_out) == (256, 512)
    h.assert_std(model[2].weight, gain("tanh") / math.sqrt(256))
    assert report.param("4.weight").fan_in == 8  # grouped: 32 / 4 input channels per group


def test_embedding_rules(h):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(1000, 64, padding_idx=0)
            self.norm = nn.LayerNorm(64)
            self.plain = nn.Embedding(1000, 64)
            self.bag = nn.EmbeddingBag(20000, 64, mode="sum")
            self.out = nn.Linear(64, 2)

        def forward(self, ids, bag_ids, offsets):
            h = self.norm(self.tok(ids)).mean(1) + self.plain(ids).mean(1)
            return self.out(h + torch.relu(self.bag(bag_ids, offsets)))

    model = Net()
    inputs = (torch.randint(0, 1000, (2, 3)), torch.randint(0, 20000, (8,)), torch.tensor([0, 4]))
    report = apply(model, seed=0, example_inputs=inputs)
    assert "feeds a layernorm" in report.param("tok.weight").note
    h.assert_std(model.tok.weight[1:], 1.0)
    assert torch.equal(model.tok.weight[0], torch.zeros(64))  # padding row
    h.assert_std(model.plain.weight, 1.0)  # one row per lookup, nothing follows
    bag = report.param("bag.weight")
    assert bag.fan_in == 20000 and bag.gain == pytest.approx(math.sqrt(2))
    h.assert_std(model.bag.weight, math.sqrt(2 / 20000))
    assert torch.equal(model.norm.weight, torch.ones(64))


def test_mha_blocks_and_separate_kv_dims(h):
    mha = nn.MultiheadAttention(64, 4, kdim=32, vdim=16, bias=True, add_bias_kv=True)
    report = apply(mha, seed=0)
    h.assert_std(mha.q_proj_weight, 1 / math.sqrt(64))
    h.assert_std(mha.k_proj_weight, 1 / math.sqrt(32))
    h.assert_std(mha.v_proj_weight, 1 / math.sqrt(16))
    assert torch.equal(mha.in_proj_bias, torch.zeros(192))
    assert report.param("bias_k").fan_in == 1
    packed = nn.MultiheadAttention(128, 8)
    report = apply(packed, seed=0)
    for rows in (slice(0, 128), slice(128, 256), slice(256, 384)):
        h.assert_std(packed.in_proj_weight[rows], 1 / math.sqrt(128))
    assert "q, k, v" in report.param("in_proj_weight").note
    assert report.param("out_proj.weight").scheme == "lecun_normal"


def test_lstm_gates(h):
    lstm = nn.LSTM(48, 32, num_layers=2, bidirectional=True)
    apply(lstm, seed=0)
    for suffix in ("_l0", "_l1_reverse"):
        hh = getattr(lstm, f"weight_hh{suffix}")
        for k in range(4):
            block = hh[32 * k: 32 * (k + 1)]
            assert torch.allclose(block @ block.T, torch.eye(32), atol=1e-5)
        bias_ih = getattr(lstm, f"bias_ih{suffix}")
        assert torch.equal(bias_ih[32:64], torch.ones(32))  # forget gate
        assert torch.equal(torch.cat([bias_ih[:32], bias_ih[64:]]), torch.zeros(96))
        assert torch.equal(getattr(lstm, f"bias_hh{suffix}"), torch.zeros(128))
    h.assert_std(lstm.weight_ih_l0, 1 / math.sqrt(48))
    h.assert_std(lstm.weight_ih_l1, 1 / math.sqrt(64))  # input = 2 directions x 32
    gru = nn.GRU(8, 8)
    apply(gru, seed=0)
    assert torch.equal(gru.bias_ih_l0, torch.zeros(24))


def test_norm_layers_reset_to_identity():
    rms = [nn.RMSNorm(6)] if hasattr(nn, "RMSNorm") else []  # torch >= 2.4
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.GroupNorm(2, 6),
                          nn.LayerNorm(6), *rms)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    model[1].running_mean.fill_(2.0)
    model[1].num_batches_tracked.fill_(7)
    apply(model, seed=0)
    for m in model[1:]:
        assert torch.equal(m.weight, torch.ones(6))
        if getattr(m, "bias", None) is not None:
            assert torch.equal(m.bias, torch.zeros(6))
    assert torch.equal(model[1].running_mean, torch.zeros(6))
    assert int(model[1].num_batches_tracked) == 0


def test_batchnorm_without_affine_has_its_statistics_reset_too():
    # regression: affine norms had running stats reset, BatchNorm(affine=False) (no parameters,
    # so never visited) kept stale ones; a frozen affine norm and a "skip" override keep theirs
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, affine=False),
                          nn.BatchNorm1d(6, affine=False), nn.BatchNorm1d(6))
    model[3].requires_grad_(False)
    for m in model[1:]:
        m.running_mean.fill_(2.0)
    apply(model, seed=0, overrides={"2": "skip"})
    assert torch.equal(model[1].running_mean, torch.zeros(6))
    assert torch.equal(model[2].running_mean, torch.full((6,), 2.0))
    assert torch.equal(model[3].running_mean, torch.full((6,), 2.0))


def test_prelu_gets_its_init_slope():
    model = nn.Sequential(nn.Linear(3, 3), nn.PReLU(init=0.1))
    apply(model, seed=0)
    assert torch.allclose(model[1].weight, torch.tensor([0.1]))


def test_critical_policy(h):
    from initwise.theory.criticality import edge_of_chaos

    relu = _mlp(nn.ReLU())
    report = apply(relu, "critical", seed=0)
    assert report.param("0.weight").gain == pytest.approx(math.sqrt(2), rel=1e-9)
    assert torch.equal(relu[0].bias, torch.zeros(512))  # sigma_b = 0 for the ReLU family
    tanh = _mlp(nn.Tanh())
    report = apply(tanh, "critical", seed=0)
    sw = edge_of_chaos("tanh", math.sqrt(0.05))
    assert report.param("2.weight").gain == pytest.approx(sw, rel=1e-9)
    h.assert_std(tanh[2].weight, sw / math.sqrt(512))
    h.assert_std(tanh[2].bias, math.sqrt(0.05), sigmas=6)
    assert report.param("4.weight").scheme == "lecun_normal"  # no activation: LeCun, bias 0


def test_critical_without_a_stable_point_falls_back_with_a_warning(monkeypatch):
    import initwise.theory.criticality as crit
    from initwise.policy import critical

    def none(activation, sigma_b=0.0):
        raise ValueError("no stable critical point")

    monkeypatch.setattr(crit, "edge_of_chaos", none)
    model = _mlp(nn.SiLU(), width=15)  # odd: no looks-linear pairs
    report = apply(model, critical(), seed=0)
    assert report.param("0.weight").scheme == "orthogonal"  # the auto rule's hidden Linear
    assert report.param("0.weight").gain == pytest.approx(gain("silu"), rel=1e-9)
    assert any("'silu' has no stable edge of chaos" in w for w in report.warnings)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="no edge of chaos for 'silu' at sigma_b=0.3"):
        apply(model, critical(sigma_b=0.3), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="sigma_b must be"):
        critical(sigma_b=-1.0)


def test_named_policies_match_torch_bit_for_bit(torch_init):
    def build():
        return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))

    ours, ref = build(), build()
    apply(ours, "xavier", generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    for m in (ref[0], ref[2]):
        torch_init.xavier_uniform_(m.weight, generator=g)
    assert torch.equal(ours[0].weight, ref[0].weight) and torch.equal(ours[2].weight,
                                                                      ref[2].weight)
    assert torch.equal(ours[0].bias, torch.zeros(30))
    apply(ours, "kaiming", generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    torch_init.kaiming_normal_(ref[0].weight, nonlinearity="relu", generator=g)
    torch_init.kaiming_normal_(ref[2].weight, nonlinearity="linear", generator=g)
    assert torch.allclose(ours[0].weight, ref[0].weight, rtol=1e-6, atol=0)
    assert torch.allclose(ours[2].weight, ref[2].weight, rtol=1e-6, atol=0)


def test_named_policies_on_every_layer_type(h):
    model, inputs = h.Acceptance(), h.inputs()
    for name in ("xavier", "kaiming", "lecun", "orthogonal"):
        report = apply(model, name, seed=0, example_inputs=inputs, on_unknown="skip")
        assert report.param("lstm.weight_hh_l0").note == "per block input, forget, cell, output"
        assert report.param("bag.weight").fan_in == 500  # one-hot view of the table
    w = model.lstm.weight_hh_l0[:16]  # after "orthogonal": each gate block orthogonal
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    lecun = nn.Sequential(nn.EmbeddingBag(4000, 32), nn.Linear(32, 2))
    apply(lecun, "lecun", seed=0)
    h.assert_std(lecun[0].weight, 1 / math.sqrt(4000))


def test_norm_free_residual_branches_are_scaled(h):
    class ResMLP(nn.Module):
        def __init__(self, width: int = 256, blocks: int = 4, norm: bool = False) -> None:
            super().__init__()
            self.a = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
            self.b = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
            self.norm = nn.LayerNorm(width) if norm else nn.Identity()
            self.head = nn.Linear(width, 3)

        def forward(self, x):
            for a, b in zip(self.a, self.b):
                x = x + b(torch.relu(a(x)))
            return self.head(self.norm(x))

    model = ResMLP()
    x = torch.randn(512, 256)
    report = apply(model, seed=0, example_inputs=x)
    # b reads a's mirrored ReLU pairs (looks-linear): its block A is drawn on fan-in 128 with
    # gain 0.5 / sqrt(2) (1 / sqrt(4 branches) over the ReLU's gain), the std of Kaiming's 0.5
    rec = report.param("b.0.weight")
    assert rec.scheme == "looks_linear" and rec.fan_in == 128
    assert rec.gain == pytest.approx(0.5 / math.sqrt(2), rel=1e-12)
    h.assert_std(model.b[3].weight, 0.5 / 16)
    h.assert_std(model.a[0].weight, math.sqrt(2) / 16)  # first layer of a branch: unscaled
    with torch.no_grad():  # each block multiplies the variance by 1 + 1/N: (5/4)^4, not 2^4
        h_ = x
        for a, b in zip(model.a, model.b):
            h_ = h_ + b(torch.relu(a(h_)))
    assert float(h_.var()) == pytest.approx(1.25**4, rel=0.1)
    normed = ResMLP(norm=True)
    assert apply(normed, seed=0, example_inputs=x).param("b.0.weight").gain == 1.0


def test_norm_free_attention_branch_scales_its_output_projection(h):
    # regression: the 1/sqrt(N) of norm-free residual branches skipped MultiheadAttention,
    # whose last matrix is its out_proj child, not the module the graph marks residual
    class AttnRes(nn.Module):
        def __init__(self, width: int = 64) -> None:
            super().__init__()
            self.attn = nn.ModuleList(nn.MultiheadAttention(width, 4, batch_first=True)
                                      for _ in range(2))
            self.ff = nn.ModuleList(nn.Linear(width, width) for _ in range(2))
            self.head = nn.Linear(width, 3)

        def forward(self, x):
            for a, f in zip(self.attn, self.ff):
                x = x + a(x, x, x)[0]
                x = x + f(x)
            return self.head(x)

    model = AttnRes()
    report = apply(model, seed=0, example_inputs=torch.randn(2, 5, 64))
    for name in ("attn.0.out_proj.weight", "attn.1.out_proj.weight", "ff.1.weight"):
        assert report.param(name).gain == pytest.approx(0.5), name  # 1 / sqrt(4 branches)
    h.assert_std(model.attn[0].out_proj.weight, 0.5 / 8)
    assert report.param("attn.0.in_proj_weight").gain == 1.0  # q, k, v are not the branch end


def test_custom_module_bias_is_zeroed_and_the_rest_is_unknown():
    class BagModel(nn.Module):  # the FINDINGS idiom: EmbeddingBag + a bias of the model's own
        def __init__(self) -> None:
            super().__init__()
            self.bag = nn.EmbeddingBag(1000, 8, mode="sum")
            self.bias = nn.Parameter(torch.full((8,), 0.3))
            self.temperature = nn.Parameter(torch.tensor(2.0))
            self.out = nn.Linear(8, 2)

        def forward(self, ids, offsets):
            return self.out(torch.relu(self.bag(ids, offsets) + self.bias)) / self.temperature

    model = BagModel()
    report = apply(model, seed=0, on_unknown="skip",
                   example_inputs=(torch.tensor([1, 2, 3]), torch.tensor([0, 1])))
    assert report.param("bias").scheme == "zeros" and not model.bias.any()
    assert report.param("temperature").scheme == "skipped:unknown"
    assert float(model.temperature.detach()) == 2.0


def test_output_layer_before_an_output_sigmoid_gets_gain_one(h):
    model = nn.Sequential(nn.Linear(300, 300), nn.Tanh(), nn.Linear(300, 400), nn.Sigmoid())
    report = apply(model, seed=0, example_inputs=torch.randn(2, 300))
    rec = report.param("2.weight")
    assert rec.gain == 1.0 and "before the output sigmoid" in rec.note
    h.assert_std(model[2].weight, 1 / math.sqrt(300))
    assert report.param("0.weight").gain == pytest.approx(gain("tanh"), rel=1e-9)


def test_sparse_linear_uses_its_own_fans(h):
    import scipy.sparse as sp

    from initwise.modelio import to_torch
    from initwise.nn import SparseLinear

    model = nn.Sequential(SparseLinear(2**14, 64), nn.ReLU(), nn.Linear(64, 5))
    x = to_torch(sp.random(8, 2**14, density=0.001, format="csr", dtype="float32",
                           random_state=0))
    report = apply(model, seed=0, example_inputs=x)
    rec = report.param("0.weight")
    assert (rec.fan_in, rec.fan_out, rec.scheme) == (2**14, 64, "kaiming_normal")
    h.assert_std(model[0].weight, math.sqrt(2) / 2**7)
    report = apply(model, "xavier", seed=0)
    assert report.param("0.weight").fan_in == 2**14
    h.assert_std(model[0].weight, math.sqrt(2 / (2**14 + 64)))


def test_two_prelus_with_different_slopes_give_different_gains():
    # regression: the gain cache was keyed by repr(module), equal for every nn.PReLU
    model = nn.Sequential(nn.Linear(8, 8), nn.PReLU(init=0.1), nn.Linear(8, 8),
                          nn.PReLU(init=0.5), nn.Linear(8, 2))
    report = apply(model, seed=0, example_inputs=torch.randn(4, 8))
    for name, a in (("0.weight", 0.1), ("2.weight", 0.5)):
        assert report.param(name).gain == pytest.approx(math.sqrt(2 / (1 + a * a)), rel=1e-6)
