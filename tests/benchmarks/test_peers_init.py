"""The peer initializers of benchmarks/peers/: each one's defining numbers on tiny models."""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from peers import fixup, gradinit, metainit, packages, tfixup, zeroinit  # noqa: E402
from peers._cost import PeerResult  # noqa: E402

torch.set_num_threads(1)


def _task(n: int = 256, d: int = 8, k: int = 3, bs: int = 32) -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = (x @ torch.randn(d, k, generator=g)).argmax(1)
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, n, bs)]


def _mlp(scale: float, act: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(8, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 32),
                      act(), nn.Linear(32, 3))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.mul_(scale)
    return m


# --- Fixup, SkipInit / ReZero -------------------------------------------------------------

def test_fixup_zeroes_branch_ends_and_head_and_scales_the_rest():
    net = fixup.ResidualNet(16, 64, 4, 3, kind="mlp")
    res = fixup.fixup_init(net, seed=1)
    assert res.notes["branch_factor"] == pytest.approx(4 ** -0.5)
    for b in net.blocks:
        assert torch.count_nonzero(b.layers[-1].weight) == 0
        assert b.scale.item() == 1.0 and all(p.item() == 0.0 for p in b.biases)
    assert torch.count_nonzero(net.head.weight) == 0 and torch.count_nonzero(net.head.bias) == 0
    first = torch.cat([b.layers[0].weight.flatten() for b in net.blocks])  # 16,384 draws
    assert first.std().item() == pytest.approx(math.sqrt(2 / 64) * 4 ** -0.5, rel=0.03)
    assert net.stem.weight.std().item() == pytest.approx(math.sqrt(2 / 16), rel=0.05)
    assert torch.count_nonzero(net(torch.randn(5, 16))) == 0


def test_fixup_conv_branch_std_uses_fan_in_and_m():
    net = fixup.ResidualNet(1, 8, 3, 4, kind="conv", act="tanh")
    fixup.fixup_init(net)
    first = torch.cat([b.layers[0].weight.flatten() for b in net.blocks])  # 1,728 draws
    expected = (5 / 3) / math.sqrt(8 * 9) * 3 ** -0.5  # tanh gain, fan_in 8*3*3, L=3, m=2
    assert first.std().item() == pytest.approx(expected, rel=0.08)
    assert all(torch.count_nonzero(b.layers[1].weight) == 0 for b in net.blocks)
    assert torch.count_nonzero(net(torch.randn(2, 1, 8, 8))) == 0  # zero head


@pytest.mark.parametrize("post_act", [True, False])
def test_skipinit_rezero_blocks_are_identity_at_init(post_act):
    net = fixup.ResidualNet(16, 32, 3, 3, kind="mlp", post_act=post_act)
    fixup.rezero(net, seed=0)
    h = torch.rand(6, 32)  # non-negative, as after the stem's ReLU
    for b in net.blocks:
        assert b.scale.item() == 0.0
        assert torch.equal(b(h), h)
    assert net.blocks[0].layers[-1].weight.std().item() == pytest.approx(
        math.sqrt(2 / 32), rel=0.1)


def test_fixup_names_the_missing_hooks():
    with pytest.raises(TypeError, match="blocks"):
        fixup.fixup_init(nn.Sequential(nn.Linear(3, 3)))


# --- T-Fixup -------------------------------------------------------------------------------

def test_tfixup_factors_are_the_papers():
    assert tfixup.encoder_factor(4) == pytest.approx(0.67 / math.sqrt(2))
    assert tfixup.decoder_factor(2) == pytest.approx(18 ** -0.25)


def test_tfixup_scales_v_w_ffn_and_embeddings_only():
    model = tfixup.TinyTransformer(11, 16, 4, 2, 3, layer_norm=False)
    ref = copy.deepcopy(model)
    res = tfixup.tfixup_init(model, seed=3)
    tfixup.xavier_phase(ref, torch.Generator().manual_seed(3))  # step 1 alone, same draws
    f = 0.67 * 4 ** -0.25
    assert res.notes["encoder_factor"] == pytest.approx(f)
    for a, r in zip(model.layers, ref.layers):
        wa, wr = a.self_attn.in_proj_weight, r.self_attn.in_proj_weight
        assert torch.equal(wa[:32], wr[:32])  # q, k untouched
        torch.testing.assert_close(wa[32:], wr[32:] * f)  # v
        for name in ("self_attn.out_proj.weight", "linear1.weight", "linear2.weight"):
            torch.testing.assert_close(a.get_parameter(name), r.get_parameter(name) * f)
    torch.testing.assert_close(model.tok.weight, ref.tok.weight * f)
    torch.testing.assert_close(model.head.weight, ref.head.weight)
    assert ref.tok.weight.std().item() == pytest.approx(16 ** -0.5, rel=0.1)
    bound = math.sqrt(6 / (16 + 64))  # Xavier of linear1 (64 x 16)
    assert ref.layers[0].linear1.weight.abs().max().item() <= bound


