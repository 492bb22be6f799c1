"""load(): every format read correctly, checked against scikit-learn, numpy and the slow twin."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from initwise.data import DataError, detect_format, load, read_svmlight


def _random_svmlight(seed: int, n: int = 40, d: int = 30) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.2, format="csr", random_state=seed, dtype=np.float64)
    X.data = np.round(X.data * 10 - 3, 3)
    X.eliminate_zeros()
    return X, rng.integers(-1, 3, size=n)


@pytest.mark.parametrize("zero_based", [True, False])
def test_svmlight_matches_scikit_learn(tmp_path, zero_based):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = _random_svmlight(0)
    path = str(tmp_path / "a.svm")
    datasets.dump_svmlight_file(X, y, path, zero_based=zero_based, comment="made by a test")
    ds = load(path, n_features=30, zero_based=zero_based)
    Xs, ys = datasets.load_svmlight_file(path, n_features=30, zero_based=zero_based)
    np.testing.assert_allclose(ds.X.toarray(), Xs.toarray(), rtol=1e-6)
    assert ds.class_names == ["-1", "0", "1", "2"]
    np.testing.assert_array_equal(np.array(ds.class_names, dtype=float)[ds.y], ys)
    assert ds.name == "a" and ds.task == "classification"


def test_svmlight_matches_slow_twin_across_blocks(ref, write):
    text = (
        "# a header comment\n"
        "1 qid:4 1:0.5 7:-2e-3 12:3   # trailing comment\n"
        "\n"
        "3 2:1\n"
        "2\n"
        "1 1:1 2:1 3:1 4:1\n"
        "2 12:1.5e2\n"
    )
    path = write("t.libsvm", text)
    rows, labels = ref.parse_svmlight_slow(text, zero_based=False)
    for block_lines in (1, 2, 1000):
        data = read_svmlight(path, block_lines=block_lines)
        assert data.lines.tolist() == [2, 4, 5, 6, 7] and data.labels == labels
        assert not data.zero_based and data.X.shape == (5, 12)
        dense = np.zeros((5, 12))
        for i, row in enumerate(rows):
            for j, v in row.items():
                dense[i, j] = v
        np.testing.assert_allclose(data.X.toarray(), dense, rtol=1e-6)


def test_svmlight_zero_based_auto_and_explicit(write):
    path = write("z.svm", "1 0:1 3:2\n0 2:1\n")
    assert read_svmlight(path).zero_based is True
    assert read_svmlight(path).X.toarray().tolist() == [[1, 0, 0, 2], [0, 0, 1, 0]]
    one = write("o.svm", "1 1:1 3:2\n")
    assert read_svmlight(one, zero_based=True).X.shape == (1, 4)
    assert read_svmlight(one).X.shape == (1, 3)


def test_svmlight_labels_regression_and_multilabel(write):
    reg = load(write("r.svm", "0.5 1:1\n-2.25 2:1\n"))
    assert reg.task == "regression" and reg.y.tolist() == [0.5, -2.25]
    ml = load(write("m.svm", "1,3 1:1\n3 2:1\n7,1 1:2\n"))
    assert ml.task == "multilabel" and ml.class_names == ["1", "3", "7"]
    assert ml.y.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    forced = load(write("f.svm", "1 1:1\n3 2:1\n"), task="multilabel")
    assert forced.y.tolist() == [[1, 0], [0, 1]]
    as_reg = load(write("g.svm", "1 1:1\n3 2:1\n"), task="regression")
    assert as_reg.y.tolist() == [1.0, 3.0]


def test_svmlight_compressed_and_sniffed(tmp_path):
    path = tmp_path / "news.svm.gz"
    with gzip.open(path, "wt") as f:
        f.write("1 1:1\n2 5:2\n")
    assert load(path).X.shape == (2, 5)
    bare = tmp_path / "a9a"
    bare.write_text("+1 3:1 10:1\n-1 2:1\n")
    assert detect_format(str(bare)) == "svmlight"
    ds = load(bare, format="libsvm")
    assert ds.class_names == ["-1", "1"] and ds.y.tolist() == [1, 0]


def test_csv_target_by_name_and_string_classes(write):
    path = write("t.csv", 'a,label,"b c"\n1,cat,2.5\n-3,dog,0\n\n4e2,cat,1\n')
    ds = load(path, target="label")
    assert ds.feature_names == ["a", "b c"] and ds.class_names == ["cat", "dog"]
    np.testing.assert_allclose(ds.X, [[1, 2.5], [-3, 0], [400, 1]])
    assert ds.y.tolist() == [0, 1, 0] and not ds.is_sparse


def test_csv_numeric_targets_tsv_and_no_target(write):
    reg = load(write("r.tsv", "x\ty\n1\t0.25\n2\t0.5\n"), target="y")
    assert reg.task == "regression" and reg.y.tolist() == [0.25, 0.5]
    cls = load(write("c.csv", "x,y\n1,3\n2,5\n"), target=1)
    assert cls.class_names == ["3", "5"] and cls.y.tolist() == [0, 1]
    none = load(write("n.csv", "x,y\n1,3\n"))
    assert none.y is None and none.X.shape == (1, 2)


def test_npy_with_and_without_target(tmp_path):
    A = np.array([[1.0, 0.0, 2.0], [3.0, 1.0, 4.0]])
    np.save(tmp_path / "a.npy", A)
    assert load(tmp_path / "a.npy").X.tolist() == A.tolist()
    ds = load(tmp_path / "a.npy", target=1)
    assert ds.X.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="column index"):
        load(tmp_path / "a.npy", target="label")


def test_npz_sparse_and_dense(tmp_path):
    X, y = _random_svmlight(3)
    sp.save_npz(tmp_path / "s.npz", X)
    ds = load(tmp_path / "s.npz")
    assert ds.is_sparse and ds.y is None
    np.testing.assert_allclose(ds.X.toarray(), X.toarray(), rtol=1e-6)
    np.savez(tmp_path / "d.npz", X=X.toarray(), y=y + 1, feature_names=np.array(["f"] * 30))
    dense = load(tmp_path / "d.npz")
    assert dense.y.tolist() == (y + 1).tolist() and dense.feature_names == ["f"] * 30
    np.savez(tmp_path / "t.npz", X=np.eye(2), target=np.array([0.5, 1.5]))
    assert load(tmp_path / "t.npz", target="target").task == "regression"


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {"x": [1.0, 2.0, 3.0], "n": [1, 2, 3], "flag": [True, False, True], "y": ["b", "a", "b"]}
    )
    pq.write_table(table, tmp_path / "t.parquet")
    ds = load(tmp_path / "t.parquet", target="y")
    assert ds.feature_names == ["x", "n", "flag"] and ds.class_names == ["a", "b"]
    assert ds.X.tolist() == [[1, 1, 1], [2, 2, 0], [3, 3, 1]] and ds.y.tolist() == [1, 0, 1]


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match=r"pip install initwise\[parquet\]"):
        load(tmp_path / "t.parquet")


def test_argument_errors(write):
    path = write("a.svm", "1 1:1\n")
    with pytest.raises(ValueError, match="format: expected one of"):
        load(path, format="arff")
    with pytest.raises(ValueError, match="task: expected one of"):
        load(path, task="ranking")
    with pytest.raises(ValueError, match="leave target=None"):
        load(path, target="y")
    with pytest.raises(DataError, match="cannot tell the format"):
        load(write("a.dat", "hello world\n"))


def test_crlf_bom_and_tabs(write):
    csv_ds = load(write("w.csv", "\ufeffa,y\r\n1,0\r\n2,1\r\n"), target="y")
    assert csv_ds.feature_names == ["a"] and csv_ds.y.tolist() == [0, 1]
    svm = load(write("w.svm", "+1\t1:2.5e0\t3:1\r\n-1 2:1\r\n"))
    assert svm.X.toarray().tolist() == [[2.5, 0, 1], [0, 1, 0]] and svm.y.tolist() == [1, 0]
