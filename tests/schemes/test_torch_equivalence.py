"""Bit-for-bit equality with torch.nn.init for every scheme both define (same generator seed)."""

import pytest
import torch

import initwise.schemes as S

TI = None  # torch.nn.init with generator= on every torch (tests/conftest.py), set below


@pytest.fixture(autouse=True)
def _torch_init(torch_init):
    global TI
    TI = torch_init


SHAPES = [(7, 5), (5, 7), (16, 3, 3, 3), (4, 6, 5), (3, 2, 2, 2, 2), (64, 64)]


def _pair(shape, seed, fill_mine, fill_torch, dtype=torch.float32):
    mine = torch.empty(shape, dtype=dtype)
    ref = torch.empty(shape, dtype=dtype)
    out = fill_mine(mine, torch.Generator().manual_seed(seed))
    fill_torch(ref, torch.Generator().manual_seed(seed))
    assert out is mine
    return mine, ref


CASES = {
    "uniform": (lambda t, g: S.uniform_(t, -0.3, 0.7, generator=g),
                lambda t, g: TI.uniform_(t, -0.3, 0.7, generator=g)),
    "normal": (lambda t, g: S.normal_(t, 0.2, 1.7, generator=g),
               lambda t, g: TI.normal_(t, 0.2, 1.7, generator=g)),
    "trunc_normal": (lambda t, g: S.trunc_normal_(t, 0.1, 0.5, -0.4, 0.9, generator=g),
                     lambda t, g: TI.trunc_normal_(t, 0.1, 0.5, -0.4, 0.9,
                                                              generator=g)),
    "trunc_normal_narrow": (lambda t, g: S.trunc_normal_(t, 0.0, 1.0, 1.5, 2.5, generator=g),
                            lambda t, g: TI.trunc_normal_(t, 0.0, 1.0, 1.5, 2.5,
                                                                     generator=g)),
    "xavier_uniform": (lambda t, g: S.xavier_uniform_(t, 1.3, g),
                       lambda t, g: TI.xavier_uniform_(t, 1.3, g)),
    "xavier_normal": (lambda t, g: S.xavier_normal_(t, 0.8, g),
                      lambda t, g: TI.xavier_normal_(t, 0.8, g)),
    "glorot_uniform": (lambda t, g: S.glorot_uniform_(t, generator=g),
                       lambda t, g: TI.xavier_uniform_(t, generator=g)),
    "kaiming_uniform_default": (lambda t, g: S.kaiming_uniform_(t, generator=g),
                                lambda t, g: TI.kaiming_uniform_(t, generator=g)),
    "kaiming_uniform_torch_default_layer": (
        lambda t, g: S.kaiming_uniform_(t, a=5 ** 0.5, generator=g),
        lambda t, g: TI.kaiming_uniform_(t, a=5 ** 0.5, generator=g)),
    "kaiming_normal_fan_out_relu": (
        lambda t, g: S.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
        lambda t, g: TI.kaiming_normal_(t, mode="fan_out", nonlinearity="relu",
                                                   generator=g)),
    "he_normal_tanh": (
        lambda t, g: S.he_normal_(t, 0, "fan_in", "tanh", g),
        lambda t, g: TI.kaiming_normal_(t, 0, "fan_in", "tanh", g)),
    "kaiming_uniform_selu": (
        lambda t, g: S.kaiming_uniform_(t, 0, "FAN_IN", "selu", g),
        lambda t, g: TI.kaiming_uniform_(t, 0, "FAN_IN", "selu", g)),
    "kaiming_normal_leaky": (
        lambda t, g: S.kaiming_normal_(t, 0.2, nonlinearity="leaky_relu", generator=g),
        lambda t, g: TI.kaiming_normal_(t, 0.2, nonlinearity="leaky_relu",
                                                   generator=g)),
    "orthogonal": (lambda t, g: S.orthogonal_(t, 1.7, g),
                   lambda t, g: TI.orthogonal_(t, 1.7, g)),
    "constant": (lambda t, g: S.constant_(t, 0.37), lambda t, g: TI.constant_(t, 0.37)),
    "zeros": (lambda t, g: S.zeros_(t.fill_(3.0)), lambda t, g: TI.zeros_(t)),
    "ones": (lambda t, g: S.ones_(t), lambda t, g: TI.ones_(t)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", SHAPES)
def test_bit_identical_to_torch(name, shape):
    for seed in (0, 123):
        mine, ref = _pair(shape, seed, *CASES[name])
        assert torch.equal(mine, ref), (name, shape, seed)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_bit_identical_other_dtypes(dtype):
    for name in ("kaiming_normal_fan_out_relu", "xavier_uniform", "uniform", "trunc_normal"):
        mine, ref = _pair((9, 4, 3), 5, *CASES[name], dtype=dtype)
        assert torch.equal(mine, ref), name


@pytest.mark.parametrize("shape", [(6, 6), (8, 3)])
def test_eye_matches_torch(shape):
    assert torch.equal(S.eye_(torch.randn(shape)), torch.nn.init.eye_(torch.empty(shape)))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 2, 3, 3), 2), ((8, 3, 3, 3, 3), 2),
                                          ((6, 6, 4, 4), 3), ((3, 5, 1, 1), 1)])