def test_tfixup_decoder_stack_uses_9n_and_cross_attention():
    class EncDec(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(7, 16)
            self.enc = nn.ModuleList([nn.TransformerEncoderLayer(16, 2, 32, 0.0)
                                      for _ in range(3)])
            self.dec = nn.ModuleList([nn.TransformerDecoderLayer(16, 2, 32, 0.0)
                                      for _ in range(2)])

    model = tfixup.strip_layer_norms(EncDec())
    ref = copy.deepcopy(model)
    res = tfixup.tfixup_init(model, seed=0)
    tfixup.xavier_phase(ref, torch.Generator().manual_seed(0))
    fd = 18 ** -0.25
    assert res.notes["embedding_factor"] == pytest.approx(fd)
    d = model.dec[1]
    torch.testing.assert_close(d.multihead_attn.in_proj_weight[32:],
                               ref.dec[1].multihead_attn.in_proj_weight[32:] * fd)
    torch.testing.assert_close(model.enc[0].linear2.weight,
                               ref.enc[0].linear2.weight * 0.67 * 3 ** -0.25)
    torch.testing.assert_close(model.emb.weight, ref.emb.weight * fd)


def test_tfixup_refuses_layernorm():
    with pytest.raises(ValueError, match="strip_layer_norms"):
        tfixup.tfixup_init(tfixup.TinyTransformer(5, 8, 1, 2, 2))


# --- ZerO ----------------------------------------------------------------------------------

def test_zero_is_deterministic_and_identity_on_square_relu_nets():
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(16, 16), nn.ReLU())]))
        zeroinit.zero_init(nets[-1])
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)
    x = torch.rand(5, 16)
    assert torch.equal(nets[0](x), x)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    zeroinit.zero_init(conv)
    img = torch.randn(2, 4, 6, 6)
    assert torch.equal(conv(img), img)


def test_zero_expanding_layer_is_a_scaled_hadamard_block():
    w = zeroinit.zero_matrix(12, 5)  # m = 4, H of size 16
    assert set(w.abs().flatten().tolist()) == {0.25}
    torch.testing.assert_close((w * w).sum(0), torch.full((5,), 12 / 16))  # 12 of 16 rows
    full = zeroinit.zero_matrix(16, 5)  # every row of H kept: orthonormal columns
    torch.testing.assert_close(full.T @ full, torch.eye(5))
    assert torch.equal(zeroinit.zero_matrix(3, 5), torch.eye(3, 5))
    h = zeroinit.hadamard(8)
    assert torch.equal(h @ h.T, 8 * torch.eye(8, dtype=h.dtype))


def test_zero_matches_the_zero_init_package():
    pytest.importorskip("zero_init")
    mine = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 3), nn.Flatten(),
                         nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    theirs = copy.deepcopy(mine)
    zeroinit.zero_init(mine)
    packages.zero_package_init(theirs)
    for a, b in zip(mine.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b)


def test_zero_residual_net_blocks_are_identity():
    net = fixup.ResidualNet(16, 16, 2, 3, kind="mlp")
    res = zeroinit.zero_init(net)
    assert res.notes["residual"]
    h = torch.rand(4, 16)
    assert torch.equal(net.blocks[0](h), h)
    assert torch.equal(net.blocks[0].layers[0].weight, torch.eye(16))


# --- GradInit ------------------------------------------------------------------------------

@pytest.mark.parametrize("alg,eta", [("sgd", 0.1), ("adam", 1e-2)])
def test_gradinit_lowers_the_lookahead_loss_and_keeps_scales_above_min(alg, eta):
    batches = _task()
    model = _mlp(4.0)
    before = gradinit.lookahead_loss(model, batches[0], batches[1], loss_fn=F.cross_entropy,
                                     alg=alg, eta=eta)
    res = gradinit.gradinit(model, batches, loss_fn=F.cross_entropy, budget=0.1, alg=alg,
                            lr=0.05, eta=eta)
    after = gradinit.lookahead_loss(model, batches[0], batches[1], loss_fn=F.cross_entropy,
                                    alg=alg, eta=eta)
    assert before > 5.0 and after < 0.3 * before
    assert min(res.notes["scales"].values()) >= torch.tensor(0.01).item()  # float32 clamp
    assert res.notes["iterations"] == 39
    n, c = res.notes["iterations"], res.notes["constraint_steps"]
    assert (res.forward_passes, res.backward_passes) == (2 * n - c, 2 * n)


