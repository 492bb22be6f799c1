"""initwise.nn: layers for hard inputs.

* :class:`SparseLinear` -- ``nn.Linear`` for torch sparse / EmbeddingBag-style inputs, costing
  O(nnz), with optional sparse gradients.
"""

from initwise.nn.sparse_linear import SparseLinear, sparse_to_bag

__all__ = ["SparseLinear", "sparse_to_bag"]
