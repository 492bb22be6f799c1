"""Slow, obviously-correct twins for initwise.data (dense numpy, plain Python loops)."""

from __future__ import annotations

import numpy as np


def dense_feature_stats(X: np.ndarray) -> dict:
    """Every statistic of FeatureStats computed on the dense float64 matrix."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    row_nnz = (X != 0).sum(axis=1)
    return {
        "n_rows": n,
        "nnz": int((X != 0).sum()),
        "doc_freq": (X != 0).sum(axis=0),
        "mean": X.mean(axis=0),
        "second_moment": (X**2).mean(axis=0),
        "variance": X.var(axis=0),
        "max_abs": np.abs(X).max(axis=0),
        "min_value": float(X.min()),
        "max_value": float(X.max()),
        "row_nnz": row_nnz,
        "effective_fan_in": float((X**2).sum(axis=1).mean()),
    }


def parse_svmlight_slow(text: str, zero_based: bool) -> tuple[list[dict[int, float]], list[str]]:
    """One dict {column: value} per data line, and the label tokens; no validation."""
    rows, labels = [], []
    for line in text.splitlines():
        toks = line.split("#")[0].split()
        if not toks:
            continue
        labels.append(toks[0])
        row = {}
        for tok in toks[1:]:
            if tok.startswith("qid:"):
                continue
            i, v = tok.split(":")
            row[int(i) - (0 if zero_based else 1)] = float(v)
        rows.append(row)
    return rows, labels
