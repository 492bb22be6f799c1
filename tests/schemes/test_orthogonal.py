"""Orthogonal, delta-orthogonal, identity/Dirac and ZerO: their defining properties."""

import math

import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

import initwise.schemes as S


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (16, 3, 3, 3), (64, 4, 1, 1),
                                   (6, 2, 5), (2, 3, 2, 2, 2)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_rows_or_columns_orthonormal(shape, gain):
    w = S.orthogonal_(torch.empty(shape, dtype=torch.float64), gain, _gen(1))
    m = w.reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    assert torch.allclose(gram, gain ** 2 * torch.eye(gram.shape[0], dtype=torch.float64),
                          atol=1e-12)


def test_orthogonal_is_haar_first_entry_moments():
    # under the Haar measure on O(8): E[W00] = 0 and E[W00^2] = 1/8 (W00^2 ~ Beta(1/2, 7/2))
    g = _gen(0)
    draws = torch.stack([S.orthogonal_(torch.empty(8, 8), generator=g)[0, 0] for _ in range(300)])
    assert draws.pow(2).mean().item() == pytest.approx(1 / 8, rel=0.35)  # se 0.068 relative
    assert abs(draws.mean().item()) < 0.1  # se 0.02: no sign bias from the QR convention


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_orthogonal_on_half_precision_is_the_float32_draw_rounded(dtype):
    # regression: QR has no bf16/fp16 kernel, so these raised NotImplementedError ("geqrf_cpu")
    ref = S.orthogonal_(torch.empty(6, 4, 3), 1.3, _gen(8))
    assert torch.equal(S.orthogonal_(torch.empty(6, 4, 3, dtype=dtype), 1.3, _gen(8)),
                       ref.to(dtype))
    ref = S.delta_orthogonal_(torch.empty(8, 4, 3, 3), generator=_gen(9), groups=2)
    low = S.delta_orthogonal_(torch.empty(8, 4, 3, 3, dtype=dtype), generator=_gen(9), groups=2)
    assert torch.equal(low, ref.to(dtype))


