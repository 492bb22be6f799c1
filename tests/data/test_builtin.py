"""Tests of the built-in data sets: stdlib_text (a real corpus), ctr_synthetic (a teacher)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import scipy.sparse as sp

from initwise.data import builtin
from initwise.data.builtin import ctr_synthetic, stdlib_text

SMALL = {"families": ("json", "logging"), "min_docs": 10, "cache": False}


@pytest.fixture(scope="module")
def small_text():
    return stdlib_text(2**12, **SMALL)


def _same(a, b) -> bool:
    return (
        a.X.shape == b.X.shape
        and np.array_equal(a.X.indptr, b.X.indptr)
        and np.array_equal(a.X.indices, b.X.indices)
        and np.array_equal(a.X.data, b.X.data)
        and np.array_equal(a.y, b.y)
    )


def test_stdlib_text_shapes_labels_and_counts(small_text):
    ds = small_text
    assert sp.isspmatrix_csr(ds.X) and ds.X.dtype == np.float32 and ds.X.has_canonical_format
    assert ds.X.shape[1] == 2**12 and ds.X.shape[0] == len(ds.y) > 100
    assert ds.class_names == ["json", "logging"] and set(np.unique(ds.y)) == {0, 1}
    assert ds.name == "stdlib_text" and ds.task == "classification"
    # values are positive integer counts; every document keeps >= min_tokens (3) tokens
    assert (ds.X.data >= 1).all() and np.array_equal(ds.X.data, np.round(ds.X.data))
    assert (np.asarray(ds.X.sum(1)).ravel() >= 3).all()


def test_stdlib_text_deterministic_and_seeded(small_text):
    assert _same(small_text, stdlib_text(2**12, **SMALL))
    other = stdlib_text(2**12, seed=1, **SMALL)
    assert other.X.shape == small_text.X.shape
    # another seed: another hash salt and row order, same documents (same token totals)
    assert not np.array_equal(other.y, small_text.y)
    assert np.sort(np.asarray(other.X.sum(1)).ravel()).tolist() == np.sort(
        np.asarray(small_text.X.sum(1)).ravel()
    ).tolist()


def test_stdlib_text_max_docs_is_a_prefix(small_text):
    head = stdlib_text(2**12, max_docs=50, **SMALL)
    assert _same(head, small_text.subset(slice(0, 50)))


def test_hash_documents_matches_crc32_twin():
    docs = [["foo", "bar", "foo"], ["bar", "baz"]]
    X = builtin._hash_documents(docs, 1000, 7, bigrams=False).toarray()
    ref = np.zeros((2, 1000), dtype=np.float32)
    for i, tokens in enumerate(docs):
        for t in tokens:
            ref[i, zlib.crc32(t.encode(), 7) % 1000] += 1
    np.testing.assert_array_equal(X, ref)
    Xb = builtin._hash_documents(docs, 1000, 7, bigrams=True)
    assert Xb[0, zlib.crc32(b"foo bar", 7) % 1000] >= 1 and Xb.sum() == X.sum() + 3


def test_stdlib_text_same_bits_in_another_process(small_text):
    # load the module file alone (numpy + scipy only) to keep the child process light
    code = (
        "import importlib.util, sys, zlib\n"
        f"spec = importlib.util.spec_from_file_location('b', {builtin.__file__!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "X, y, _ = m._build_stdlib_text(2**12, 0, 10, 3, False, ('json', 'logging'))\n"
        "print(zlib.crc32(X.indices.astype('int32').tobytes()), zlib.crc32(y.tobytes()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    indices = small_text.X.indices.astype(np.int32).tobytes()
    expected = f"{zlib.crc32(indices)} {zlib.crc32(small_text.y.tobytes())}"
    assert out.stdout.strip() == expected


def test_stdlib_text_cache_roundtrip_and_corrupt_file(tmp_path, monkeypatch, small_text):
    monkeypatch.setenv("INITWISE_CACHE_DIR", str(tmp_path))
    kwargs = {**SMALL, "cache": True}
    first = stdlib_text(2**12, **kwargs)
    files = list(tmp_path.glob("stdlib_text-*.npz"))
    assert len(files) == 1 and _same(first, small_text)
    assert _same(stdlib_text(2**12, **kwargs), small_text)  # read back
    files[0].write_bytes(b"not an npz file")
    assert _same(stdlib_text(2**12, **kwargs), small_text)  # rebuilt, not crashed


def test_stdlib_text_unwritable_cache_warns_and_still_builds(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("INITWISE_CACHE_DIR", str(blocker / "sub"))
    with pytest.warns(RuntimeWarning, match="INITWISE_CACHE_DIR"):
        ds = stdlib_text(2**10, families=("json",), min_docs=10, cache=True)
    assert len(ds) > 50


def test_stdlib_text_huge_width_is_never_dense():
    ds = stdlib_text(2**40, families=("json",), min_docs=10, cache=False)  # 4 TiB per dense row
    assert ds.n_features == 2**40 and ds.X.nnz < 50 * len(ds)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_features": 1}, ValueError, "n_features"),
        ({"n_features": 2.5}, TypeError, "n_features"),
        ({"families": "json"}, TypeError, "families"),
        ({"families": ("no_such_module",)}, ValueError, "no_such_module"),
        ({"families": ("json",), "min_docs": 10**6}, ValueError, "min_docs"),
        ({"max_docs": 0}, ValueError, "max_docs"),
    ],
)
def test_stdlib_text_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        stdlib_text(**{"cache": False, **kwargs})


# --------------------------------------------------------------------------- ctr_synthetic
def test_ctr_shapes_one_hot_fields_and_determinism():
    ds = ctr_synthetic(3000, 20, 2**20, seed=3)
    X = ds.X
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.shape == (3000, 2**20)
    assert X.has_canonical_format
    np.testing.assert_array_equal(np.asarray(X.sum(1)).ravel(), 20.0)  # one 1 per field
    assert (np.diff(X.indptr) <= 20).all() and ds.class_names == ["no_click", "click"]
    again = ctr_synthetic(3000, 20, 2**20, seed=3)
    assert _same(ds, again)
    assert not np.array_equal(ctr_synthetic(3000, 20, 2**20, seed=4).X.indices, X.indices)


def test_ctr_click_rate_and_teacher():
    ds, p = ctr_synthetic(20_000, 24, 2**20, seed=0, click_rate=0.25, with_teacher=True)
    assert abs(p.mean() - 0.25) < 1e-6  # the bias is solved by bisection
    assert abs(ds.y.mean() - 0.25) < 0.015  # Bernoulli draws: 5 standard errors
    # the planted teacher carries signal: the rank AUC of p against y is well above 0.5
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = ds.y == 1
    auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    assert auc > 0.75


def test_zipf_draw_matches_probabilities():
    rng = np.random.default_rng(0)
    draws = builtin._zipf_draw(rng, 200_000, 50, 1.1)
    p = np.arange(1, 51, dtype=np.float64) ** -1.1
    p /= p.sum()
    freq = np.bincount(draws, minlength=50) / 200_000
    se = np.sqrt(p * (1 - p) / 200_000)
    assert draws.min() >= 0 and draws.max() < 50
    assert (np.abs(freq - p) < 5 * se).all()


def test_ctr_huge_width_is_never_dense():
    ds = ctr_synthetic(500, 24, 2**40, seed=0)
    assert ds.n_features == 2**40 and ds.X.nnz <= 500 * 24


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_rows": True}, TypeError, "n_rows"),
        ({"n_fields": 1}, ValueError, "n_fields"),
        ({"click_rate": 1.5}, ValueError, "click_rate"),
        ({"n_fields": 4, "n_pairs": 7}, ValueError, "n_pairs"),
        ({"zipf_exponent": 0.0}, ValueError, "zipf_exponent"),
    ],
)
def test_ctr_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ctr_synthetic(**{"n_rows": 100, **kwargs})
