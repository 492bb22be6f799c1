"""Issue 14's file-reading cases, in-process: :func:`initwise.data.load` and the CLI loaders.

Each reader decision that used to be silent is a :class:`~initwise.data.DataWarning` with a
``kind``; each bad file is a :class:`~initwise.data.DataError` naming the file, the line and
the remedy; pickles are refused and their payload never runs.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import warnings

import numpy as np
import pytest
import torch

from initwise._loading import LoadError, load_data, load_weights, static_batch_size
from initwise.cli import BUILTIN_POLICIES
from initwise.data import DataError, DataWarning, load
from initwise.data.tabular import LABEL_NAMES, label_like_column, sniff_delimiter
from initwise.policy import policies


def _load(path, **kwargs):
    """``load`` with every DataWarning recorded: (dataset, [warning, ...])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = load(path, **kwargs)
    return data, [w.message for w in caught if isinstance(w.message, DataWarning)]


def _real_table(n: int = 40, last=None) -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(n, 3))
    if last is not None:
        X[:, -1] = last
    return X


# ----------------------------------------------------------- 1. label-like columns
@pytest.mark.parametrize("name", [*LABEL_NAMES, "Label", " TARGET ", "Y"])
def test_label_like_by_name(name):
    assert label_like_column(["a", name, "b"], _real_table()) == (name, f"it is named {name!r}")


@pytest.mark.parametrize("last,expected", [
    (np.arange(40) % 3, "3 distinct values (0..2)"),         # few integers next to reals
    (np.arange(40) % 2 * 5 - 1, "2 distinct values (-1..4)"),
    (np.arange(40) % 20, "20 distinct values (0..19)"),
])
def test_label_like_last_integer_column(last, expected):
    name, reason = label_like_column(["a", "b", "c"], _real_table(last=last))
    assert name == "c" and reason.startswith("it is the last column and holds only integers")
    assert expected in reason


@pytest.mark.parametrize("case,X", [
    ("21 distinct integers", _real_table(last=np.arange(40) % 21)),
    ("one value", _real_table(last=np.ones(40))),
    ("real last column", _real_table()),
    ("all-integer table (counts)", np.arange(120).reshape(40, 3) % 3),
    ("one column", (np.arange(40) % 2).reshape(40, 1)),
    ("one row", np.array([[0.5, 1.0]])),
])
def test_not_label_like(case, X):
    assert label_like_column([f"c{j}" for j in range(X.shape[1])], X) is None, case


def test_label_like_integer_column_not_last_is_not_flagged():
    X = _real_table()
    X[:, 0] = np.arange(40) % 3
    assert label_like_column(["a", "b", "c"], X) is None


def test_load_warns_on_a_label_column_without_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,class\n0.5,1\n1.5,0\n")
    data, (w,) = _load(path)
    assert (w.kind, w.column, data.n_features) == ("label_column", "class", 2)
    assert "no target given, but column 'class' looks like a label" in str(w)
    assert "pass target='class' to read it as the target" in str(w)
    data, said = _load(path, target="class")
    assert said == [] and data.n_features == 1 and data.y.tolist() == [1, 0]


def test_cli_loader_refuses_a_label_column_unless_no_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n0.5,1,0\n1.5,0,1\n")
    with pytest.raises(LoadError, match=r"pass --target label to use it as the target, or "
                       r"--no-target if the file has no target column"):
        load_data(str(path), no_target=False)
    with pytest.raises(LoadError) as err:  # a verb without --no-target (demo)
        load_data(str(path))
    assert str(err.value).endswith("pass --target label to use it as the target")
    assert load_data(str(path), no_target=True).n_features == 3
    assert load_data(str(path), target="label").n_features == 2