@pytest.mark.parametrize("alg", ["sgd", "adam"])
def test_lookahead_loss_matches_a_plain_optimizer_step(alg):
    batches = _task()
    model = _mlp(2.0)
    fast = gradinit.lookahead_loss(model, batches[0], batches[1], loss_fn=F.cross_entropy,
                                   alg=alg, eta=0.1)
    twin = copy.deepcopy(model)
    F.cross_entropy(twin(batches[0][0]), batches[0][1]).backward()
    gnorm = torch.sqrt(sum((p.grad ** 2).sum() for p in twin.parameters()))
    with torch.no_grad():
        for p in twin.parameters():
            p -= 0.1 * (p.grad.sign() if alg == "adam" else p.grad / gnorm)
        slow = F.cross_entropy(twin(batches[1][0]), batches[1][1]).item()
    assert fast == pytest.approx(slow, rel=1e-5)


def test_gradinit_learns_one_scale_per_tensor():
    model = _mlp(4.0)
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = gradinit.gradinit(model, _task(), loss_fn=F.cross_entropy, iters=5, lr=0.05)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), w0[n] * res.notes["scales"][n])


def test_gradinit_rejects_unknown_alg():
    with pytest.raises(ValueError, match="alg"):
        gradinit.gradinit(_mlp(1.0), _task(), loss_fn=F.cross_entropy, alg="rmsprop")


def test_gradinit_package_runs_its_readme_loop_and_restores_parameters():
    pytest.importorskip("gradinit")
    batches = _task()
    model = _mlp(4.0)
    names = [n for n, _ in model.named_parameters()]
    w0 = model[0].weight.detach().clone()
    res = packages.gradinit_package(model, batches, loss_fn=F.cross_entropy, steps=20)
    assert [n for n, _ in model.named_parameters()] == names
    ratio = model[0].weight.detach() / w0  # one scale for the whole tensor
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0, 0].item()))
    assert ratio[0, 0].item() != 1.0 and ratio[0, 0].item() >= 0.01
    assert (res.forward_passes, res.backward_passes) == (20, 40)


# --- MetaInit ------------------------------------------------------------------------------

def test_gradient_quotient_matches_an_explicit_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2))
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 1, 0, 1, 0])
    params = list(model.parameters())
    gq = metainit.gradient_quotient(F.cross_entropy(model(x), y), params).item()
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().flatten() for p in params]).double()

    def loss_of(v):
        chunks = torch.split(v, [math.prod(s) for s in shapes])
        named = {n: c.view(s) for (n, _), c, s in zip(model.named_parameters(), chunks, shapes)}
        return F.cross_entropy(torch.func.functional_call(model.double(), named, (x.double(),)),
                               y)

    g = torch.autograd.functional.jacobian(loss_of, flat)
    hess = torch.autograd.functional.hessian(loss_of, flat)
    slow = (((g - hess @ g) / (g + 1e-5 * torch.where(g >= 0, 1.0, -1.0)) - 1).abs().mean())
    assert gq == pytest.approx(slow.item(), rel=1e-4)


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_metainit_lowers_the_quotient_of_a_badly_scaled_mlp(act):
    batches = _task()
    model = _mlp(4.0, act)
    bias0 = model[0].bias.detach().clone()
    w0 = model[2].weight.detach().clone()
    mean_gq = lambda: sum(metainit.quotient_on(model, b, loss_fn=F.cross_entropy)  # noqa: E731
                          for b in batches[:4]) / 4
    before = mean_gq()
    res = metainit.metainit(model, batches, loss_fn=F.cross_entropy, budget=0.2, lr=0.01)
    after = mean_gq()
    assert after < 0.8 * before
    assert torch.equal(model[0].bias, bias0)  # biases are not tuned
    cos = F.cosine_similarity(model[2].weight.flatten(), w0.flatten(), dim=0)
    assert cos.item() == pytest.approx(1.0, abs=1e-6)  # direction fixed
    assert res.forward_passes == 100 and res.backward_passes == 300


# --- lsuv, dks -----------------------------------------------------------------------------

