"""initwise.nn: layers and layer add-ons for hard inputs.

* :class:`SparseLinear` -- ``nn.Linear`` for torch sparse / EmbeddingBag-style inputs, costing
  O(nnz), with optional sparse gradients.
* :func:`add_input_standardization` / :func:`bake_input_standardization` /
  :func:`remove_input_standardization` -- a per-column ``(x - m) / s`` carried by a layer (buffers
  + forward pre-hook), added by :func:`initwise.init` to layers reading raw, badly scaled columns.
"""

from initwise.nn.sparse_linear import SparseLinear, sparse_to_bag
from initwise.nn.standardize import (
    add_input_standardization,
    bake_input_standardization,
    has_input_standardization,
    remove_input_standardization,
)

__all__ = [
    "SparseLinear",
    "add_input_standardization",
    "bake_input_standardization",
    "has_input_standardization",
    "remove_input_standardization",
    "sparse_to_bag",
]