def test_dirac_matches_torch(shape, groups):
    mine = S.dirac_(torch.randn(shape), groups)
    assert torch.equal(mine, torch.nn.init.dirac_(torch.empty(shape), groups))


def test_schemes_do_not_touch_global_rng_and_do_not_track_grad():
    state = torch.get_rng_state()
    w = torch.nn.Parameter(torch.empty(5, 4))
    g = torch.Generator().manual_seed(0)
    for fill in (S.kaiming_normal_, S.xavier_uniform_, S.orthogonal_, S.lecun_normal_,
                 S.variance_scaling_):
        out = fill(w, generator=g)
        assert out is w and out.grad_fn is None
    S.sparse_(w, 3, generator=g)
    S.delta_orthogonal_(torch.empty(4, 4, 3), generator=g)
    assert torch.equal(state, torch.get_rng_state())


def test_same_seed_same_bits_for_initwise_only_schemes():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return [S.variance_scaling_(torch.empty(20, 30), 2.0, "fan_avg", generator=g),
                S.lecun_uniform_(torch.empty(20, 30), g),
                S.delta_orthogonal_(torch.empty(8, 4, 3, 3), generator=g),
                S.sparse_(torch.empty(10, 40), 5, generator=g)]
    for a, b in zip(run(7), run(7)):
        assert torch.equal(a, b)
    assert not torch.equal(run(7)[0], run(8)[0])


@pytest.mark.parametrize("args", [(0.1, 0.5, -0.4, 0.9), (0.0, 1.0, 1.5, 2.5)])
def test_trunc_normal_fallback_for_torch_without_generator(monkeypatch, args):
    # torch < 2.2 has no generator= in torch.nn.init; initwise then samples by inverse CDF
    # itself (torch 2.1's own algorithm). Its law, against scipy's closed form, on any torch:
    from scipy.stats import truncnorm

    import initwise.schemes.basic as basic

    old_torch = not basic._TORCH_INIT_GENERATOR
    monkeypatch.setattr(basic, "_TORCH_INIT_GENERATOR", False)
    mean, std, a, b = args
    x = S.trunc_normal_(torch.empty(200_000, dtype=torch.float64), *args,
                        generator=torch.Generator().manual_seed(3))
    law = truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert float(x.min()) >= a and float(x.max()) <= b
    assert float(x.mean()) == pytest.approx(law.mean(), abs=4 * law.std() / 200_000 ** 0.5)
    assert float(x.std()) == pytest.approx(law.std(), rel=0.01)
    again = S.trunc_normal_(torch.empty(200_000, dtype=torch.float64), *args,
                            generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again)
    if old_torch:  # there it must be torch's bits too (torch samples from the global RNG)
        for dtype in (torch.float32, torch.float64):
            mine = S.trunc_normal_(torch.empty(33, 7, dtype=dtype), *args,
                                   generator=torch.Generator().manual_seed(3))
            ref = TI.trunc_normal_(torch.empty(33, 7, dtype=dtype), *args,
                                   generator=torch.Generator().manual_seed(3))
            assert torch.equal(mine, ref)