def test_cli_loader_quotes_a_column_name_for_the_shell(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,my target\n0.5,1\n1.5,0\n0.2,1\n")
    with pytest.raises(LoadError, match="pass --target 'my target'"):
        load_data(str(path), no_target=False)


# ----------------------------------------------------------- 2. svmlight base
def test_svmlight_one_based_auto_is_announced(tmp_path):
    path = tmp_path / "a.svm"
    path.write_text("1 1:1 3:2\n0 2:1\n")
    data, (w,) = _load(path)
    assert w.kind == "one_based" and data.n_features == 3
    assert "read as a 1-based svmlight file (index 1 is column 0), because feature index 0 " \
           "never occurs in it" in str(w)
    assert "pass zero_based=True if it is 0-based" in str(w)
    for zero_based, width in ((False, 3), (True, 4)):
        data, said = _load(path, zero_based=zero_based)
        assert said == [] and data.n_features == width
    path.write_text("1 0:1 3:2\n0 2:1\n")  # index 0 occurs: 0-based for certain, nothing said
    data, said = _load(path)
    assert said == [] and data.n_features == 4


def test_cli_loader_words_the_note_as_options(tmp_path):
    path = tmp_path / "a.svm"
    path.write_text("1 1:1 3:2\n0 2:1\n")
    notes: list[str] = []
    load_data(str(path), notes=notes)
    (note,) = notes
    assert "pass --zero-based if it is 0-based" in note and "or --one-based to state" in note
    assert "zero_based=" not in note
    with pytest.warns(DataWarning, match="--zero-based"):  # no list given: a warning
        load_data(str(path))


def test_format_options_for_the_wrong_format_are_errors(tmp_path):
    svm, csv = tmp_path / "a.svm", tmp_path / "a.csv"
    svm.write_text("1 1:1\n")
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="delimiter: only CSV files have a delimiter"):
        load(svm, delimiter=";")
    with pytest.raises(ValueError, match="zero_based: only svmlight files have 0- or 1-based"):
        load(csv, zero_based=True)
    with pytest.raises(ValueError, match="delimiter: expected one character"):
        load(csv, delimiter=";;")


# ----------------------------------------------------------- 3. delimiter
@pytest.mark.parametrize("header,expected", [
    ("a,b,c", ","), ("a;b;c", ";"), ("a\tb\tc", "\t"), ("a|b|c", "|"), ("abc", ","),
    ("a;b,c", ","),                 # a tie: comma
    ('"x;y;z",b,c', ","),           # quoted separators do not count
    ("a;b;c,d", ";"),
])
def test_sniff_delimiter(header, expected):
    assert sniff_delimiter(header) == expected


