"""The streaming statistics against slow, obviously-correct dense twins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initwise.measure import ColumnStats, SparseInputStats, UnitStats, sparse_values
from initwise.measure.probe import lookup_values as _lookup_values


def test_unit_stats_merge_batches_like_one_pass():
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(7, 3, 5, generator=g) * 3 + 1 for _ in range(3)]  # (N, C, L): conv
    st = UnitStats(sat_threshold=2.0)
    for p in parts:
        st.update(p, 1)
    z = torch.cat(parts).movedim(1, -1).reshape(-1, 3).double()
    assert st.count == z.shape[0]
    torch.testing.assert_close(st.mean(), z.mean(0))
    torch.testing.assert_close(st.var(), z.var(0, unbiased=False))
    torch.testing.assert_close(st.zmax, z.amax(0))
    torch.testing.assert_close(st.zmin, z.amin(0))
    torch.testing.assert_close(st.sat, (z.abs() > 2).sum(0).double())
    shift = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(st.shifted_second_moment(shift), ((z - shift) ** 2).mean(0))


def test_column_stats_match_dense():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 4, generator=g) * torch.tensor([1e-3, 1.0, 1e3, 1e6])
    cs = ColumnStats()
    cs.update(x[:20], -1)
    cs.update(x[20:], -1)
    xd = x.double()
    torch.testing.assert_close(cs.mean(), xd.mean(0))
    torch.testing.assert_close(cs.std(), xd.std(0, unbiased=False))


def test_sparse_effective_fan_in_matches_dense_twin():
    g = torch.Generator().manual_seed(2)
    dense = (torch.rand(30, 100, generator=g) < 0.05).float() * torch.randint(
        1, 5, (30, 100), generator=g)
    idx = dense.nonzero().t()
    coo = torch.sparse_coo_tensor(torch.cat([idx, idx], 1),  # duplicates: uncoalesced
                                  torch.cat([dense[idx[0], idx[1]] / 2] * 2), (30, 100))
    for x in (coo, dense.to_sparse_csr()):
        vals, rows = sparse_values(x)
        st = SparseInputStats()
        st.update(vals, rows)
        assert st.eff_fan_in == pytest.approx(float((dense.double() ** 2).sum(1).mean()))
        nz = dense[dense != 0].double()
        assert st.value_ms == pytest.approx(float((nz ** 2).mean()))
    assert sparse_values(dense) is None


def test_embedding_bag_values_use_bag_sizes_and_weights():
    bag = nn.EmbeddingBag(10, 4, mode="mean")
    idx, off = torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 1, 4])
    vals, rows = _lookup_values(bag, (idx, off), {})
    assert rows == 3
    torch.testing.assert_close(vals, torch.tensor([1, 1 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2],
                                                  dtype=torch.float64))
    bag_sum = nn.EmbeddingBag(10, 4, mode="sum")
    psw = torch.tensor([2.0, 1, 1, 1, 3, 3])
    vals, rows = _lookup_values(bag_sum, (idx, off), {"per_sample_weights": psw})
    torch.testing.assert_close(vals, psw.double())
    vals, rows = _lookup_values(nn.Embedding(10, 4), (torch.zeros(2, 5, dtype=torch.long),), {})
    assert rows == 10 and float(vals.sum()) == 10


def test_folded_standardization_equals_the_layer_on_standardized_inputs():
    from initwise.datainit._measure import Measurement
    from initwise.datainit._walk import _standardize

    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 5, generator=g).double() * torch.tensor([1e-2, 1.0, 1e2, 1e4, 1e6]) + 7
    lin = nn.Linear(5, 4).double()
    ref = nn.Linear(5, 4).double()
    ref.load_state_dict(lin.state_dict())
    m = Measurement(UnitStats())
    m.out.update(lin(x).detach(), -1)
    m.columns = ColumnStats()
    m.columns.update(x, -1)
    _standardize(lin, lin.weight, lin.bias, m)
    xs = (x - x.mean(0)) / x.std(0, unbiased=False)  # the slow twin: standardize the data
    torch.testing.assert_close(lin(x), ref(xs))
