"""Dataset: validation, task inference, batches in three layouts, split, subset, stats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from initwise.data import Dataset, feature_stats


def _sparse(n=23, d=17, seed=0):
    return sp.random(n, d, density=0.25, format="csr", random_state=seed, dtype=np.float64)


def _labels(n=23, k=3, seed=0):
    return np.random.default_rng(seed).integers(0, k, size=n)


def _rows_of(batch, layout, d):
    if layout == "sparse":
        return batch.to_dense().numpy()
    if layout == "dense":
        return batch.numpy()
    idx, off, w = batch
    out = torch.zeros(len(off), d)
    bounds = off.tolist() + [len(idx)]
    for i in range(len(off)):
        for j in range(bounds[i], bounds[i + 1]):
            out[i, idx[j]] += w[j]
    return out.numpy()


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("X", "y", "exc", "match"),
    [
        ([[1.0]], None, TypeError, "scipy.sparse matrix or a 2-D numpy array"),
        (np.zeros((2, 2, 2)), None, ValueError, "2-D"),
        (np.array([["a"]]), None, TypeError, "numeric"),
        (np.eye(3), np.zeros(2), ValueError, "match X's 3 rows"),
        (np.array([[1.0, np.nan]]), None, ValueError, "row 0"),
        (sp.csr_matrix(np.array([[0, 0], [0, np.inf]])), None, ValueError, "row 1"),
        (np.array([[1.0], [1e39]]), None, ValueError, "beyond float32's"),
        (np.eye(2), np.array([0, -1]), ValueError, "0..K-1"),
        (np.eye(2), np.array(["a", "b"]), TypeError, "class_names"),
        (np.eye(2), np.array([0.5, np.nan]), ValueError, "NaN"),
    ],
)
def test_bad_construction(X, y, exc, match):
    with pytest.raises(exc, match=match):
        Dataset(X, y)


def test_name_lists_are_checked():
    with pytest.raises(ValueError, match="feature_names: 1 names for 2 columns"):
        Dataset(np.eye(2), feature_names=["a"])
    with pytest.raises(ValueError, match="class_names: 1 names, but the targets need 2"):
        Dataset(np.eye(2), np.array([0, 1]), class_names=["a"])
    with pytest.raises(ValueError, match="not classes"):
        Dataset(np.eye(2), np.array([0.5, 1.5]), class_names=["a", "b"])


def test_sparse_input_is_canonical_float32_and_not_mutated():
    X = _sparse()
    ds = Dataset(X)
    assert ds.is_sparse and ds.X.dtype == np.float32 and ds.X.has_canonical_format
    assert X.dtype == np.float64
    assert ds.nnz == X.nnz and ds.n_rows == 23 and ds.n_features == 17 and len(ds) == 23


@pytest.mark.parametrize(
    ("y", "task", "n_classes", "target_dtype"),
    [
        (None, None, None, None),
        (np.array([0, 2, 1, 2]), "classification", 3, torch.int64),
        (np.array([0.5, 2.0, 1.0, 3.0]), "regression", None, torch.float32),
        (
            np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32),
            "multilabel",
            2,
            torch.float32,
        ),
        (np.array([True, False, True, True]), "regression", None, torch.float32),
    ],
)
def test_task_inference(y, task, n_classes, target_dtype):
    ds = Dataset(np.eye(4), y)
    assert ds.task == task and ds.n_classes == n_classes
    _, yb = next(ds.batches(4))
    assert (yb is None) if target_dtype is None else yb.dtype == target_dtype


def test_n_classes_counts_names_and_explicit_value():
    assert Dataset(np.eye(2), np.array([0, 1]), class_names=["a", "b", "c"]).n_classes == 3
    assert Dataset(np.eye(2), np.array([0, 1]), n_classes=5).n_classes == 5
    with pytest.raises(ValueError, match="largest label 1"):
        Dataset(np.eye(2), np.array([0, 1]), n_classes=1)


# ----------------------------------------------------------------------------- batches
@pytest.mark.parametrize("layout", ["sparse", "dense", "bag"])
@pytest.mark.parametrize("sparse_x", [True, False])
def test_batches_reproduce_rows_and_targets(layout, sparse_x):
    X, y = _sparse(), _labels()
    ds = Dataset(X if sparse_x else X.toarray(), y)
    got_x, got_y = [], []
    for xb, yb in ds.batches(5, layout=layout):
        got_x.append(_rows_of(xb, layout, 17))
        got_y.append(yb.numpy())
    assert [len(b) for b in got_y] == [5, 5, 5, 5, 3]
    np.testing.assert_allclose(np.concatenate(got_x), X.toarray(), rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate(got_y), y)


def test_shuffle_is_a_seeded_permutation_and_leaves_global_rngs_alone():
    ds = Dataset(np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20))
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    order = [
        np.concatenate([y.numpy() for _, y in ds.batches(6, shuffle=True, seed=s)])
        for s in (7, 7, 8)
    ]
    assert np.array_equal(order[0], order[1]) and not np.array_equal(order[0], order[2])
    assert sorted(order[0].tolist()) == list(range(20)) and order[0].tolist() != list(range(20))
    for xb, yb in ds.batches(6, shuffle=True, seed=3, layout="dense"):
        np.testing.assert_array_equal(xb[:, 0].numpy(), 2.0 * yb.numpy())
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_drop_last_and_n_batches():
    ds = Dataset(np.eye(10))
    assert ds.n_batches(4) == 3 and ds.n_batches(4, drop_last=True) == 2
    assert [len(x) for x, _ in ds.batches(4, drop_last=True, layout="dense")] == [4, 4]
    assert ds.n_batches(5, drop_last=True) == 2


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"batch_size": 0}, ValueError, "positive"),
        ({"batch_size": 2.0}, TypeError, "positive"),
        ({"layout": "coo"}, ValueError, "'sparse', 'dense', 'bag'"),
    ],
)
def test_batch_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Dataset(np.eye(3)).batches(**kwargs)


# ----------------------------------------------------------------------------- split, subset
def test_stratified_split_keeps_class_counts():
    y = np.repeat([0, 1, 2, 3], [50, 30, 15, 1])
    ds = Dataset(sp.random(96, 8, density=0.5, format="csr", random_state=1), y, name="s")
    train, test = ds.split(0.2, seed=4)
    assert np.bincount(test.y, minlength=4).tolist() == [10, 6, 3, 0]
    assert np.bincount(train.y, minlength=4).tolist() == [40, 24, 12, 1]
    assert train.name == "s[train]" and test.name == "s[test]" and test.n_classes == 4
    again = ds.split(0.2, seed=4)[1]
    assert (again.X != test.X).nnz == 0
    other = ds.split(0.2, seed=5)[1]
    assert (other.X != test.X).nnz > 0


def test_split_parts_partition_the_rows():
    X = np.arange(30, dtype=np.float32).reshape(30, 1)
    train, test = Dataset(X, X[:, 0] / 7.0).split(0.3, seed=0)
    assert len(test) == 9 and len(train) == 21
    both = np.sort(np.concatenate([train.X[:, 0], test.X[:, 0]]))
    np.testing.assert_array_equal(both, X[:, 0])
    np.testing.assert_allclose(test.y, test.X[:, 0] / 7.0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.01])
def test_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        Dataset(np.eye(10), np.arange(10) % 2).split(fraction)


def test_subset_forms():
    ds = Dataset(np.eye(4), np.array([0, 1, 2, 3]), class_names=list("abcd"))
    assert ds.subset([3, 1]).y.tolist() == [3, 1]
    assert ds.subset(np.array([True, False, False, True])).y.tolist() == [0, 3]
    assert ds.subset(slice(1, 3)).y.tolist() == [1, 2]
    assert ds.subset([0]).n_classes == 4
    with pytest.raises(ValueError, match="out-of-range"):
        ds.subset([4])


def test_stats_is_cached_and_matches_feature_stats():
    ds = Dataset(_sparse())
    st = ds.stats()
    assert ds.stats() is st
    np.testing.assert_allclose(st.mean, feature_stats(ds.X).mean)


def test_repr():
    ds = Dataset(sp.identity(4, format="csr"), np.array([0, 1, 1, 0]), name="toy")
    assert repr(ds) == (
        "Dataset(name='toy', rows=4, features=4, X=csr, nnz/row=1, task=classification, classes=2)"
    )