@pytest.mark.parametrize("sep,shown", [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_load_sniffs_and_announces_the_delimiter(tmp_path, sep, shown):
    rows = ["a,b,y", "0.5,1.5,0", "2.5,3.5,1"]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "s.csv").write_text("\n".join(r.replace(",", sep) for r in rows) + "\n")
    comma, said = _load(tmp_path / "c.csv", target="y")
    assert said == []
    data, (w,) = _load(tmp_path / "s.csv", target="y")
    assert w.kind == "delimiter" and f"read with the delimiter {shown}" in str(w)
    assert f"pass delimiter={sep!r} to state it" in str(w)
    np.testing.assert_array_equal(data.X, comma.X)
    assert data.feature_names == ["a", "b"] and data.y.tolist() == [0, 1]
    _, said = _load(tmp_path / "s.csv", target="y", delimiter=sep)
    assert said == []


def test_tsv_is_read_with_tabs_without_a_note(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n")
    data, said = _load(tmp_path / "t.tsv")
    assert said == [] and data.n_features == 2


# ----------------------------------------------------------- 4. corrupt / truncated archives
@pytest.mark.parametrize("opener,ext,tool", [
    (gzip.open, ".gz", "gzip -t"), (bz2.open, ".bz2", "bzip2 -t"), (lzma.open, ".xz", "xz -t")])
@pytest.mark.parametrize("kind", ["svm", "csv"])
def test_truncated_compressed_file_names_file_and_line(tmp_path, cut, opener, ext, tool, kind):
    if kind == "svm":
        text = "".join(f"{i % 2} {i % 7 + 1}:{i * 0.5}\n" for i in range(20000))
    else:
        text = "a,b\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20000))
    path = tmp_path / f"x.{kind}{ext}"
    path.write_bytes(cut(text.encode(), opener))
    with pytest.raises(DataError) as err:
        load(path)
    e = err.value
    # bz2 decodes whole 900 kB blocks: a cut first block gives no line at all.
    assert e.path == str(path) and e.line >= (1 if ext == ".bz2" else 2)
    after = f" after {e.line - 1} complete lines" if e.line > 1 else ""
    assert f"corrupt or truncated {ext[1:]} data{after} (" in e.problem
    assert f"{tool} x.{kind}{ext}" in e.remedy


def test_garbage_behind_a_gzip_magic_is_a_data_error(tmp_path):
    path = tmp_path / "x.svm.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(DataError, match=r"x.svm.gz, line 1: corrupt or truncated gz data \("):
        load(path)


# ----------------------------------------------------------- 5. torch.export batch size
def test_static_batch_size_of_exported_programs():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    static = torch.export.export(net, (torch.zeros(6, 4),)).module()
    assert static_batch_size(static) == 6
    dynamic = torch.export.export(net, (torch.zeros(6, 4),), dynamic_shapes=(
        {0: torch.export.Dim("batch")},)).module()
    assert static_batch_size(dynamic) is None
    assert static_batch_size(net) is None
    assert static_batch_size(torch.fx.symbolic_trace(net)) is None


# ----------------------------------------------------------- 7. policies
def test_builtin_policies_in_the_help_are_the_registered_ones():
    assert tuple(policies())[: len(BUILTIN_POLICIES)] == BUILTIN_POLICIES


# ----------------------------------------------------------- 8. pickles are refused
def test_the_payload_runs_when_unpickled(tmp_path, payload):
    marker = tmp_path / "ran"  # the refusals below are meaningful: the payload is live
    pickle.loads(pickle.dumps(payload(str(marker))))
    assert marker.exists()


def test_pickled_npy_and_npz_are_refused(tmp_path, payload):
    marker = tmp_path / "ran"
    np.save(tmp_path / "p.npy", np.array([payload(str(marker)), 1], dtype=object))
    np.savez(tmp_path / "p.npz", X=np.array([[payload(str(marker)), 1.0]], dtype=object))
    np.savez(tmp_path / "q.npz", X=np.ones((2, 2)), y=np.array([payload(str(marker)), 1],
                                                                dtype=object))
    for name, what in (("p.npy", "the .npy array"), ("p.npz", "an array of the .npz archive"),
                       ("q.npz", "an array of the .npz archive")):
        with pytest.raises(DataError) as err:
            load(tmp_path / name)
        assert err.value.path == str(tmp_path / name)
        assert f"{what} holds pickled Python objects" in err.value.problem
        assert "allow_pickle=False" in err.value.problem
    assert not marker.exists()


def test_pickled_weights_are_refused(tmp_path, payload):
    marker = tmp_path / "ran"
    torch.save({"weight": payload(str(marker))}, tmp_path / "w.pt")
    with pytest.raises(LoadError) as err:
        load_weights(torch.nn.Linear(2, 2), str(tmp_path / "w.pt"))
    message = str(err.value)
    assert "it holds pickled Python objects beyond tensors (the global" in message
    assert "weights_only=True" in message and "add_safe_globals" not in message
    assert not marker.exists()


def test_cli_delimiter_option_takes_tab_by_name():
    from initwise.cli import build_parser

    parse = build_parser().parse_args
    base = ["doctor", "m.py:f", "--data", "x.csv"]
    assert parse([*base, "--delimiter", "tab"]).delimiter == "\t"
    assert parse([*base, "--delimiter", "\\t"]).delimiter == "\t"
    assert parse([*base, "--delimiter", ";"]).delimiter == ";"
    assert parse(base).delimiter is None and parse(base).zero_based == "auto"
    assert parse([*base, "--one-based"]).zero_based is False


def test_cli_npy_target_is_a_column_index(tmp_path):
    X = np.column_stack([np.linspace(0, 1, 6), np.arange(6) % 2])
    np.save(tmp_path / "a.npy", X)
    data = load_data(str(tmp_path / "a.npy"), target="-1")
    assert data.n_features == 1 and data.y.tolist() == [0, 1, 0, 1, 0, 1]
