"""Every bad-file case: a DataError (a ValueError) naming the file, the line/row and the fault."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from initwise.data import DataError, load

# (file name, content, load kwargs, expected line (None: whole file), message fragment)
TEXT_CASES = [
    # svmlight / libsvm
    ("miss.svm", "1 1:1\n2:1 3:1\n", {}, 2, "missing label"),
    ("nolabel.svm", "1 1:1\nabc 3:1\n", {}, 2, "label 'abc' is not a number"),
    ("nanlabel.svm", "nan 1:1\n", {}, 1, "label 'nan' is not finite"),
    ("emptylab.svm", "1,,2 1:1\n", {}, 1, "empty label"),
    ("neg.svm", "1 1:1\n0 2:1\n1 -4:2\n", {}, 3, "feature index -4 is negative"),
    ("range.svm", "1 1:1\n1 2:1 9:1\n", {"n_features": 5}, 2, "out of range for n_features=5"),
    ("zero.svm", "1 1:1\n1 0:1\n", {"zero_based": False}, 2, "index 0 in a 1-based file"),
    ("dup.svm", "1 1:1 4:1 4:2\n", {}, 1, "duplicate feature index 4 after 4"),
    ("order.svm", "1 1:1\n\n1 5:1 3:1\n", {}, 3, "decreasing feature index 3 after 5"),
    ("nan.svm", "1 1:1\n1 2:nan\n", {}, 2, "value 'nan' of feature 2 is not finite"),
    ("inf.svm", "# c\n1 2:-inf\n", {}, 2, "is not finite"),
    ("big.svm", "1 2:1\n1 2:-1e39\n", {}, 2, "value '-1e39' of feature 2 overflows float32"),
    ("tok.svm", "1 1:1 7\n", {}, 1, "token '7' is not <index>:<value>"),
    ("tok2.svm", "1 1:1:1\n", {}, 1, "token '1:1:1' is not <index>:<value>"),
    ("val.svm", "1 1:1\n1 2:abc\n", {}, 2, "value 'abc' in '2:abc' is not a number"),
    ("idx.svm", "1 1.5:1\n", {}, 1, "feature index '1.5' in '1.5:1' is not an integer"),
    ("huge.svm", "1 99999999999999999999:1\n", {}, 1, "feature index 99999999999999999999 is too"),
    ("empty.svm", "", {}, None, "no data lines"),
    ("comments.svm", "# only\n\n   \n", {}, None, "no data lines"),
    # CSV
    ("ragged.csv", "a,b,y\n1,2,0\n3,1\n", {"target": "y"}, 3, "2 fields, but the header has 3"),
    ("long.csv", "a,b\n1,2\n1,2\n1,2,3\n", {}, 4, "3 fields, but the header has 2"),
    (
        "text.csv",
        "a,color,y\n1,2,0\n2,red,1\n",
        {"target": "y"},
        3,
        "column 'color': value 'red' is not a number",
    ),
    ("hole.csv", "a,b\n1,\n", {}, 2, "column 'b': missing value"),
    ("nan.csv", "a,b\n1,2\n1,nan\n", {}, 3, "column 'b': value nan is not finite"),
    ("inf.csv", "a,b\n1,2\n-inf,2\n", {}, 3, "column 'a': value -inf is not finite"),
    ("big.csv", "a,b\n1,2\n1,4e38\n", {}, 3, "column 'b': value 4e+38 overflows float32"),
    ("nolab.csv", "a,y\n1,0\n2,\n", {"target": "y"}, 3, "missing label in target column 'y'"),
    ("nanlab.csv", "a,y\n1,NaN\n", {"target": "y"}, 2, "label 'NaN' in target column 'y'"),
    (
        "target.csv",
        "a,b\n1,2\n",
        {"target": "label"},
        1,
        "unknown target column 'label'; the columns are ['a', 'b']",
    ),
    ("empty.csv", "", {}, 1, "empty file"),
    ("header.csv", "a,b\n", {}, None, "no data rows"),
    ("dupcol.csv", "a,a\n1,2\n", {}, 1, "duplicate column name 'a'"),
    ("range.csv", "a,b\n1,2\n", {"n_features": 3}, None, "2 feature columns, but n_features=3"),
]


def _check(err: DataError, path: str, line: int | None, fragment: str, unit: str = "line"):
    msg = str(err)
    assert isinstance(err, ValueError)
    assert err.path == path and msg.startswith(path)
    assert err.line == line, msg
    if line is not None:
        assert f", {unit} {line}:" in msg
    assert fragment in msg, msg
    assert err.remedy and msg.endswith(err.remedy)


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "line", "fragment"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES]
)
def test_bad_text_file(write, name, content, kwargs, line, fragment):
    path = write(name, content)
    with pytest.raises(DataError) as info:
        load(path, **kwargs)
    _check(info.value, path, line, fragment)


def test_error_in_a_later_block_names_the_right_line(write):
    from initwise.data import read_svmlight

    lines = [f"1 {i + 1}:1" for i in range(9)]
    lines[6] = "1 3:1 2:1"
    path = write("late.svm", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        read_svmlight(path, block_lines=2)
    _check(info.value, path, 7, "decreasing feature index 2 after 3")


def test_not_utf8(write):
    path = write("bin.svm", b"1 1:1\n\xff\xfe 2:1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load(path)


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=re.escape(f"{path}: no such file")):
        load(path)


# ------------------------------------------------------------------------ binary formats
def _npy(tmp_path, name, array, **kw):
    path = str(tmp_path / name)
    np.save(path, array, **kw)
    return path


def test_npy_nan_names_row_and_column(tmp_path):
    A = np.ones((4, 3))
    A[2, 1] = np.nan
    path = _npy(tmp_path, "a.npy", A)
    with pytest.raises(DataError) as info:
        load(path)
    _check(info.value, path, 3, "column '1': value nan is not finite", unit="row")


@pytest.mark.parametrize(
    ("array", "kwargs", "fragment"),
    [
        (np.ones(3), {}, "expected a 2-D"),
        (np.ones((0, 3)), {}, "no examples"),
        (np.array([[{}]], dtype=object), {"allow_pickle": True}, "not a readable numeric"),
        (np.array([["a", "b"]]), {}, "not numeric"),
        (np.ones((2, 2)), {"target": 5}, "target column index 5 out of range"),
    ],
)
def test_npy_bad(tmp_path, array, kwargs, fragment):
    target = kwargs.pop("target", None)
    path = _npy(tmp_path, "b.npy", array, **kwargs)
    with pytest.raises(DataError) as info:
        load(path, target=target)
    _check(info.value, path, None, fragment)


def test_garbage_binary_files(write):
    for name in ("g.npy", "g.npz", "g.parquet"):
        if name.endswith("parquet"):
            pytest.importorskip("pyarrow")
        path = write(name, b"this is not the format it claims")
        with pytest.raises(DataError, match="not a readable"):
            load(path)


def test_npz_bad(tmp_path):
    p = str(tmp_path / "k.npz")
    np.savez(p, features=np.eye(2))
    with pytest.raises(DataError, match=r"no feature matrix: keys are \['features'\]"):
        load(p)
    np.savez(p, X=np.eye(3), y=np.arange(2))
    with pytest.raises(DataError, match="'y' has 2 entries for 3 rows"):
        load(p)
    with pytest.raises(DataError, match="unknown target key 'label'"):
        load(p, target="label")
    np.savez(p, X=np.eye(2), y=np.array([0.5, np.nan]))
    with pytest.raises(DataError) as info:
        load(p)
    _check(info.value, p, 2, "label is not finite", unit="row")
    X = sp.csr_matrix(np.array([[0, 1.0], [0, 0], [np.inf, 0]]))
    sp.save_npz(p, X)
    with pytest.raises(DataError) as info:
        load(p)
    _check(info.value, p, 3, "column 0: value inf is not finite", unit="row")
    sp.save_npz(p, sp.csr_matrix(np.array([[0, 0], [0, 1e300]])))
    with pytest.raises(DataError) as info:
        load(p)
    _check(info.value, p, 2, "column 1: value 1e+300 overflows float32", unit="row")
    sp.save_npz(p, sp.csr_matrix((0, 4)))
    with pytest.raises(DataError, match="no examples"):
        load(p)


def test_parquet_bad(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = str(tmp_path / "t.parquet")
    pq.write_table(pa.table({"x": [1.0, 2.0], "city": ["a", "b"], "y": [0, 1]}), p)
    with pytest.raises(DataError, match="column 'city' has type string, not numeric"):
        load(p, target="y")
    with pytest.raises(DataError, match=r"unknown target column 'label'; the columns are"):
        load(p, target="label")
    pq.write_table(pa.table({"x": [1.0, None, 3.0], "y": [0, 1, 1]}), p)
    with pytest.raises(DataError) as info:
        load(p, target="y")
    _check(info.value, p, 2, "column 'x': missing (null) value", unit="row")
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [0, None]}), p)
    with pytest.raises(DataError) as info:
        load(p, target="y")
    _check(info.value, p, 2, "column 'y': missing label", unit="row")
    pq.write_table(pa.table({"x": [1.0, float("nan")]}), p)
    with pytest.raises(DataError) as info:
        load(p)
    _check(info.value, p, 2, "column 'x': value nan is not finite", unit="row")
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64())}), p)
    with pytest.raises(DataError, match="no examples"):
        load(p)
