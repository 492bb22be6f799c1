"""Built-in data sets that need no download: a real sparse text corpus and a synthetic CTR set.

* :func:`stdlib_text` -- bag-of-words classification built from the docstrings and comments of
  the installed Python standard library, labelled by module family, hashed to ``n_features``.
* :func:`ctr_synthetic` -- click-through-rate-like data: many one-hot categorical fields with
  Zipf-distributed category frequencies, hashed to ``n_features`` columns, clicks drawn from a
  planted teacher with per-category weights and low-rank field-pair interactions.

Both are deterministic given their arguments (and, for :func:`stdlib_text`, the Python version,
whose standard library is the corpus). Hashing uses ``zlib.crc32`` and a fixed integer mixer,
never Python's per-process salted ``hash()``.

Cache: :func:`stdlib_text` stores its result as ``.npz`` in ``$INITWISE_CACHE_DIR``, else
``$XDG_CACHE_HOME/initwise``, else ``~/.cache/initwise``, keyed by Python version and parameters.
An unreadable cache file is rebuilt; an unwritable cache directory only costs the rebuild (a
``RuntimeWarning`` says so).
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import sys
import sysconfig
import tokenize
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from initwise.data.dataset import Dataset

__all__ = ["cache_dir", "ctr_synthetic", "stdlib_text"]

_BUILDER_VERSION = 1
_WORD = re.compile(r"[a-z][a-z0-9]+")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
# Private/implementation modules folded into the family users know them by.
_ALIASES = {
    "_pydecimal": "decimal",
    "_pyio": "io",
    "_collections_abc": "collections",
    "_compat_pickle": "pickle",
    "ntpath": "os",
    "posixpath": "os",
    "genericpath": "os",
    "sre_compile": "re",
    "sre_parse": "re",
    "sre_constants": "re",
    "turtledemo": "turtle",
}
_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def cache_dir() -> Path:
    """The directory of initwise's built-in data cache (not created here).

    ``$INITWISE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/initwise``, else ``~/.cache/initwise``.
    """
    if os.environ.get("INITWISE_CACHE_DIR"):
        return Path(os.environ["INITWISE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "initwise"


# --------------------------------------------------------------------------- stdlib corpus
def _family(rel_parts: list[str]) -> str:
    top = rel_parts[0].removesuffix(".py")
    return _ALIASES.get(top, top.lstrip("_"))


def _source_files(root: Path, only: frozenset[str] | None) -> list[tuple[Path, str]]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = Path(dirpath) / name
                family = _family(list(path.relative_to(root).parts))
                if only is None or family in only:
                    files.append((path, family))
    return files


def _docstring_texts(tree: ast.AST) -> list[str]:
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, _DOC_NODES):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                texts.extend(re.split(r"\n\s*\n", doc))  # one document per paragraph
    return texts


def _comment_blocks(source: bytes) -> list[str]:
    blocks: list[str] = []
    current: list[str] = []
    previous_line = -2
    try:
        for tok in tokenize.tokenize(io.BytesIO(source).readline):
            if tok.type != tokenize.COMMENT:
                continue
            if tok.start[0] != previous_line + 1 and current:
                blocks.append(" ".join(current))
                current = []
            current.append(tok.string)
            previous_line = tok.start[0]
    except (tokenize.TokenError, SyntaxError):
        pass  # keep the blocks read before the error; the file's docstrings are still used
    if current:
        blocks.append(" ".join(current))
    return blocks


def _stdlib_documents(
    min_tokens: int, only: frozenset[str] | None
) -> tuple[list[list[str]], list[str]]:
    """All (token list, family) documents of the standard library, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[list[str]] = []
    families: list[str] = []
    seen: set[str] = set()
    for path, family in _source_files(root, only):
        source = path.read_bytes()
        try:
            texts = _docstring_texts(ast.parse(source))
        except (SyntaxError, ValueError):
            texts = []  # e.g. lib2to3 test fixtures written in Python 2
        for text in texts + _comment_blocks(source):
            tokens = _WORD.findall(text.lower())
            key = " ".join(tokens)
            if len(tokens) < min_tokens or key in seen:
                continue  # too short, or an exact duplicate (licence headers, generated code)
            seen.add(key)
            docs.append(tokens)
            families.append(family)
    return docs, families


def _hash_documents(
    docs: list[list[str]], n_features: int, seed: int, bigrams: bool
) -> sp.csr_matrix:
    cache: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    salt = seed & 0xFFFFFFFF
    for tokens in docs:
        grams = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])] if bigrams else tokens
        for g in grams:
            col = cache.get(g)
            if col is None:
                raw = g.encode()
                h = zlib.crc32(raw, salt)
                if n_features > 2**32:  # widen the 32-bit hash for astronomically wide tables
                    h |= zlib.crc32(raw, salt ^ 0x9E3779B9) << 32
                col = cache[g] = h % n_features
            indices.append(col)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    X = sp.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(docs), n_features),
    )
    X.sum_duplicates()  # counts as values, sorted column indices
    return X


