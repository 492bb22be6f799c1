"""feature_stats: one streaming pass, equal to the dense numpy twin on every statistic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from initwise.data import Dataset, feature_stats

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")


def _matrix(seed=0, n=37, d=11):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.3)
    X[5] = 0.0  # empty row
    X[:, 3] = 0.0  # unused feature
    X[:, 7] = np.where(X[:, 7] != 0, np.abs(X[:, 7]) * 100, 0)  # a large-scale feature
    return X


def _compare(st, want):
    assert st.n_rows == want["n_rows"] and st.nnz == want["nnz"]
    np.testing.assert_array_equal(st.doc_freq, want["doc_freq"])
    for key in ("mean", "second_moment", "variance", "max_abs"):
        np.testing.assert_allclose(getattr(st, key), want[key], rtol=1e-6, atol=1e-9, err_msg=key)
    assert st.min_value == pytest.approx(want["min_value"], rel=1e-6)
    assert st.max_value == pytest.approx(want["max_value"], rel=1e-6)
    assert st.effective_fan_in == pytest.approx(want["effective_fan_in"], rel=1e-9)
    row_nnz = want["row_nnz"]
    assert st.nnz_per_row_min == row_nnz.min() and st.nnz_per_row_max == row_nnz.max()
    assert st.nnz_per_row_mean == pytest.approx(row_nnz.mean())
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        assert st.nnz_per_row_quantile(q) == np.quantile(row_nnz, q, method="lower"), q


@pytest.mark.parametrize("chunk_rows", [1, 4, 10_000])
@pytest.mark.parametrize("form", ["csr", "csc", "dense", "torch_coo", "torch_csr", "dataset"])
def test_matches_dense_twin(ref, chunk_rows, form):
    X = _matrix()
    given = {
        "csr": sp.csr_matrix(X),
        "csc": sp.csc_matrix(X),
        "dense": X,
        "torch_coo": torch.from_numpy(X).to_sparse(),
        "torch_csr": torch.from_numpy(X).to_sparse_csr(),
        "dataset": Dataset(sp.csr_matrix(X.astype(np.float32))),
    }[form]
    want = ref.dense_feature_stats(X.astype(np.float32) if form == "dataset" else X)
    st = feature_stats(given, chunk_rows=chunk_rows)
    _compare(st, want)
    assert st.unused_features == 1 and st.n_features == 11


def test_all_positive_dense_min_is_not_zero(ref):
    X = np.random.default_rng(1).uniform(1.0, 2.0, size=(9, 4))
    for given in (X, sp.csr_matrix(X)):
        st = feature_stats(given, chunk_rows=2)
        assert st.min_value == pytest.approx(X.min()) and st.nonnegative
    assert not feature_stats(-X).nonnegative


def test_variance_of_large_offsets_has_no_cancellation():
    rng = np.random.default_rng(2)
    X = 1.5e9 + rng.normal(size=(5000, 2))
    st = feature_stats(X, chunk_rows=333)
    np.testing.assert_allclose(st.variance, X.var(axis=0), rtol=1e-6)


def test_sparsity_and_frequency():
    X = sp.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [3.0, 0, 0, 0]]))
    st = feature_stats(X)
    assert st.density == pytest.approx(3 / 12) and st.sparsity == pytest.approx(9 / 12)
    np.testing.assert_allclose(st.frequency, [2 / 3, 1 / 3, 0, 0])


def test_summary_is_json_safe():
    summary = feature_stats(_matrix()).summary()
    assert json.loads(json.dumps(summary))["nnz_per_row"]["q0.5"] == summary["nnz_per_row"]["q0.5"]
    assert summary["unused_features"] == 1


def test_empty_matrix():
    st = feature_stats(sp.csr_matrix((0, 5)))
    assert st.n_rows == 0 and st.nnz_per_row_max == 0 and st.nnz_per_row_quantile(0.5) == 0
    assert st.mean.tolist() == [0.0] * 5


@pytest.mark.parametrize(
    ("X", "exc", "match"),
    [
        (np.array([[1.0, 2.0], [0.0, np.nan]]), ValueError, "row 1, column 1"),
        (sp.csr_matrix(np.array([[0, 0], [np.inf, 0]])), ValueError, "row 1, column 0"),
        ([[1.0]], TypeError, "Dataset, scipy.sparse matrix"),
        (type("NotADataset", (), {"X": [[1.0]]})(), TypeError, "got NotADataset"),
        (np.zeros(3), ValueError, "2-D"),
    ],
)
def test_errors(X, exc, match):
    with pytest.raises(exc, match=match):
        feature_stats(X, chunk_rows=1)
    with pytest.raises(ValueError, match="chunk_rows"):
        feature_stats(np.eye(2), chunk_rows=0)


def test_a_2_pow_22_wide_sparse_matrix_streams(ref):
    """Only the chunk's own columns are touched; the result equals the twin on those columns."""
    rng = np.random.default_rng(3)
    n, width = 3000, 2**22
    cols = rng.integers(0, 64, size=(n, 5)) * 2**16 + rng.integers(0, 3, size=(n, 5))
    X = sp.csr_matrix(
        (rng.normal(size=n * 5), (np.repeat(np.arange(n), 5), cols.ravel())), shape=(n, width)
    )
    st = feature_stats(X, chunk_rows=500)
    used = np.unique(X.indices)
    want = ref.dense_feature_stats(X[:, used].toarray())
    for key in ("mean", "second_moment", "variance", "max_abs"):
        np.testing.assert_allclose(getattr(st, key)[used], want[key], rtol=1e-9, atol=1e-12)
    assert st.unused_features == width - len(used) and st.nnz == X.nnz
