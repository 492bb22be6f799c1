"""Streaming statistics for calibration: per-unit output moments, per-column input moments,
sparse effective fan-in; all mergeable across batches and across ``torch.distributed`` ranks.

Every statistic is a float64 sum (or max), so the global calibration batch decides: on several
ranks the sums are all-reduced with ``SUM`` and the maxima with ``MAX`` (a minimum is the ``MAX``
of the negation), and every rank computes the same numbers from the same totals.

Sparse inputs are never densified: a ``torch.sparse`` COO/CSR tensor or an EmbeddingBag triple is
read through its values only, O(nnz) time and memory.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ColumnStats", "SparseInputStats", "UnitStats", "dist_active", "sparse_values"]


def dist_active() -> bool:
    """True when a ``torch.distributed`` process group is initialized with more than one rank."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce_(t: torch.Tensor, op: str) -> torch.Tensor:
    """All-reduce ``t`` in place (``"sum"`` or ``"max"``) when distributed; return it."""
    if not dist_active():
        return t
    import torch.distributed as dist

    red = dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX
    if dist.get_backend() == "nccl":
        dist.all_reduce(t, op=red)
        return t
    cpu = t.cpu()
    dist.all_reduce(cpu, op=red)
    t.copy_(cpu)
    return t


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum a short list of floats over ranks (identity when not distributed)."""
    t = torch.tensor(values, dtype=torch.float64)
    return _reduce_(t, "sum").tolist()


def _rows(out: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """View a layer output as (samples, units) in float64."""
    x = out.detach()
    if unit_dim != -1 and unit_dim != x.dim() - 1:
        x = x.movedim(unit_dim, -1)
    return x.reshape(-1, x.shape[-1]).double()


class UnitStats:
    """Per-unit moments of a layer's output over all samples (and positions) seen.

    Attributes:
        count: samples seen (rows of the (samples, units) view).
        s1, s2: per-unit sums of ``z`` and ``z**2``.
        zmax, zmin: per-unit maximum and minimum.
        sat: per-unit count of samples with ``|z| > sat_threshold`` (saturating activations).
    """

    def __init__(self, sat_threshold: float | None = None) -> None:
        self.sat_threshold = sat_threshold
        self.count = 0.0
        self.s1: torch.Tensor | None = None
        self.s2: torch.Tensor | None = None
        self.zmax: torch.Tensor | None = None
        self.zmin: torch.Tensor | None = None
        self.sat: torch.Tensor | None = None

    def update(self, out: torch.Tensor, unit_dim: int) -> None:
        """Add one output tensor (units along ``unit_dim``)."""
        z = _rows(out, unit_dim)
        if self.s1 is None:
            n = z.shape[1]
            self.s1 = z.new_zeros(n)
            self.s2 = z.new_zeros(n)
            self.zmax = z.new_full((n,), -float("inf"))
            self.zmin = z.new_full((n,), float("inf"))
            self.sat = z.new_zeros(n)
        if z.shape[0] == 0:
            return
        self.count += z.shape[0]
        self.s1 += z.sum(0)
        self.s2 += (z * z).sum(0)
        self.zmax = torch.maximum(self.zmax, z.amax(0))
        self.zmin = torch.minimum(self.zmin, z.amin(0))
        if self.sat_threshold is not None:
            self.sat += (z.abs() > self.sat_threshold).sum(0).double()

    def all_reduce(self) -> UnitStats:
        """Merge the statistics of all ranks (no-op when not distributed)."""
        if self.s1 is None or not dist_active():
            return self
        n = self.s1.numel()
        sums = torch.cat([self.s1.new_tensor([self.count]), self.s1, self.s2, self.sat])
        _reduce_(sums, "sum")
        self.count = float(sums[0])
        self.s1, self.s2, self.sat = sums[1 : n + 1], sums[n + 1 : 2 * n + 1], sums[2 * n + 1 :]
        maxes = torch.cat([self.zmax, -self.zmin])
        _reduce_(maxes, "max")
        self.zmax, self.zmin = maxes[:n], -maxes[n:]
        return self

    @property
    def empty(self) -> bool:
        """True when no sample was seen."""
        return self.s1 is None or self.count == 0

    def mean(self) -> torch.Tensor:
        """Per-unit mean."""
        return self.s1 / self.count

    def var(self) -> torch.Tensor:
        """Per-unit (population) variance, clamped at zero."""
        m = self.mean()
        return (self.s2 / self.count - m * m).clamp_min(0.0)

    def shifted_second_moment(self, shift: torch.Tensor) -> torch.Tensor:
        """Per-unit ``E[(z - shift)^2]`` (e.g. ``shift`` = the bias: the weight part's moment)."""
        return (self.s2 - 2 * shift * self.s1 + self.count * shift * shift) / self.count


class ColumnStats:
    """Per-input-column mean and variance of a dense layer input (columns along ``dim``)."""

    def __init__(self) -> None:
        self.count = 0.0
        self.s1: torch.Tensor | None = None
        self.s2: torch.Tensor | None = None

    def update(self, x: torch.Tensor, dim: int) -> None:
        """Add one input tensor."""
        z = _rows(x, dim)
        if self.s1 is None:
            self.s1 = z.new_zeros(z.shape[1])
            self.s2 = z.new_zeros(z.shape[1])
        self.count += z.shape[0]
        self.s1 += z.sum(0)
        self.s2 += (z * z).sum(0)

    def all_reduce(self) -> ColumnStats:
        """Merge the statistics of all ranks."""
        if self.s1 is None or not dist_active():
            return self
        n = self.s1.numel()
        sums = _reduce_(torch.cat([self.s1.new_tensor([self.count]), self.s1, self.s2]), "sum")
        self.count, self.s1, self.s2 = float(sums[0]), sums[1 : n + 1], sums[n + 1 :]
        return self

    def mean(self) -> torch.Tensor:
        """Per-column mean."""
        return self.s1 / self.count

    def std(self) -> torch.Tensor:
        """Per-column population standard deviation."""
        m = self.mean()
        return (self.s2 / self.count - m * m).clamp_min(0.0).sqrt()

    def rms(self) -> torch.Tensor:
        """Per-column root mean square."""
        return (self.s2 / self.count).sqrt()


def sparse_values(x: Any) -> tuple[torch.Tensor, int] | None:
    """The stored values and the row count of a sparse input, or ``None`` if ``x`` is not sparse.

    Accepts a ``torch.sparse`` COO/CSR tensor (an uncoalesced COO tensor is coalesced so that
    duplicate entries add up as they do in a product) or an EmbeddingBag-style tuple
    ``(indices, offsets, per_sample_weights)`` (``None`` weights mean ones).
    """
    if isinstance(x, torch.Tensor):
        if x.layout == torch.sparse_coo:
            x = x if x.is_coalesced() else x.coalesce()
            return x.values(), x.shape[0]
        if x.layout in (torch.sparse_csr, torch.sparse_bsr):
            return x.values(), x.shape[0]
        return None
    if isinstance(x, (tuple, list)) and len(x) in (2, 3) and isinstance(x[0], torch.Tensor):
        indices, offsets = x[0], x[1]
        weights = x[2] if len(x) == 3 else None
        if not isinstance(offsets, torch.Tensor) or indices.is_floating_point():
            return None
        vals = weights if weights is not None else torch.ones(indices.numel())
        return vals, offsets.numel()
    return None


class SparseInputStats:
    """Effective fan-in of a sparse (or lookup) input, O(nnz).

    ``eff_fan_in = E_rows[sum_j x_j^2]``: the pre-activation of a layer with i.i.d. weights of
    variance ``s^2`` has second moment ``s^2 * eff_fan_in``; ``value_ms = E_nonzeros[x^2]``: the
    mean square of a stored value (1 for binary or one-hot data).
    """

    def __init__(self) -> None:
        self.rows = 0.0
        self.nnz = 0.0
        self.sum_sq = 0.0

    def update(self, values: torch.Tensor, rows: int) -> None:
        """Add the stored values of ``rows`` rows."""
        v = values.detach().double()
        self.rows += rows
        self.nnz += v.numel()
        self.sum_sq += float((v * v).sum())

    def all_reduce(self) -> SparseInputStats:
        """Merge the statistics of all ranks."""
        self.rows, self.nnz, self.sum_sq = all_reduce_sum([self.rows, self.nnz, self.sum_sq])
        return self

    @property
    def eff_fan_in(self) -> float:
        """``E_rows[sum_j x_j^2]``."""
        return self.sum_sq / max(self.rows, 1.0)

    @property
    def value_ms(self) -> float:
        """``E_nonzeros[x^2]`` (1 when no value was seen)."""
        return self.sum_sq / self.nnz if self.nnz > 0 and self.sum_sq > 0 else 1.0