def _build_stdlib_text(
    n_features: int,
    seed: int,
    min_docs: int,
    min_tokens: int,
    bigrams: bool,
    families: tuple[str, ...] | None,
) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    only = None if families is None else frozenset(families)
    if only is not None:
        known = {f for _, f in _source_files(Path(sysconfig.get_paths()["stdlib"]), None)}
        if only - known:
            raise ValueError(
                f"families: unknown module families {sorted(only - known)}; this standard "
                f"library has {sorted(known)}"
            )
    docs, labels = _stdlib_documents(min_tokens, only)
    names, counts = np.unique(np.asarray(labels), return_counts=True)
    kept = [str(n) for n, c in zip(names, counts) if c >= min_docs]
    label_of = {name: i for i, name in enumerate(kept)}
    rows = [i for i, f in enumerate(labels) if f in label_of]
    order = np.random.default_rng(seed).permutation(len(rows))
    rows = [rows[i] for i in order]
    X = _hash_documents([docs[i] for i in rows], n_features, seed, bigrams)
    y = np.asarray([label_of[labels[i]] for i in rows], dtype=np.int64)
    return X, y, kept


def _cache_path(params: dict[str, Any]) -> Path:
    key = repr(
        (_BUILDER_VERSION, sys.version, sysconfig.get_paths()["stdlib"], sorted(params.items()))
    )
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_dir() / f"stdlib_text-{tag}-{digest}.npz"


