"""csr_to_torch / csr_to_bag / as_csr: exact values, dtypes, no densification, no mutation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from initwise.data import Dataset, as_csr, csr_to_bag, csr_to_torch


def _random_csr(n=9, d=13, density=0.3, seed=0):
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float32)
    keep = np.ones(n, dtype=np.float32)
    keep[2] = 0.0  # an empty row
    X = (sp.diags(keep) @ X).tocsr()
    X.eliminate_zeros()
    return X


def test_csr_to_torch_matches_dense():
    X = _random_csr()
    t = csr_to_torch(X)
    assert t.layout == torch.sparse_csr and t.dtype == torch.float32
    assert t.crow_indices().dtype == torch.int64 and t.col_indices().dtype == torch.int64
    assert torch.equal(t.to_dense(), torch.from_numpy(X.toarray()))
    assert csr_to_torch(X, dtype=torch.float64).dtype == torch.float64


def test_csr_to_torch_accepts_coo_and_rejects_dense():
    X = _random_csr()
    assert torch.equal(csr_to_torch(X.tocoo()).to_dense(), torch.from_numpy(X.toarray()))
    with pytest.raises(TypeError, match="scipy.sparse"):
        csr_to_torch(X.toarray())


def test_csr_to_bag_is_x_times_w():
    X = _random_csr()
    W = torch.randn(X.shape[1], 4, generator=torch.Generator().manual_seed(1))
    idx, off, w = csr_to_bag(X)
    assert idx.dtype == off.dtype == torch.int64 and w.dtype == torch.float32
    assert len(off) == X.shape[0] and len(idx) == len(w) == X.nnz
    out = F.embedding_bag(idx, W, off, mode="sum", per_sample_weights=w)
    expected = torch.from_numpy(X.toarray()) @ W
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(out[2], torch.zeros(4))  # empty row -> empty bag -> zeros


def test_as_csr_canonicalizes_without_touching_the_input():
    data = np.array([1.0, 0.0, 2.0, 5.0], dtype=np.float32)
    indices = np.array([2, 1, 0, 2])
    X = sp.csr_matrix((data, indices, np.array([0, 4])), shape=(1, 3))
    before = (X.data.copy(), X.indices.copy())
    C = as_csr(X)
    assert C.has_canonical_format and C.indices.tolist() == [0, 2] and C.data.tolist() == [2, 6]
    # regression: sum_duplicates on a float32 CSR shared buffers with the caller's matrix
    assert np.array_equal(X.data, before[0]) and np.array_equal(X.indices, before[1])


def test_as_csr_errors():
    with pytest.raises(TypeError, match="X: expected a scipy.sparse"):
        as_csr(np.eye(2))


def test_batches_of_a_2_pow_24_wide_matrix_stay_sparse():
    """Dense, one 256-row batch of this matrix is 16 GiB; sparse it is ~40 KB."""
    width, n, nnz_row = 2**24, 600, 12
    rng = np.random.default_rng(0)
    cols = np.sort(rng.choice(width, size=(n, nnz_row), replace=True), axis=1)
    rows = np.repeat(np.arange(n), nnz_row)
    vals = rng.integers(1, 4, size=n * nnz_row).astype(np.float32)
    X = sp.csr_matrix((vals, (rows, cols.ravel())), shape=(n, width))
    ds = Dataset(X, rng.integers(0, 3, size=n))
    tracemalloc.start()
    try:
        seen_rows, seen_nnz = 0, 0
        for layout in ("sparse", "bag"):
            for xb, yb in ds.batches(256, shuffle=True, seed=0, layout=layout):
                if layout == "sparse":
                    assert xb.layout == torch.sparse_csr and xb.shape[1] == width
                    seen_nnz += xb.values().numel()
                else:
                    assert xb[0].max() < width
                seen_rows += len(yb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen_rows == 2 * n and seen_nnz == X.nnz
    assert peak < 8 * 2**20, f"peak traced numpy memory {peak} bytes: something densified"
