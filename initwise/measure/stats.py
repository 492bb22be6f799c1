"""Streaming statistics: per-unit output moments, per-column input moments, sparse fan-in.

Every statistic is a float64 sum (or a max/min), so it is mergeable across batches
(:meth:`UnitStats.merge`) and across ``torch.distributed`` ranks (``all_reduce``: sums with
``SUM``, maxima with ``MAX``, a minimum as the ``MAX`` of its negation); every rank then computes
the same numbers from the same totals. Counters are kept as device tensors while they
accumulate (no host synchronization per update) and read as Python numbers on demand.

No activation tensor is kept: each update folds one output into O(#units) sums. A "unit" is the
feature dimension of a layer's output (channels of a convolution, see
:attr:`initwise.measure.LayerFacts.unit_dim`); rows are samples times positions.

Sparse inputs are never densified: a ``torch.sparse`` COO/CSR tensor or an EmbeddingBag triple is
read through its stored values only, O(nnz) time and memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "ColumnStats", "SparseInputStats", "UnitStats", "all_reduce_sum", "dist_active",
    "sparse_values",
]


def dist_active() -> bool:
    """True when a ``torch.distributed`` process group is initialized with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce_(t: torch.Tensor, op: str) -> torch.Tensor:
    """All-reduce ``t`` in place (``"sum"`` or ``"max"``) when distributed; return it."""
    if not dist_active():
        return t
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
    """View a layer output as (rows, units) in float64 (0-d and 1-d outputs included)."""
    y = out.detach()
    if y.dim() == 0:
        y = y.reshape(1, 1)
    elif y.dim() == 1:
        y = y.reshape(-1, 1) if unit_dim == 0 else y.reshape(1, -1)
        unit_dim = -1
    if unit_dim not in (-1, y.dim() - 1):
        y = y.movedim(unit_dim, -1)
    return y.reshape(-1, y.shape[-1]).double()


