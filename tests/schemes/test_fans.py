"""Fans on real modules: closed forms, and the variance they predict measured on a forward pass."""

import math

import pytest
import torch
from torch import nn

from initwise.schemes import Block, Fans, blocks, fans, scale_to_std_, tensor_fans


def _set_weight_mean_square(module, fan):
    """Weights with mean square exactly 1/fan (random signs/positions), zero bias."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        module.weight.normal_(generator=g)
        scale_to_std_(module.weight, 1 / math.sqrt(fan))
        if getattr(module, "bias", None) is not None:
            module.bias.zero_()


def _interior(t, crop):
    index = (slice(None), slice(None)) + tuple(slice(crop, -crop) for _ in t.shape[2:])
    return t[index]


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (6, 4, 3, 3), (2, 3, 2, 2, 2), (1, 1)])
def test_tensor_fans_equal_torch_helper(shape):
    t = torch.empty(shape)
    f = tensor_fans(t)
    assert (f.fan_in, f.fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    assert fans(t) == f and f.receptive_field == math.prod(shape[2:])


def test_fans_type_behaves_like_a_tuple_and_validates():
    f = Fans(6, 4, 2)
    fan_in, fan_out, rf = f
    assert (fan_in, fan_out, rf, f.fan_avg) == (6, 4, 2, 5.0)
    with pytest.raises(TypeError, match="fan_in"):
        Fans(2.5, 3)
    with pytest.raises(TypeError, match="fan_out"):
        Fans(2, -1)


def test_linear_and_bias():
    m = nn.Linear(7, 3)
    assert fans(m) == Fans(7, 3, 1) == fans(m, "bias")
    assert blocks(m) == [Block("all", slice(0, 3), Fans(7, 3, 1))]


def test_bilinear_fan_in_predicts_output_variance():
    m = nn.Bilinear(6, 5, 4)
    assert fans(m) == Fans(30, 20, 1)
    _set_weight_mean_square(m, fans(m).fan_in)
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(40000, 6, generator=g), torch.randn(40000, 5, generator=g)
    with torch.no_grad():
        assert m(x1, x2).pow(2).mean().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("cls,k", [(nn.Conv1d, (5,)), (nn.Conv2d, (3, 3)), (nn.Conv3d, (3, 1, 2))])
def test_conv_groups_and_dilation(cls, k):
    plain = cls(8, 12, k)
    grouped = cls(8, 12, k, groups=4, dilation=2)
    rf = math.prod(k)
    assert fans(plain) == Fans(8 * rf, 12 * rf, rf)
    assert fans(grouped) == Fans(2 * rf, 3 * rf, rf)  # dilation changes nothing
    assert fans(cls(8, 12, k, stride=2)).fan_in == 8 * rf


def test_grouped_dilated_conv_fan_in_predicts_forward_variance():
    m = nn.Conv2d(8, 12, 3, groups=4, dilation=2, padding=2)
    assert fans(m).fan_in == 18
    _set_weight_mean_square(m, 18)
    x = torch.randn(32, 8, 20, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert _interior(m(x), 2).pow(2).mean().item() == pytest.approx(1.0, rel=0.05)


def test_strided_conv_fan_out_predicts_backward_variance():
    m = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    assert fans(m) == Fans(72, 36, 9)  # 16 * 9 / 4: each input receives 9/4 taps per channel
    _set_weight_mean_square(m, 36)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 8, 32, 32, generator=g, requires_grad=True)
    y = m(x)
    (y * torch.randn(y.shape, generator=g)).sum().backward()
    assert _interior(x.grad, 2).pow(2).mean().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("kernel,padding,output_padding,groups,expected", [
    (4, 1, 0, 1, Fans(64, 128, 16)),   # 16 in * 16 taps / 4
    (3, 1, 1, 1, Fans(36, 72, 9)),     # 16 * 9 / 4 = 36 (alternating 1 and 2 taps per dim)
    (4, 1, 0, 2, Fans(32, 64, 16)),    # groups: 8 in per group
])
def test_conv_transpose2d_fan_in_predicts_forward_variance(kernel, padding, output_padding,
                                                           groups, expected):
    m = nn.ConvTranspose2d(16, 8, kernel, stride=2, padding=padding,
                           output_padding=output_padding, groups=groups)
    assert fans(m) == expected
    x = torch.randn(16, 16, 12, 12, generator=torch.Generator().manual_seed(4))
    _set_weight_mean_square(m, expected.fan_in)
    with torch.no_grad():
        assert _interior(m(x), 3).pow(2).mean().item() == pytest.approx(1.0, rel=0.05)
    # torch's helper reads the (in, out/groups, *k) weight as (out, in, *k): its fan_in is wrong
    torch_fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
    _set_weight_mean_square(m, torch_fan_in)
    with torch.no_grad():
        measured = _interior(m(x), 3).pow(2).mean().item()
    assert measured == pytest.approx(expected.fan_in / torch_fan_in, rel=0.05)
    assert measured < 0.6


def test_conv_transpose_1d_and_3d():
    m1 = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)
    assert fans(m1) == Fans(6, 18, 3)  # 4 * 3 / 2
    _set_weight_mean_square(m1, 6)
    x = torch.randn(256, 4, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert _interior(m1(x), 2).pow(2).mean().item() == pytest.approx(1.0, rel=0.05)
    assert fans(nn.ConvTranspose3d(4, 2, 2, stride=2)) == Fans(4, 16, 8)
    assert fans(nn.ConvTranspose3d(4, 2, 3)) == Fans(108, 54, 27)  # stride 1: every tap lands


def test_fractional_average_is_rounded_half_up():
    assert fans(nn.ConvTranspose1d(3, 2, 3, stride=2)).fan_in == 5  # 4.5 -> 5
    assert fans(nn.ConvTranspose1d(1, 2, 1, stride=4)).fan_in == 1  # 0.25 -> at least 1


@pytest.mark.parametrize("module", [nn.Embedding(100, 16), nn.EmbeddingBag(100, 16, mode="sum")])
def test_embeddings_fan_in_is_one_row_per_lookup(module):
    assert fans(module) == Fans(1, 16, 1)
    with pytest.raises(ValueError, match="bias"):
        fans(module, "bias")


def test_mha_packed_in_proj_is_three_blocks():
    m = nn.MultiheadAttention(12, 3, add_bias_kv=True)
    assert fans(m, "in_proj_weight") == Fans(12, 12, 1)
    got = blocks(m, "in_proj_weight")
    assert [b.label for b in got] == ["q", "k", "v"]
    assert [b.rows for b in got] == [slice(0, 12), slice(12, 24), slice(24, 36)]
    assert all(b.fans == Fans(12, 12, 1) for b in got)
    assert blocks(m, "in_proj_bias") == got
    assert fans(m, "out_proj.weight") == fans(m.out_proj) == Fans(12, 12, 1)
    assert fans(m, "bias_k") == Fans(1, 12, 1)


def test_mha_separate_kdim_vdim():
    m = nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert not m._qkv_same_embed_dim
    assert fans(m, "q_proj_weight") == Fans(8, 8, 1)
    assert fans(m, "k_proj_weight") == Fans(3, 8, 1)
    assert fans(m, "v_proj_weight") == Fans(5, 8, 1)
    assert [b.fans.fan_in for b in blocks(m, "in_proj_bias")] == [8, 3, 5]
    with pytest.raises(ValueError, match="in_proj_weight"):
        fans(m, "in_proj_weight")  # absent when kdim/vdim differ: named in the error


def test_lstm_gates_layers_directions_and_projection():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    assert fans(m, "weight_ih_l0") == Fans(3, 5, 1)
    assert fans(m, "weight_ih_l1_reverse") == Fans(4, 5, 1)  # 2 directions x proj_size
    assert fans(m, "weight_hh_l1") == Fans(2, 5, 1)
    assert fans(m, "bias_hh_l0_reverse") == Fans(2, 5, 1)
    assert fans(m, "weight_hr_l0") == Fans(5, 2, 1)
    got = blocks(m, "weight_hh_l1_reverse")
    assert [b.label for b in got] == ["input", "forget", "cell", "output"]
    assert [b.rows for b in got] == [slice(0, 5), slice(5, 10), slice(10, 15), slice(15, 20)]
    assert [b.label for b in blocks(m, "weight_hr_l1")] == ["all"]


def test_gru_rnn_and_cells():
    gru = nn.GRU(4, 6)
    assert [(b.label, b.rows) for b in blocks(gru, "bias_ih_l0")] == [
        ("reset", slice(0, 6)), ("update", slice(6, 12)), ("new", slice(12, 18))]
    assert fans(nn.RNN(4, 6, num_layers=2), "weight_ih_l1") == Fans(6, 6, 1)
    assert blocks(nn.RNN(4, 6), "weight_hh_l0") == [Block("all", slice(0, 6), Fans(6, 6, 1))]
    assert len(blocks(nn.LSTMCell(4, 6), "weight_ih")) == 4
    assert fans(nn.GRUCell(4, 6), "weight_ih") == Fans(4, 6, 1)
    with pytest.raises(ValueError, match="weight_ih_l"):
        fans(gru, "weight_xx_l0")


def test_lazy_linear_clear_error_then_fans_after_materialization():
    m = nn.LazyLinear(4)
    with pytest.raises(ValueError, match="not materialized.*forward"):
        fans(m)
    m(torch.zeros(2, 9))
    assert fans(m) == Fans(9, 4, 1)


def test_custom_module_hooks_win():
    class Custom(nn.Linear):
        def initwise_fans(self, name):
            return Fans(1000, 10, 1)

        def initwise_blocks(self, name):
            return [Block("left", slice(0, 1), Fans(1, 1, 1))]

    m = Custom(3, 2)
    assert fans(m) == Fans(1000, 10, 1)
    assert blocks(m, "weight")[0].label == "left"

    class Bad(nn.Module):
        def initwise_fans(self, name):
            return (1, 2, 3)

    with pytest.raises(TypeError, match="must return Fans"):
        fans(Bad())


def test_errors_name_the_module_and_the_remedy():
    class Mystery(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(3, 4))

    with pytest.raises(ValueError, match=r"Mystery\.weight.*fans=Fans"):
        fans(Mystery())
    with pytest.raises(ValueError, match=r"no parameter 'wieght'.*\['weight', 'bias'\]"):
        fans(nn.Linear(2, 3), "wieght")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        fans(torch.empty(5))
    with pytest.raises(ValueError, match="no submodule 'nope'"):
        fans(nn.Linear(2, 3), "nope.weight")
    with pytest.raises(TypeError, match="tensor or an nn.Module"):
        fans([1, 2])


def test_parametrized_and_spectral_norm_names_resolve_to_the_weight():
    from torch.nn.utils import parametrizations, spectral_norm

    m = parametrizations.orthogonal(nn.Linear(6, 4))
    names = [n for n, _ in m.named_parameters()]
    assert "parametrizations.weight.original" in names
    assert fans(m, "parametrizations.weight.original") == Fans(6, 4, 1)
    old = spectral_norm(nn.Conv2d(3, 5, 3))
    assert fans(old, "weight_orig") == Fans(27, 45, 9)


def test_meta_device_modules_and_tensors():
    m = nn.Conv2d(4, 8, 3, device="meta")
    assert fans(m) == Fans(36, 72, 9)
