"""`SparseLinear`: ``y = x W^T + b`` for sparse ``x`` at the cost of its non-zeros.

A hashed bag-of-words or categorical input is 2^18..2^24 wide with a dozen non-zeros per row. A
dense ``nn.Linear`` on it multiplies by zeros; ``torch.sparse.mm`` works but its backward builds
a dense (in, out) gradient through a generic kernel. ``SparseLinear`` routes every sparse form
through ``torch.nn.functional.embedding_bag(mode="sum", per_sample_weights=...)``, torch's
gather-and-sum kernel (fused on CPU and CUDA), whose backward can emit a *sparse* gradient that
touches only the rows of the features present in the batch (``sparse_grad=True``, for
``torch.optim.SparseAdam``/``SGD``).

Storage layout: ``weight`` has shape ``(in_features, out_features)`` -- the transpose of
``nn.Linear.weight`` -- because that is the table layout ``embedding_bag`` gathers rows from.
:meth:`SparseLinear.initwise_fans` reports ``fan_in = in_features``, ``fan_out = out_features``
so initwise's schemes and policies treat it exactly like ``nn.Linear`` whatever the layout.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initwise.schemes.basic import uniform_
from initwise.schemes.fans import Fans
from initwise.schemes.variance import kaiming_uniform_

__all__ = ["SparseLinear", "sparse_to_bag"]

BagTriple = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def sparse_to_bag(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Convert a 2-D torch sparse COO or CSR tensor to ``embedding_bag`` arguments.

    No densification: O(nnz + n_rows) memory. A COO tensor that is not coalesced is coalesced
    first (duplicates summed, sorted by row), which does not change ``x @ W``.

    Args:
        x: a 2-D ``torch.sparse_coo`` or ``torch.sparse_csr`` tensor.

    Returns:
        ``(indices, offsets, per_sample_weights, include_last_offset)``: for CSR the offsets are
        the ``n_rows + 1`` row pointers (``include_last_offset=True``); for COO the ``n_rows``
        bag starts (``False``).

    Raises:
        ValueError: if ``x`` is not 2-D or has another layout.

    Example:
        >>> x = torch.tensor([[0.0, 2.0], [0.0, 0.0], [3.0, 0.0]]).to_sparse_csr()
        >>> idx, off, w, last = sparse_to_bag(x)
        >>> idx.tolist(), off.tolist(), w.tolist(), last
        ([1, 0], [0, 1, 1, 2], [2.0, 3.0], True)
    """
    if x.dim() != 2:
        raise ValueError(f"sparse input: expected 2-D (batch, in_features); got {tuple(x.shape)}")
    if x.layout == torch.sparse_csr:
        return x.col_indices(), x.crow_indices(), x.values(), True
    if x.layout == torch.sparse_coo:
        if not x.is_coalesced():
            x = x.coalesce()
        rows, cols = x.indices()
        counts = torch.bincount(rows, minlength=x.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        return cols, offsets, x.values(), False
    raise ValueError(
        f"sparse input: layout {x.layout} is not supported; use a COO or CSR tensor "
        "(x.to_sparse_csr())"
    )


class SparseLinear(nn.Module):
    r"""A linear layer for sparse inputs: ``y = x W^T + b``, drop-in for ``nn.Linear``.

    ``forward`` accepts

    * a 2-D torch sparse tensor (COO or CSR), shape ``(batch, in_features)``;
    * an ``nn.EmbeddingBag``-style tuple ``(indices, offsets)`` or
      ``(indices, offsets, per_sample_weights)``: row ``i`` is the bag
      ``indices[offsets[i]:offsets[i+1]]`` (``offsets`` has one entry per row; a
      ``per_sample_weights`` of ``None`` means all ones) -- what
      :func:`initwise.data.csr_to_bag` and ``Dataset.batches(layout="bag")`` produce;
    * a dense tensor ``(..., in_features)``, multiplied as ``nn.Linear`` does.

    Sparse forms cost O(nnz * out_features); duplicate indices in a row are summed; empty rows
    give ``bias``. Index bounds are checked by torch's kernel.

    ``weight`` is stored as ``(in_features, out_features)`` (the transpose of ``nn.Linear``;
    see the module docstring); ``initwise_fans`` reports the fans of the ``nn.Linear`` it
    replaces. :meth:`reset_parameters` draws the same bits as ``nn.Linear`` under the same seed
    (``U(-1/sqrt(in), 1/sqrt(in))`` for weight and bias), transposed.

    Args:
        in_features: input width (e.g. 2**18 hashed features).
        out_features: output width.
        bias: learn an additive bias. Default ``True``.
        sparse_grad: make ``weight.grad`` a sparse COO tensor holding only the rows of the
            features present in the batch (for ``torch.optim.SparseAdam``, or SGD without
            weight decay). Applies to sparse and bag inputs; dense input gives a dense gradient.
            Default ``False``.
        device: device of the parameters. Default ``None`` (torch's default device).
        dtype: dtype of the parameters. Default ``None`` (torch's default dtype).

    Raises:
        ValueError: if ``in_features`` or ``out_features`` is not a positive int; in
            ``forward``, if the input width is not ``in_features`` or a bag tuple is malformed.
        TypeError: in ``forward``, for an unsupported input type, or input values whose dtype
            differs from the weight's.

    Example:
        >>> layer = SparseLinear(2**18, 8)
        >>> x = torch.sparse_coo_tensor([[0, 0, 1], [5, 70000, 3]], [1.0, 2.0, 1.0], (2, 2**18),
        ...                             check_invariants=True)
        >>> layer(x).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        sparse_grad: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SparseLinear: {arg} must be a positive int; got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.sparse_grad = bool(sparse_grad)
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(in_features, out_features, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``nn.Linear``'s default init, bit for bit (transposed): ``U(+-1/sqrt(in_features))``.

        Args:
            generator: the random generator; ``None`` uses torch's global one, as
                ``nn.Linear`` does.
        """
        with torch.no_grad():
            w = torch.empty(
                self.out_features,
                self.in_features,
                device=self.weight.device,
                dtype=self.weight.dtype,
            )
            # initwise's schemes: torch's bits, and a generator= also on torch < 2.2
            kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            self.weight.copy_(w.t())
            del w
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                uniform_(self.bias, -bound, bound, generator=generator)

    def initwise_fans(self, name: str) -> Any:
        """Fans of ``weight``/``bias`` as for the ``nn.Linear`` this layer replaces.

        Returns:
            ``Fans(fan_in=in_features, fan_out=out_features, receptive_field=1)``.

        Raises:
            ValueError: for another parameter name.
        """
        if name not in ("weight", "bias"):
            raise ValueError(f"SparseLinear has parameters 'weight' and 'bias'; got {name!r}")
        return Fans(fan_in=self.in_features, fan_out=self.out_features, receptive_field=1)

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, sparse_grad: bool = False) -> SparseLinear:
        """A SparseLinear computing exactly what ``linear`` computes (weights copied)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear: expected nn.Linear; got {type(linear).__name__}")
        w = linear.weight
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            sparse_grad=sparse_grad,
            device=w.device,
            dtype=w.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(w.t())
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer

    def forward(self, x: torch.Tensor | BagTriple) -> torch.Tensor:
        """Apply the layer to a sparse tensor, a bag tuple, or a dense tensor (see class doc)."""
        if isinstance(x, (tuple, list)):
            return self._bag(*self._check_bag(x), include_last_offset=False)
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"SparseLinear: expected a torch sparse/dense tensor or an (indices, offsets, "
                f"per_sample_weights) tuple; got {type(x).__name__}"
            )
        if x.layout == torch.strided:
            if x.shape[-1] != self.in_features:
                raise ValueError(
                    f"SparseLinear: input width {x.shape[-1]} != in_features {self.in_features}"
                )
            self._check_dtype(x.dtype)
            out = x @ self.weight
            return out if self.bias is None else out + self.bias
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"SparseLinear: sparse input of shape {tuple(x.shape)}; expected "
                f"(batch, {self.in_features})"
            )
        indices, offsets, values, last = sparse_to_bag(x)
        return self._bag(indices, offsets, values, include_last_offset=last)

    def _check_bag(self, x: tuple | list) -> BagTriple:
        if len(x) not in (2, 3):
            raise ValueError(
                f"SparseLinear: a bag input is (indices, offsets[, "
                f"per_sample_weights]); got a {len(x)}-tuple"
            )
        indices, offsets = x[0], x[1]
        weights = x[2] if len(x) == 3 else None
        if not all(isinstance(t, torch.Tensor) for t in (indices, offsets)) or not (
            weights is None or isinstance(weights, torch.Tensor)
        ):
            raise TypeError(
                "SparseLinear: a bag input is a tuple of tensors (indices int64, "
                "offsets int64, per_sample_weights float or None)"
            )
        if indices.dim() != 1 or offsets.dim() != 1:
            raise ValueError("SparseLinear: bag indices and offsets must be 1-D tensors")
        if indices.numel():
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= self.in_features:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"SparseLinear: bag index {bad} is outside [0, {self.in_features}) "
                    f"(in_features); indices are feature ids: hash or clip the data to "
                    f"in_features columns, or build the layer with a larger in_features"
                )
        return indices, offsets, weights

    def _check_dtype(self, dtype: torch.dtype) -> None:
        if dtype != self.weight.dtype:
            raise TypeError(
                f"SparseLinear: input values are {dtype} but the weight is "
                f"{self.weight.dtype}; convert one (e.g. x.to({self.weight.dtype}) or "
                f"layer.to({dtype}))"
            )

    def _bag(
        self,
        indices: torch.Tensor,
        offsets: torch.Tensor,
        weights: torch.Tensor | None,
        *,
        include_last_offset: bool,
    ) -> torch.Tensor:
        if weights is not None:
            self._check_dtype(weights.dtype)
        if offsets.dtype != indices.dtype:
            offsets = offsets.to(indices.dtype)
        out = F.embedding_bag(
            indices,
            self.weight,
            offsets,
            mode="sum",
            sparse=self.sparse_grad,
            per_sample_weights=weights,
            include_last_offset=include_last_offset,
        )
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, sparse_grad={self.sparse_grad}"
        )
