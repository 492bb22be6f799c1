"""Martens' sparse init: exact count of non-zeros per unit, variance corrected for the count."""

import math

import pytest
import torch

import initwise.schemes as S


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape,k", [((200, 50), 15), ((64, 8, 3, 3), 10), ((30, 7), 7),
                                     ((500, 1000), 1)])
def test_exact_count_per_unit_and_unit_variance(shape, k):
    w = S.sparse_(torch.empty(shape), k, 1.5, _gen(1))
    rows = w.reshape(shape[0], -1)
    assert torch.equal(torch.count_nonzero(rows, dim=1), torch.full((shape[0],), k))
    # each unit's incoming variance sum_j W_ij^2 ~ gain^2 chi2_k / k: mean over units
    per_unit = rows.double().pow(2).sum(dim=1)
    se = math.sqrt(2 / (k * shape[0]))
    assert per_unit.mean().item() == pytest.approx(2.25, rel=6 * se)


def test_output_variance_matches_dense_variance_preserving_rule():
    g = _gen(2)
    x = torch.randn(4000, 300, generator=g)
    w_sparse = S.sparse_(torch.empty(200, 300), 15, generator=g)
    w_dense = S.kaiming_normal_(torch.empty(200, 300), nonlinearity="linear", generator=g)
    v_sparse = (x @ w_sparse.T).pow(2).mean().item()
    v_dense = (x @ w_dense.T).pow(2).mean().item()
    assert v_sparse == pytest.approx(1.0, rel=0.1)  # sum of 200 units' chi2_15 / 15: se 0.007
    assert v_dense == pytest.approx(1.0, rel=0.1)


def test_positions_are_uniform_over_inputs():
    w = S.sparse_(torch.empty(4000, 20), 3, generator=_gen(3))
    counts = torch.count_nonzero(w, dim=0).double()  # expected 4000 * 3 / 20 = 600 each
    chi2 = ((counts - 600) ** 2 / 600).sum().item()
    assert chi2 < 50  # chi-square with ~19 dof: P(> 50) < 1e-4


def test_martens_gain_reproduces_unit_gaussian_weights():
    w = S.sparse_(torch.empty(2000, 100), 15, math.sqrt(15), _gen(4))
    nz = w[w != 0].double()
    assert nz.var().item() == pytest.approx(1.0, rel=0.05)


def test_errors():
    with pytest.raises(TypeError, match="COUNT.*torch.nn.init.sparse_"):
        S.sparse_(torch.empty(4, 4), 0.9)
    with pytest.raises(ValueError, match=r"nonzeros=5 must be in \[1, 4\]"):
        S.sparse_(torch.empty(4, 4), 5)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        S.sparse_(torch.empty(4), 1)


def test_wide_layer_positions_drawn_in_row_blocks_give_the_same_bits(monkeypatch):
    # a 2^20-input layer must not materialize a (rows, cols) key matrix and its argsort; the
    # row blocks must be invisible: the same bits as one full draw (block of every row)
    import initwise.schemes.sparse as sp

    whole = S.sparse_(torch.empty(37, 50), 4, 1.0, _gen(5))
    monkeypatch.setattr(sp, "_KEY_BLOCK", 3 * 50 + 7)  # blocks of 3 rows, 13 blocks
    blocked = S.sparse_(torch.empty(37, 50), 4, 1.0, _gen(5))
    assert torch.equal(whole, blocked)
    keys = torch.rand((37, 50), generator=_gen(5))  # twin: argsort of the full key matrix
    expected = keys.argsort(dim=1)[:, :4].sort(dim=1).values
    assert torch.equal(torch.nonzero(blocked)[:, 1].reshape(37, 4), expected)
