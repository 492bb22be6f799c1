"""initwise.data: read sparse and tabular data, batch it into torch without densifying.

* :class:`Dataset` -- features (scipy CSR or dense) + targets; ``batches()`` as torch sparse CSR,
  dense, or ``nn.EmbeddingBag`` triples; ``split()``; ``stats()``.
* :func:`load` -- svmlight/libsvm, ``.npz``, ``.npy``, CSV, Parquet into a :class:`Dataset`;
  bad files raise :class:`DataError` naming the file, the line and the problem; what a reader
  decides on its own (svmlight base, CSV delimiter, a label-like column) is a :class:`DataWarning`.
* :func:`feature_stats` -- per-feature frequency, mean, second moment in one streaming pass.
* :func:`csr_to_torch`, :func:`csr_to_bag` -- scipy.sparse -> torch in O(nnz) memory.
* :func:`stdlib_text`, :func:`ctr_synthetic` -- built-in data sets that need no download: real
  sparse text from the installed Python standard library; CTR-like hashed categoricals.
"""

from initwise.data.builtin import ctr_synthetic, stdlib_text
from initwise.data.convert import as_csr, csr_to_bag, csr_to_torch
from initwise.data.dataset import LAYOUTS, Dataset
from initwise.data.errors import DataError, DataWarning
from initwise.data.load import FORMATS, detect_format, load
from initwise.data.stats import FeatureStats, feature_stats
from initwise.data.svmlight import read_svmlight
from initwise.data.targets import encode_targets, multilabel_targets

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "DataError",
    "DataWarning",
    "Dataset",
    "FeatureStats",
    "as_csr",
    "ctr_synthetic",
    "csr_to_bag",
    "csr_to_torch",
    "detect_format",
    "encode_targets",
    "feature_stats",
    "load",
    "multilabel_targets",
    "read_svmlight",
    "stdlib_text",
]
