"""Statistics of a batch's features, computed without densifying sparse input.

Dense inputs are read as ``(n_rows, n_features)`` (trailing dimensions flattened); torch sparse
COO/CSR tensors through their stored values and column indices; EmbeddingBag triples
``(indices, offsets, per_sample_weights)`` through the bag layout. Memory is O(n_features + nnz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from initwise.graph import flatten_tensors

__all__ = ["DataProfile", "profile_inputs"]


@dataclass
class DataProfile:
    """Per-feature summary of one batch's inputs (plain numbers and small tensors).

    Attributes:
        layout: ``"dense"``, ``"sparse"``, ``"bag"``, ``"ids"`` (integer inputs) or ``"none"``.
        n_rows: rows in the batch.
        n_features: feature columns (``None`` when unknown, e.g. a bag without a table size).
        nnz_per_row: mean non-zeros per row; nnz_min/nnz_max their range.
        density: fraction of non-zero entries.
        nonfinite: NaN/Inf count; nonfinite_features: a few offending column indices.
        mean, rms, std: per-feature tensors (float64; ``std`` only for dense input).
        common_mode: ||mean||^2 / E||x||^2 (dense; the share of input energy that is the mean).
    """

    layout: str = "none"
    n_rows: int = 0
    n_features: int | None = None
    nnz_per_row: float | None = None
    nnz_min: int | None = None
    nnz_max: int | None = None
    density: float | None = None
    nonfinite: int = 0
    nonfinite_features: list[int] = field(default_factory=list)
    mean: torch.Tensor | None = None
    rms: torch.Tensor | None = None
    std: torch.Tensor | None = None
    common_mode: float | None = None
    source: str = ""

    @property
    def sparse(self) -> bool:
        """Sparse in the doctor's sense: stored sparse, or dense with density below 1 %."""
        if self.layout in ("sparse", "bag"):
            return True
        return self.layout == "dense" and self.density is not None and self.density < 0.01 \
            and (self.n_features or 0) >= 1000

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (feature-scale quantiles instead of per-feature vectors)."""
        out: dict[str, Any] = {
            "layout": self.layout, "n_rows": self.n_rows, "n_features": self.n_features,
            "sparsity": None if self.density is None else 1.0 - self.density,
            "density": self.density, "nnz_per_row": self.nnz_per_row,
            "nnz_min": self.nnz_min, "nnz_max": self.nnz_max, "nonfinite": self.nonfinite,
            "common_mode": self.common_mode, "source": self.source,
        }
        for key, vec in (("feature_rms", self.rms), ("feature_std", self.std)):
            if vec is not None and vec.numel():
                seen = vec[vec > 0]
                if seen.numel():
                    out[key] = {"min": float(seen.min()), "median": float(seen.median()),
                                "max": float(seen.max())}
        if self.std is not None and self.n_rows >= 2:
            out["constant_features"] = int((self.std == 0).sum())
        return out


def _features_tensor(inputs: Any) -> tuple[Any, str]:
    if isinstance(inputs, tuple) and len(inputs) in (2, 3) and isinstance(inputs[0], torch.Tensor) \
            and not inputs[0].is_floating_point() and inputs[0].dim() == 1 \
            and isinstance(inputs[1], torch.Tensor) and inputs[1].dim() == 1:
        return inputs, "bag"
    leaves = flatten_tensors(inputs)
    for t in leaves:
        if t.layout in (torch.sparse_coo, torch.sparse_csr) and t.dim() == 2:
            return t, "sparse"
    for t in leaves:
        if t.is_floating_point() and t.dim() >= 2:
            return t, "dense"
    if leaves:
        return leaves[0], "ids"
    return None, "none"


def _finish_sparse(p: DataProfile, cols: torch.Tensor, vals: torch.Tensor, nnz: torch.Tensor,
                   n_features: int) -> DataProfile:
    vals = vals.double()
    finite = torch.isfinite(vals)
    p.nonfinite = int((~finite).sum())
    if p.nonfinite:
        p.nonfinite_features = sorted({int(c) for c in cols[~finite][:1000].tolist()})[:10]
    vals = vals.masked_fill(~finite, 0.0)
    n = max(p.n_rows, 1)
    p.n_features = n_features
    p.mean = torch.zeros(n_features, dtype=torch.float64).index_add_(0, cols, vals) / n
    p.rms = (torch.zeros(n_features, dtype=torch.float64).index_add_(0, cols, vals * vals)
             / n).sqrt()
    nnz = nnz.double()
    p.nnz_per_row = float(nnz.mean()) if nnz.numel() else 0.0
    p.nnz_min = int(nnz.min()) if nnz.numel() else 0
    p.nnz_max = int(nnz.max()) if nnz.numel() else 0
    p.density = float(nnz.sum()) / max(p.n_rows * n_features, 1)
    return p


def _profile_sparse(x: torch.Tensor) -> DataProfile:
    x = x.detach().cpu()
    p = DataProfile(layout="sparse", n_rows=int(x.shape[0]))
    if x.layout == torch.sparse_csr:
        crow, cols, vals = x.crow_indices(), x.col_indices(), x.values()
        nnz = crow[1:] - crow[:-1]
    else:
        x = x.coalesce()
        rows, cols = x.indices()
        vals = x.values()
        nnz = torch.bincount(rows, minlength=p.n_rows)
    return _finish_sparse(p, cols.long(), vals, nnz, int(x.shape[1]))


def _profile_bag(bag: tuple) -> DataProfile:
    indices, offsets = bag[0].detach().cpu().long(), bag[1].detach().cpu().long()
    psw = bag[2] if len(bag) == 3 and isinstance(bag[2], torch.Tensor) else None
    vals = psw.detach().cpu() if psw is not None else torch.ones(indices.numel())
    ends = torch.cat([offsets[1:], torch.tensor([indices.numel()])])
    p = DataProfile(layout="bag", n_rows=int(offsets.numel()))
    n_features = int(indices.max()) + 1 if indices.numel() else 1
    p = _finish_sparse(p, indices, vals, ends - offsets, n_features)
    p.n_features = None  # the table size is the model's; filled by the caller when known
    return p


def _profile_dense(x: torch.Tensor) -> DataProfile:
    x = x.detach().cpu()
    n = int(x.shape[0])
    if n == 0 or x.numel() == 0:  # no rows (or no features): nothing to profile
        return DataProfile(layout="dense", n_rows=n,
                           n_features=int(math.prod(x.shape[1:])) if x.dim() > 1 else 0,
                           source="empty batch")
    z = x.reshape(n, -1).double()
    p = DataProfile(layout="dense", n_rows=n, n_features=int(z.shape[1]))
    finite = torch.isfinite(z)
    p.nonfinite = int((~finite).sum())
    if p.nonfinite:
        p.nonfinite_features = torch.nonzero((~finite).any(0)).flatten()[:10].tolist()
    z = z.masked_fill(~finite, 0.0)
    cnt = finite.sum(0).clamp_min(1).double()
    p.mean = z.sum(0) / cnt
    second = (z * z).sum(0) / cnt
    p.rms = second.sqrt()
    p.std = (second - p.mean ** 2).clamp_min(0).sqrt()
    nz = (z != 0).sum(1).double()
    p.nnz_per_row, p.nnz_min, p.nnz_max = float(nz.mean()), int(nz.min()), int(nz.max())
    p.density = float(nz.sum()) / max(z.numel(), 1)
    energy = float(second.sum())
    p.common_mode = float((p.mean ** 2).sum()) / energy if energy > 0 else None
    return p


def profile_inputs(inputs: Any) -> DataProfile:
    """Profile the feature matrix of a batch's inputs.

    The features are the EmbeddingBag triple, the first 2-D sparse tensor, or the first floating
    dense tensor with at least 2 dimensions; integer-only inputs (token ids) give layout "ids".

    Args:
        inputs: the model inputs (tensors, tuples, dicts; already converted to torch).

    Returns:
        The profile.
    """
    x, layout = _features_tensor(inputs)
    if layout == "bag":
        return _profile_bag(x)
    if layout == "sparse":
        return _profile_sparse(x)
    if layout == "dense":
        return _profile_dense(x)
    if layout == "ids":
        return DataProfile(layout="ids", n_rows=int(x.shape[0]) if x.dim() else 1,
                           source="integer inputs")
    return DataProfile()