def test_lsuv_wrapper_reaches_unit_variance_and_counts_forwards():
    pytest.importorskip("lsuv")
    batches = _task()
    model = _mlp(1.0)
    state = torch.get_rng_state()
    res = packages.lsuv_init(model, batches, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():
        std = model[0](batches[0][0]).std().item()
    assert abs(std - 1.0) <= 0.1 and res.forward_passes >= 4


def _dks_q_per_layer(call_on_transpose: bool) -> list[float]:
    depth, widths = 16, [17] + [96 if i % 2 == 0 else 40 for i in range(16)]
    act = packages.dks_activation("tanh", depth)
    layers = [nn.Linear(widths[i], widths[i + 1]) for i in range(depth)]
    net = nn.Sequential(*layers)
    if call_on_transpose:
        packages.dks_init(net, seed=0)
    else:  # as the package's docs say: the sampler on each weight
        from dks.pytorch.parameter_sampling_functions import scaled_uniform_orthogonal_

        torch.manual_seed(0)
        for lin in layers:
            scaled_uniform_orthogonal_(lin.weight)
            nn.init.zeros_(lin.bias)
    g = torch.Generator().manual_seed(1)
    h = packages.dks_normalize(torch.randn(512, 16, generator=g) * 3.0)
    qs = []
    with torch.no_grad():
        for lin in layers:
            z = lin(h)
            qs.append((z * z).mean().item())
            h = act(z)
    return qs


def test_dks_wrapper_preserves_q_through_a_deep_nonsquare_tanh_mlp():
    pytest.importorskip("dks")
    qs = _dks_q_per_layer(call_on_transpose=True)
    assert max(abs(q - 1.0) for q in qs) < 0.2  # finite-width drift (widths 96 / 40)


def test_dks_sampler_called_as_documented_breaks_q_on_nonsquare_layers():
    pytest.importorskip("dks")
    qs = _dks_q_per_layer(call_on_transpose=False)
    assert qs[0] == pytest.approx(17 / 96, rel=0.1)  # expanding layer: q times in / out
    assert qs[2] == pytest.approx(qs[1] * 40 / 96, rel=0.1) and max(qs[::2]) < 0.5


def test_dks_wrapper_conv_banks_are_delta_suo_in_torch_layout():
    pytest.importorskip("dks")
    up, down = nn.Conv2d(8, 24, 3), nn.Conv2d(24, 8, 3)
    packages.dks_init(nn.Sequential(up, down), seed=0)
    for conv in (up, down):
        centre = conv.weight[:, :, 1, 1]
        assert torch.count_nonzero(conv.weight) == torch.count_nonzero(centre)
    torch.testing.assert_close(up.weight[:, :, 1, 1].T @ up.weight[:, :, 1, 1],
                               3 * torch.eye(8))  # orthonormal columns x sqrt(24 / 8)
    torch.testing.assert_close(down.weight[:, :, 1, 1] @ down.weight[:, :, 1, 1].T,
                               torch.eye(8))  # orthonormal rows, no rescale


# --- double backward through attention ------------------------------------------------------

def test_gradinit_and_metainit_run_through_attention():
    """Regression: the fused CPU attention kernel has no double backward."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 11, (32, 6), generator=g)
    batches = [(x[:16], x[:16, 0] % 3), (x[16:], x[16:, 0] % 3)]
    for fn, kw in [(gradinit.gradinit, {"iters": 2, "alg": "adam"}),
                   (metainit.metainit, {"steps": 2, "lr": 0.01})]:
        model = tfixup.TinyTransformer(11, 16, 2, 2, 3)
        before = model.layers[0].linear1.weight.detach().clone()
        res = fn(model, batches, loss_fn=F.cross_entropy, **kw)
        assert res.forward_passes >= 2
        assert not torch.equal(model.layers[0].linear1.weight, before)


# --- the common signature ------------------------------------------------------------------

def test_structural_peers_report_zero_passes():
    for fn, model in [(fixup.fixup_init, fixup.ResidualNet(4, 8, 2, 2, kind="mlp")),
                      (fixup.skipinit, fixup.ResidualNet(4, 8, 2, 2, kind="mlp")),
                      (tfixup.tfixup_init, tfixup.TinyTransformer(5, 8, 1, 2, 2,
                                                                  layer_norm=False)),
                      (zeroinit.zero_init, _mlp(1.0))]:
        res = fn(model, None, loss_fn=None, seed=0)
        assert isinstance(res, PeerResult)
        assert (res.forward_passes, res.backward_passes) == (0, 0) and res.wall_s >= 0