def _load_cached(path: Path) -> tuple[sp.csr_matrix, np.ndarray, list[str]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            return X, z["y"].astype(np.int64), [str(s) for s in z["classes"]]
    except (OSError, ValueError, KeyError):
        return None  # corrupt or from another format: rebuilt and overwritten by the caller


def _store_cached(path: Path, X: sp.csr_matrix, y: np.ndarray, classes: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(
            tmp,
            data=X.data,
            indices=X.indices,
            indptr=X.indptr,
            shape=np.asarray(X.shape),
            y=y,
            classes=np.asarray(classes),
        )
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(
            f"stdlib_text: could not write the cache file {path} ({exc}); the data set will be "
            "rebuilt next time. Set INITWISE_CACHE_DIR to a writable directory to cache it.",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}; got {value}")
    return int(value)


def _check_families(families: Any) -> list[str]:
    if isinstance(families, str) or not all(isinstance(f, str) for f in families):
        raise TypeError(
            f"families: expected a sequence of module family names such as ('json', 'email'); "
            f"got {families!r}"
        )
    if not families:
        raise ValueError("families: expected at least one module family name, or None for all")
    return list(families)


def stdlib_text(
    n_features: int = 2**18,
    *,
    seed: int = 0,
    max_docs: int | None = None,
    min_docs: int = 100,
    min_tokens: int = 3,
    bigrams: bool = False,
    families: Sequence[str] | None = None,
    cache: bool = True,
) -> Dataset:
    """A real sparse bag-of-words classification set: the Python standard library's own prose.

    Documents are every docstring paragraph (module, class, function; split at blank lines) and
    every block of consecutive ``#`` comment lines of the installed standard library's ``.py``
    files (``ast`` for docstrings, ``tokenize`` for comments). Directories named ``test``,
    ``tests``, ``idle_test``, ``site-packages`` and ``__pycache__`` are skipped. A document's
    label is its module family: the top-level package or module (``email``, ``asyncio``,
    ``decimal``...; private twins such as ``_pydecimal`` or ``posixpath`` are folded into their
    public family). Tokens are lowercase words ``[a-z][a-z0-9]+`` (plus adjacent-word bigrams
    when ``bigrams``); documents with fewer than ``min_tokens`` tokens and exact duplicates
    (licence headers, generated codecs) are dropped, then families with fewer than ``min_docs``
    documents. Each token goes to column ``crc32(token, seed) % n_features`` (two crc32s when
    ``n_features > 2**32``); values are counts.

    On CPython 3.11.7 with the defaults: 20,701 documents, 58 classes (102 to 2,023 documents
    each; label entropy 3.71 nats), 14.8 non-zeros per row; ~10 s to build on one core, then
    read from the cache in ~0.1 s (``benchmarks/trainability.py --family text --describe``
    prints the figures for your Python).

    Args:
        n_features: number of hashed columns. Default ``2**18``.
        seed: salts the hash and orders the rows (a seeded permutation). Default 0.
        max_docs: keep only the first ``max_docs`` rows of that order; ``None`` keeps all.
        min_docs: drop families with fewer documents. Default 100.
        min_tokens: drop documents with fewer tokens. Default 3.
        bigrams: also hash adjacent-word bigrams. Default ``False``.
        families: read only these module families (e.g. ``("json", "email")``), for small,
            fast versions; ``None`` reads the whole library. Default ``None``.
        cache: read/write the built matrix under :func:`cache_dir`. Default ``True``.

    Returns:
        A :class:`~initwise.data.Dataset` with CSR float32 ``X`` (rows, n_features), int64 ``y``
        and ``class_names`` (the families, sorted), named ``"stdlib_text"``.

    Raises:
        TypeError: if an integer argument is not an int.
        ValueError: if an argument is out of range, or no family has ``min_docs`` documents.
    """
    params = {
        "n_features": _check_int("n_features", n_features, 2),
        "seed": _check_int("seed", seed, 0),
        "min_docs": _check_int("min_docs", min_docs, 1),
        "min_tokens": _check_int("min_tokens", min_tokens, 1),
        "bigrams": bool(bigrams),
        "families": None if families is None else tuple(sorted(_check_families(families))),
    }
    if max_docs is not None:
        max_docs = _check_int("max_docs", max_docs, 1)
    path = _cache_path(params)
    built = _load_cached(path) if cache else None
    if built is None:
        built = _build_stdlib_text(**params)
        if cache:
            _store_cached(path, *built)
    X, y, classes = built
    if not classes:
        raise ValueError(
            f"min_docs: no module family has {min_docs} documents in this standard library; "
            "lower min_docs."
        )
    if max_docs is not None:
        X, y = X[:max_docs], y[:max_docs]
    return Dataset(X, y, class_names=classes, name="stdlib_text")


# --------------------------------------------------------------------------- CTR synthetic
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fixed, well-mixing bijection on uint64 (vectorised)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def _zipf_draw(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    cdf = np.cumsum(np.arange(1, cardinality + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n)), cardinality - 1)


def _standardise(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else v - v.mean()


def _bias_for_rate(logit: np.ndarray, rate: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(60):  # bisection: mean(sigmoid(logit + b)) is increasing in b
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(logit + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def ctr_synthetic(
    n_rows: int = 100_000,
    n_fields: int = 24,
    n_features: int = 2**20,
    *,
    seed: int = 0,
    max_cardinality: int = 100_000,
    zipf_exponent: float = 1.1,
    rank: int = 4,
    n_pairs: int | None = None,
    interaction_scale: float = 1.5,
    click_rate: float = 0.25,
    with_teacher: bool = False,
) -> Dataset | tuple[Dataset, np.ndarray]:
    """Synthetic click-through data: hashed one-hot categorical fields and a planted teacher.

    Field ``f`` has a cardinality log-spaced between 4 and ``max_cardinality`` (fields shuffled)
    and draws its category for each row from a Zipf law, ``P(k) ∝ (k+1)^-zipf_exponent``, so a few
    categories are frequent and most are rare, as in real ad logs. Each (field, category) is hashed
    by SplitMix64 to one of ``n_features`` columns (value 1; colliding fields of a row add up),
    giving ~``n_fields`` non-zeros per row. The teacher is a field-aware factorisation machine:

    .. math::

        z = b + s_1\\,\\mathrm{std}\\Big(\\sum_f w_f[c_f]\\Big)
            + s_2\\,\\mathrm{std}\\Big(\\sum_{(i,j) \\in P} u_{ij}\\,\\langle v_i[c_i], v_j[c_j]
            \\rangle\\Big), \\qquad y \\sim \\mathrm{Bernoulli}(\\sigma(z)),

    with ``w_f[k] ~ N(0, a_f^2)`` (field importances ``a_f`` log-normal), rank-``rank`` vectors
    ``v_f[k] ~ N(0, I/rank)``, ``n_pairs`` random field pairs ``P`` with ``u_ij ~ N(0, 1)``,
    ``std`` the standardisation over rows, ``s_1 = 1``, ``s_2 = interaction_scale``, and ``b``
    solved so the mean click probability is ``click_rate``. The teacher sees the raw categories,
    the student only their hashes, so collisions are realistic, irreducible noise. Everything is
    drawn from ``numpy.random.default_rng(seed)``: same arguments, same bits.

    Args:
        n_rows: rows. Default 100,000.
        n_fields: categorical fields (one non-zero each). Default 24.
        n_features: hashed columns. Default ``2**20``.
        seed: seed of every random choice. Default 0.
        max_cardinality: categories of the largest field. Default 100,000.
        zipf_exponent: Zipf exponent of category frequencies (> 0). Default 1.1.
        rank: rank of the interaction vectors. Default 4.
        n_pairs: interacting field pairs; ``None`` means ``n_fields``. Default ``None``.
        interaction_scale: std of the interaction term relative to the per-category term.
            Default 1.5.
        click_rate: mean click probability, in (0, 1). Default 0.25.
        with_teacher: also return the teacher's click probabilities. Default ``False``.

    Returns:
        A :class:`~initwise.data.Dataset` (CSR float32 ``X``, int64 ``y`` in {0, 1},
        ``class_names`` ``["no_click", "click"]``, named ``"ctr_synthetic"``); with
        ``with_teacher``, the tuple ``(dataset, p)`` with ``p`` float64 (n_rows,).

    Raises:
        TypeError: if an integer argument is not an int.
        ValueError: if an argument is out of range.

    Example:
        >>> ds = ctr_synthetic(1000, n_fields=20, n_features=2**20, seed=0)
        >>> ds.X.shape, int(ds.X.sum()), ds.class_names
        ((1000, 1048576), 20000, ['no_click', 'click'])

    References:
        Rendle, "Factorization Machines", ICDM 2010; Juan et al., "Field-aware Factorization
        Machines for CTR Prediction", RecSys 2016; Weinberger et al., "Feature Hashing for Large
        Scale Multitask Learning", ICML 2009, arXiv:0902.2206.
    """
    n_rows = _check_int("n_rows", n_rows, 1)
    n_fields = _check_int("n_fields", n_fields, 2)
    n_features = _check_int("n_features", n_features, 2)
    seed = _check_int("seed", seed, 0)
    max_cardinality = _check_int("max_cardinality", max_cardinality, 4)
    rank = _check_int("rank", rank, 1)
    max_pairs = n_fields * (n_fields - 1) // 2
    n_pairs = n_fields if n_pairs is None else _check_int("n_pairs", n_pairs, 0)
    if n_pairs > max_pairs:
        raise ValueError(f"n_pairs: at most {max_pairs} pairs of {n_fields} fields; got {n_pairs}")
    if not zipf_exponent > 0:
        raise ValueError(f"zipf_exponent: expected > 0; got {zipf_exponent!r}")
    if not 0.0 < click_rate < 1.0:
        raise ValueError(f"click_rate: expected a number in (0, 1); got {click_rate!r}")
    if not interaction_scale >= 0:
        raise ValueError(f"interaction_scale: expected >= 0; got {interaction_scale!r}")

    rng = np.random.default_rng(seed)
    cards = np.geomspace(4, max_cardinality, n_fields).round().astype(np.int64)
    cards = cards[rng.permutation(n_fields)]
    cats = np.stack([_zipf_draw(rng, n_rows, int(c), zipf_exponent) for c in cards], axis=1)
    importance = rng.lognormal(0.0, 0.5, n_fields)
    linear = np.zeros(n_rows)
    vectors = []
    for f, c in enumerate(cards):
        linear += (rng.standard_normal(int(c)) * importance[f])[cats[:, f]]
        vectors.append(rng.standard_normal((int(c), rank)) / np.sqrt(rank))
    pair_ids = rng.choice(max_pairs, size=n_pairs, replace=False)
    iu, ju = np.triu_indices(n_fields, k=1)
    inter = np.zeros(n_rows)
    for p, u in zip(pair_ids, rng.standard_normal(n_pairs)):
        i, j = iu[p], ju[p]
        inter += u * np.einsum("nr,nr->n", vectors[i][cats[:, i]], vectors[j][cats[:, j]])
    logit = _standardise(linear) + interaction_scale * _standardise(inter)
    prob = 1.0 / (1.0 + np.exp(-(logit + _bias_for_rate(logit, click_rate))))
    y = (rng.random(n_rows) < prob).astype(np.int64)

    salt = _mix64(np.asarray([seed], dtype=np.uint64))[0]
    keys = (np.arange(n_fields, dtype=np.uint64) << np.uint64(40)) + cats.astype(np.uint64)
    cols = (_mix64(keys ^ salt) % np.uint64(n_features)).astype(np.int64).ravel()
    X = sp.csr_matrix(
        (np.ones(cols.size, dtype=np.float32), cols, np.arange(0, cols.size + 1, n_fields)),
        shape=(n_rows, n_features),
    )
    X.sum_duplicates()
    ds = Dataset(X, y, class_names=["no_click", "click"], name="ctr_synthetic")
    return (ds, prob) if with_teacher else ds