class UnitStats:
    """Per-unit moments of a layer's output (its pre-activation) over all rows seen.

    Args:
        sat_threshold: count, per unit, the rows with ``|z| > sat_threshold`` (a saturating
            activation's flat region, :attr:`initwise.ActivationFacts.sat_threshold`).
        post_fn: the activation as a torch callable; when given, the moments of ``phi(z)`` over
            all elements are kept too.

    Attributes:
        count: rows seen (samples x positions). calls: outputs folded in.
        s1, s2: per-unit sums of ``z`` and ``z**2`` (float64; non-finite elements count as 0).
        zmax, zmin: per-unit maximum and minimum over finite elements.
        sat: per-unit count of saturated rows (``None`` without a threshold).
        dtype: the dtype of the last output seen.
    """

    def __init__(self, sat_threshold: float | None = None,
                 post_fn: Callable[[torch.Tensor], Any] | None = None) -> None:
        self.sat_threshold = sat_threshold
        self.post_fn = post_fn
        self.count = 0
        self.calls = 0
        self.dtype = ""
        self.s1: torch.Tensor | None = None
        self.s2: torch.Tensor | None = None
        self.zmax: torch.Tensor | None = None
        self.zmin: torch.Tensor | None = None
        self.sat: torch.Tensor | None = None
        # [finite elements, elements > 0, non-finite elements, post n, post sum, post sum sq]
        self._counts: torch.Tensor | None = None

    # ---- accumulation ------------------------------------------------------------------
    def update(self, out: torch.Tensor, unit_dim: int = -1) -> None:
        """Fold one output tensor (units along ``unit_dim``) into the sums; keep no reference.

        An output whose unit count differs from the first one seen is ignored (a module called
        on tensors of different widths is summarized by its first width).
        """
        self.calls += 1
        self.dtype = str(out.dtype).replace("torch.", "")
        z = _rows(out, unit_dim)
        n = z.shape[1]
        if self.s1 is None:
            self._allocate(n, z)
        elif self.s1.numel() != n:
            return
        if z.shape[0] == 0:
            return
        finite = torch.isfinite(z)
        z = z.masked_fill(~finite, 0.0)
        big = torch.finfo(z.dtype).max
        self.s1 += z.sum(0)
        self.s2 += (z * z).sum(0)
        self.zmax = torch.maximum(self.zmax, z.masked_fill(~finite, -big).amax(0))
        self.zmin = torch.minimum(self.zmin, z.masked_fill(~finite, big).amin(0))
        self.count += z.shape[0]
        n_fin = finite.sum()
        counts = [n_fin, (z > 0).sum(), finite.numel() - n_fin]
        if self.sat is not None:
            self.sat += (z.abs() > self.sat_threshold).sum(0).double()
        post = self._post(z)
        if post is not None:
            counts += [post.new_tensor(float(post.numel())), post.sum(), (post * post).sum()]
        else:
            counts += [z.new_zeros(())] * 3
        self._counts += torch.stack([c.double() for c in counts])

    def _allocate(self, n: int, like: torch.Tensor) -> None:
        self.s1 = like.new_zeros(n)
        self.s2 = like.new_zeros(n)
        self.zmax = like.new_full((n,), -float("inf"))
        self.zmin = like.new_full((n,), float("inf"))
        self.sat = like.new_zeros(n) if self.sat_threshold is not None else None
        self._counts = like.new_zeros(6)

    def _post(self, z: torch.Tensor) -> torch.Tensor | None:
        if self.post_fn is None:
            return None
        try:
            post = self.post_fn(z)
        except Exception:  # noqa: BLE001 - the post-activation moments are optional
            return None
        return post if isinstance(post, torch.Tensor) and post.shape == z.shape else None

    def merge(self, other: UnitStats) -> UnitStats:
        """Add ``other``'s sums into this one (same units); return ``self``."""
        if other.s1 is None:
            return self
        if self.s1 is None:
            self._allocate(other.s1.numel(), other.s1)
        if other.s1.numel() != self.s1.numel():
            raise ValueError(f"UnitStats.merge: {other.s1.numel()} units vs {self.s1.numel()}.")
        self.count += other.count
        self.calls += other.calls
        self.dtype = other.dtype or self.dtype
        self.s1 += other.s1
        self.s2 += other.s2
        self.zmax = torch.maximum(self.zmax, other.zmax)
        self.zmin = torch.minimum(self.zmin, other.zmin)
        if self.sat is not None and other.sat is not None:
            self.sat += other.sat
        self._counts += other._counts
        return self

    def all_reduce(self) -> UnitStats:
        """Merge the statistics of all ranks (no-op when not distributed)."""
        if self.s1 is None or not dist_active():
            return self
        n = self.s1.numel()
        sat = self.sat if self.sat is not None else self.s1.new_zeros(n)
        sums = torch.cat([self.s1.new_tensor([float(self.count)]), self.s1, self.s2, sat,
                          self._counts])
        _reduce_(sums, "sum")
        self.count = int(sums[0])
        self.s1, self.s2 = sums[1:n + 1], sums[n + 1:2 * n + 1]
        if self.sat is not None:
            self.sat = sums[2 * n + 1:3 * n + 1]
        self._counts = sums[3 * n + 1:]
        maxes = _reduce_(torch.cat([self.zmax, -self.zmin]), "max")
        self.zmax, self.zmin = maxes[:n], -maxes[n:]
        return self

    # ---- counters ------------------------------------------------------------------------
    def _count(self, i: int) -> float:
        return 0.0 if self._counts is None else float(self._counts[i])

    @property
    def rows(self) -> int:
        """Rows seen (alias of :attr:`count`)."""
        return self.count

    @property
    def units(self) -> int:
        """Number of units (0 before the first output)."""
        return 0 if self.s1 is None else int(self.s1.numel())

    @property
    def empty(self) -> bool:
        """True when no row was seen."""
        return self.s1 is None or self.count == 0

    @property
    def elems(self) -> int:
        """Finite elements seen."""
        return int(self._count(0))

    @property
    def positive(self) -> int:
        """Finite elements > 0."""
        return int(self._count(1))

    @property
    def nonfinite(self) -> int:
        """NaN / Inf elements seen."""
        return int(self._count(2))

    # ---- derived statistics ----------------------------------------------------------------
    def mean(self) -> torch.Tensor:
        """Per-unit mean."""
        return self.s1 / self.count

    def var(self) -> torch.Tensor:
        """Per-unit (population) variance across rows, clamped at zero."""
        m = self.s1 / max(self.count, 1)
        return (self.s2 / max(self.count, 1) - m * m).clamp_min(0.0)

    def shifted_second_moment(self, shift: torch.Tensor) -> torch.Tensor:
        """Per-unit ``E[(z - shift)^2]`` (e.g. ``shift`` = the bias: the weight part's moment)."""
        return (self.s2 - 2 * shift * self.s1 + self.count * shift * shift) / self.count

    def pre_std(self) -> float:
        """sqrt of the mean over units of the across-rows variance (bias-invariant signal)."""
        return math.sqrt(float(self.var().mean())) if self.units else float("nan")

    def rms(self) -> float:
        """Root mean square over all elements."""
        return math.sqrt(float(self.s2.sum()) / max(self.count * self.units, 1))

    def signal_fraction(self) -> float:
        """Sum of per-unit variances over sum of per-unit second moments (1 - mean correlation)."""
        total = float(self.s2.sum()) / max(self.count, 1)
        return float(self.var().sum()) / total if total > 0 else float("nan")

    def dead_units(self) -> int:
        """Units never > 0 on any row (ReLU family: never active on any sample)."""
        return int((self.zmax <= 0).sum()) if self.zmax is not None else 0

    def saturated_fraction(self) -> float | None:
        """Fraction of elements in the flat region (``None`` without a threshold)."""
        if self.sat is None:
            return None
        return float(self.sat.sum()) / max(self.count * self.units, 1)

    def post_std(self) -> float | None:
        """Std of ``phi(z)`` over all elements (``None`` without ``post_fn``)."""
        n = self._count(3)
        if n == 0:
            return None
        m = self._count(4) / n
        return math.sqrt(max(self._count(5) / n - m * m, 0.0))


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
