"""A data set's sparsity and scale profile as plain, small, plottable data.

Turns :class:`initwise.data.FeatureStats` (per-feature arrays that may have 2^20 entries) into a
few hundred numbers: the distribution of non-zeros per row, and each feature's document frequency
and root-mean-square value by rank (log-spaced ranks, so a Zipf tail stays visible).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["stats_profile"]


def _by_rank(values: np.ndarray, points: int) -> tuple[list[int], list[float]]:
    seen = np.sort(values[values > 0])[::-1]
    if seen.size == 0:
        return [], []
    ranks = np.unique(np.geomspace(1, seen.size, num=min(points, seen.size)).astype(np.int64))
    return ranks.tolist(), seen[ranks - 1].astype(float).tolist()


def stats_profile(stats: Any, points: int = 120) -> dict[str, Any]:
    """Summarize a FeatureStats for the HTML report.

    Args:
        stats: a :class:`initwise.data.FeatureStats` (``n_rows``, ``n_features``, ``nnz``,
            ``doc_freq``, ``second_moment``, ``nnz_per_row_hist``).
        points: at most this many points per curve. Default 120.

    Returns:
        ``{"n_rows", "n_features", "density", "features_seen", "nnz_per_row": {"mean", "max"},
        "nnz_hist": (k, rows), "doc_freq": (rank, freq), "rms": (rank, rms)}``.
    """
    n = max(int(stats.n_rows), 1)
    doc_freq = np.asarray(stats.doc_freq, dtype=np.float64) / n
    rms = np.sqrt(np.asarray(stats.second_moment, dtype=np.float64))
    hist = np.asarray(stats.nnz_per_row_hist, dtype=np.int64)
    ks = np.nonzero(hist)[0]
    mean_nnz = float((np.arange(hist.size) * hist).sum() / max(hist.sum(), 1))
    if ks.size > points:  # bin the histogram
        edges = np.unique(np.linspace(0, hist.size, points + 1).astype(np.int64))
        sums = np.add.reduceat(hist, edges[:-1])
        nnz_hist = (edges[:-1].tolist(), sums.astype(float).tolist())
    else:
        nnz_hist = (ks.tolist(), hist[ks].astype(float).tolist())
    return {
        "n_rows": int(stats.n_rows),
        "n_features": int(stats.n_features),
        "density": float(stats.nnz) / (n * max(int(stats.n_features), 1)),
        "features_seen": int((doc_freq > 0).sum()),
        "nnz_per_row": {"mean": mean_nnz, "max": int(ks.max()) if ks.size else 0},
        "nnz_hist": nnz_hist,
        "doc_freq": _by_rank(doc_freq, points),
        "rms": _by_rank(rms, points),
    }