def _circular_conv(w, x):
    pads = []
    for k in reversed(w.shape[2:]):
        pads += [k // 2, k - 1 - k // 2]
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[w.dim()]
    return conv(F.pad(x, pads, mode="circular"), w)


@pytest.mark.parametrize("shape", [(8, 8, 3), (16, 4, 3, 3), (6, 6, 3, 3, 3), (12, 5, 4, 4)])
def test_delta_orthogonal_is_an_isometry(shape):
    w = S.delta_orthogonal_(torch.empty(shape, dtype=torch.float64), 1.5, _gen(2))
    centre = tuple(k // 2 for k in shape[2:])
    off = w.clone()
    off[(slice(None), slice(None), *centre)] = 0
    assert torch.count_nonzero(off) == 0  # every off-centre tap is exactly zero
    h = w[(slice(None), slice(None), *centre)]
    assert torch.allclose(h.T @ h, 2.25 * torch.eye(shape[1], dtype=torch.float64), atol=1e-12)
    x = torch.randn((3, shape[1], *(7 for _ in shape[2:])), generator=_gen(3),
                    dtype=torch.float64)
    y = _circular_conv(w, x)
    assert torch.allclose(y.flatten(1).norm(dim=1), 1.5 * x.flatten(1).norm(dim=1), rtol=1e-10)


def test_delta_orthogonal_groups_and_fewer_outputs():
    w = S.delta_orthogonal_(torch.empty(8, 3, 3, 3), generator=_gen(4), groups=2)
    for g in range(2):
        h = w[g * 4:(g + 1) * 4, :, 1, 1]
        assert torch.allclose(h.T @ h, torch.eye(3), atol=1e-5)
    narrow = S.delta_orthogonal_(torch.empty(2, 6, 3), generator=_gen(5))[:, :, 1]
    assert torch.allclose(narrow @ narrow.T, torch.eye(2), atol=1e-5)  # orthonormal rows


def test_identity_and_dirac_reproduce_the_input():
    x = torch.randn(4, 6, generator=_gen(6))
    assert torch.equal(F.linear(x, S.identity_(torch.empty(6, 6))), x)
    img = torch.randn(2, 4, 9, 9, generator=_gen(7))
    w = S.identity_(torch.empty(4, 4, 3, 3))
    assert torch.equal(F.conv2d(img, w, padding=1), img)
    wg = S.dirac_(torch.empty(4, 2, 5, 5), groups=2)
    assert torch.equal(F.conv2d(img, wg, padding=2, groups=2), img)


def test_hadamard_matches_sylvester_twin():
    for m in range(0, 7):
        n = 2 ** m
        assert torch.equal(S.hadamard(n, n, dtype=torch.float64),
                           torch.from_numpy(scipy.linalg.hadamard(n).astype("float64")))
    assert torch.equal(S.hadamard(5, 3), torch.from_numpy(scipy.linalg.hadamard(8)[:5, :3]).float())


def test_zero_square_is_identity_and_deterministic():
    t1, t2 = torch.randn(7, 7, generator=_gen(1)), torch.randn(7, 7, generator=_gen(2))
    rng = torch.get_rng_state()
    a, b = S.zero_(t1), S.zero_(t2)
    assert torch.equal(a, torch.eye(7)) and torch.equal(a, b)
    assert torch.equal(rng, torch.get_rng_state())


def test_zero_fewer_outputs_is_partial_identity():
    w = S.zero_(torch.empty(3, 5))
    assert torch.equal(w, torch.eye(3, 5))
    x = torch.randn(2, 5, generator=_gen(8))
    assert torch.equal(F.linear(x, w), x[:, :3])  # propagates the first 3 inputs


@pytest.mark.parametrize("rows,cols", [(8, 3), (6, 5), (16, 16 - 1), (100, 10), (4, 1)])
def test_zero_more_outputs_is_scaled_hadamard(rows, cols):
    w = S.zero_(torch.empty(rows, cols, dtype=torch.float64))
    m = math.ceil(math.log2(rows))
    c = 2.0 ** (-(m - 1) / 2)
    twin = c * scipy.linalg.hadamard(2 ** m)[:rows, :cols]
    assert torch.allclose(w, torch.from_numpy(twin), atol=0, rtol=1e-15)
    assert torch.linalg.matrix_rank(w).item() == cols  # no two inputs collapse
    if rows == 2 ** m:
        assert torch.allclose(w.T @ w, 2 * torch.eye(cols, dtype=torch.float64))


def test_zero_conv_centre_tap_and_groups():
    w = S.zero_(torch.randn(8, 2, 3, 3))
    assert torch.count_nonzero(w[:, :, [0, 2]]) == 0
    assert torch.count_nonzero(w[:, :, :, [0, 2]]) == 0
    assert torch.allclose(w[:, :, 1, 1], S.zero_(torch.empty(8, 2)))
    wg = S.zero_(torch.empty(6, 3, 3), groups=2)
    assert torch.equal(wg[:3, :, 1], torch.eye(3)) and torch.equal(wg[3:, :, 1], torch.eye(3))


def test_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"orthogonal_.*shape \(4,\)"):
        S.orthogonal_(torch.empty(4))
    with pytest.raises(ValueError, match=r"delta_orthogonal_.*3, 4 or 5.*shape \(4, 4\)"):
        S.delta_orthogonal_(torch.empty(4, 4))
    with pytest.raises(ValueError, match=r"not divisible by groups=3"):
        S.delta_orthogonal_(torch.empty(4, 4, 3), groups=3)
    with pytest.raises(ValueError, match=r"dirac_.*shape \(4, 4\)"):
        S.dirac_(torch.empty(4, 4))
    with pytest.raises(ValueError, match=r"eye_.*shape \(4, 4, 1\)"):
        S.eye_(torch.empty(4, 4, 1))
    with pytest.raises(ValueError, match=r"zero_.*shape \(4,\)"):
        S.zero_(torch.empty(4))
    with pytest.raises(ValueError, match="groups=2 needs a ConvNd"):
        S.identity_(torch.empty(4, 4), groups=2)
