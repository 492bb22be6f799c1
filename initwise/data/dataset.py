"""`Dataset`: a feature matrix (scipy CSR or dense ndarray) with targets, batched into torch.

Sparse matrices stay sparse end to end: batches are cut from the CSR matrix by rows and converted
to a torch sparse CSR tensor or an ``nn.EmbeddingBag`` triple in O(nnz of the batch) memory; only
``layout="dense"`` densifies, and then one batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from initwise.data._validate import check_batch_size, check_features, check_rows, check_targets
from initwise.data.convert import csr_to_bag, csr_to_torch
from initwise.data.stats import FeatureStats, feature_stats

__all__ = ["LAYOUTS", "Dataset"]

LAYOUTS = ("sparse", "dense", "bag")


class Dataset:
    """Features ``X`` (n_rows, n_features) and optional targets ``y``, batched into torch.

    Targets decide the task: 1-D integer ``y`` -> ``"classification"`` (labels 0..K-1, batches
    give int64); 2-D ``y`` of 0/1 -> ``"multilabel"`` (multi-hot, float32); anything else
    -> ``"regression"`` (float32); no ``y`` -> ``None``.

    Args:
        X: a ``scipy.sparse`` matrix (stored as canonical CSR float32; never densified) or a 2-D
            numeric ndarray (stored as float32).
        y: targets with ``len(y) == n_rows``, or ``None``.
        feature_names: one name per column, or ``None``.
        class_names: one name per class (classification/multilabel), or ``None``.
        name: a label for reports. Default ``""``.
        n_classes: number of classes when some are absent from ``y`` (a subset keeps its
            parent's); ``None`` infers ``max(y) + 1`` (or ``len(class_names)``).

    Raises:
        TypeError: if ``X``/``y`` have the wrong type.
        ValueError: on shape mismatches, NaN/Inf, negative class labels, or name-list lengths.

    Example:
        >>> import numpy as np, scipy.sparse as sp
        >>> ds = Dataset(sp.random(10, 50, density=0.1, format="csr", random_state=0),
        ...              np.arange(10) % 3)
        >>> ds.n_features, ds.n_classes, len(ds)
        (50, 3, 10)
        >>> xb, yb = next(ds.batches(4, layout="bag"))
        >>> yb.tolist(), xb[1].shape
        ([0, 1, 2, 0], torch.Size([4]))
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "",
        n_classes: int | None = None,
    ) -> None:
        self.X = check_features(X)
        self.y = check_targets(y, self.X.shape[0])
        self.name = str(name)
        self.feature_names = None if feature_names is None else [str(f) for f in feature_names]
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise ValueError(
                f"feature_names: {len(self.feature_names)} names for {self.n_features} columns"
            )
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self._n_classes = None if n_classes is None else int(n_classes)
        self._check_class_names()
        self._stats: FeatureStats | None = None

    def _check_class_names(self) -> None:
        if self._n_classes is not None and (
            self.task != "classification" or self._n_classes <= self._max_label()
        ):
            raise ValueError(
                f"n_classes: {self._n_classes} given, but the targets are {self.task!r} with "
                f"largest label {self._max_label()}; pass None to infer it"
            )
        if self.class_names is None:
            return
        if self.task not in ("classification", "multilabel"):
            raise ValueError(f"class_names: given, but the targets are {self.task!r}, not classes")
        needed = self._max_label() + 1 if self.task == "classification" else self.y.shape[1]
        if len(self.class_names) < needed or (
            self.task == "multilabel" and len(self.class_names) != needed
        ):
            raise ValueError(
                f"class_names: {len(self.class_names)} names, but the targets need {needed}"
            )

    def _max_label(self) -> int:
        return int(self.y.max()) if self.y is not None and self.y.size else -1

    # ----------------------------------------------------------------------- properties
    @property
    def is_sparse(self) -> bool:
        """True when ``X`` is a scipy CSR matrix."""
        return sp.issparse(self.X)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored non-zeros (all entries for dense ``X``)."""
        return int(self.X.nnz) if self.is_sparse else int(np.count_nonzero(self.X))

    @property
    def task(self) -> str | None:
        """``"classification"``, ``"multilabel"``, ``"regression"``, or ``None`` without ``y``."""
        y = self.y
        if y is None:
            return None
        if y.ndim == 1 and y.dtype == np.int64:
            return "classification"
        if y.ndim == 2 and y.size and np.isin(y, (0.0, 1.0)).all():
            return "multilabel"
        return "regression"

    @property
    def n_classes(self) -> int | None:
        """Number of classes (labels for multilabel); ``None`` for regression or no targets."""
        task = self.task
        if task == "classification":
            known = len(self.class_names) if self.class_names is not None else 0
            return max(self._max_label() + 1, known, self._n_classes or 0)
        if task == "multilabel":
            return int(self.y.shape[1])
        return None

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        kind = "csr" if self.is_sparse else "dense"
        nnz_row = self.nnz / max(self.n_rows, 1)
        parts = [
            f"name={self.name!r}" if self.name else None,
            f"rows={self.n_rows}",
            f"features={self.n_features}",
            f"X={kind}",
            f"nnz/row={nnz_row:.4g}",
            f"task={self.task}",
            f"classes={self.n_classes}" if self.n_classes is not None else None,
        ]
        return "Dataset(" + ", ".join(p for p in parts if p) + ")"

    # ----------------------------------------------------------------------- batching
    def n_batches(self, batch_size: int = 256, *, drop_last: bool = False) -> int:
        """How many batches :meth:`batches` yields with these settings."""
        check_batch_size(batch_size)
        full, rest = divmod(self.n_rows, batch_size)
        return full + (1 if rest and not drop_last else 0)

    def batches(
        self,
        batch_size: int = 256,
        *,
        shuffle: bool = False,
        seed: int | np.random.Generator | None = None,
        layout: str = "sparse",
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[Any, torch.Tensor | None]]:
        """Yield ``(inputs, targets)`` mini-batches as torch tensors.

        Args:
            batch_size: rows per batch (the last may be smaller). Default 256.
            shuffle: visit rows in a random order. Default ``False``.
            seed: seed (or ``numpy.random.Generator``) of the shuffle; the same seed gives the
                same order. ``None`` draws fresh entropy. The global RNGs are never touched.
            layout: ``"sparse"`` -> a ``torch.sparse_csr_tensor``; ``"dense"`` -> a dense
                float32 tensor (densified per batch only); ``"bag"`` -> the
                ``(indices, offsets, per_sample_weights)`` triple of ``nn.EmbeddingBag`` /
                :class:`initwise.nn.SparseLinear`. Default ``"sparse"``.
            drop_last: skip a final incomplete batch. Default ``False``.
            device: move the tensors there; ``None`` keeps the CPU.

        Yields:
            ``(inputs, targets)``; ``targets`` is int64 for class labels, float32 otherwise, and
            ``None`` when the dataset has no targets.

        Raises:
            ValueError: on an unknown ``layout`` or a non-positive ``batch_size``.
        """
        check_batch_size(batch_size)
        if layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {LAYOUTS}; got {layout!r}")
        order = None
        if shuffle:
            rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
            order = rng.permutation(self.n_rows)
        return self._iter_batches(order, batch_size, layout, drop_last, device)

    def _iter_batches(
        self,
        order: np.ndarray | None,
        batch_size: int,
        layout: str,
        drop_last: bool,
        device: torch.device | str | None,
    ) -> Iterator[tuple[Any, torch.Tensor | None]]:
        for b in range(self.n_batches(batch_size, drop_last=drop_last)):
            start, stop = b * batch_size, min((b + 1) * batch_size, self.n_rows)
            rows = slice(start, stop) if order is None else order[start:stop]
            inputs = _to_layout(self.X[rows], layout, device)
            targets = None
            if self.y is not None:
                targets = torch.from_numpy(np.array(self.y[rows]))
                targets = targets if device is None else targets.to(device)
            yield inputs, targets

    # ----------------------------------------------------------------------- subsets
    def subset(self, rows: Any, *, name: str | None = None) -> Dataset:
        """A new Dataset of the given rows (indices, slice or boolean mask); names are kept."""
        rows = check_rows(rows, self.n_rows)
        return Dataset(
            self.X[rows],
            None if self.y is None else self.y[rows],
            feature_names=self.feature_names,
            class_names=self.class_names,
            name=self.name if name is None else name,
            n_classes=self.n_classes if self.task == "classification" else None,
        )

    def split(
        self,
        test_fraction: float = 0.2,
        seed: int | None = 0,
        *,
        stratify: bool = True,
    ) -> tuple[Dataset, Dataset]:
        """Split into ``(train, test)`` at random, stratified by class for classification.

        With ``stratify`` (and 1-D class labels) each class contributes
        ``round(test_fraction * n_class)`` rows to the test set, so the label prior is the same on
        both sides; classes with a single row go to train. Otherwise a plain random split of
        ``round(test_fraction * n_rows)`` rows. Row order within each part follows the original.

        Args:
            test_fraction: fraction of rows in the test part, in (0, 1). Default 0.2.
            seed: seed of the split; same seed -> same split. Default 0.
            stratify: keep class proportions (classification only). Default ``True``.

        Returns:
            ``(train, test)`` Datasets named ``"<name>[train]"`` and ``"<name>[test]"``.

        Raises:
            ValueError: if ``test_fraction`` is not in (0, 1) or a part would be empty.
        """
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction: expected a number in (0, 1); got {test_fraction!r}")
        rng = np.random.default_rng(seed)
        if stratify and self.task == "classification":
            test = _stratified_test_rows(self.y, test_fraction, rng)
        else:
            n_test = int(round(test_fraction * self.n_rows))
            test = rng.permutation(self.n_rows)[:n_test]
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[test] = True
        if mask.all() or not mask.any():
            raise ValueError(
                f"split: test_fraction={test_fraction} of {self.n_rows} rows leaves an empty "
                "part; use a larger data set or a fraction nearer 0.5"
            )
        return (
            self.subset(~mask, name=f"{self.name}[train]"),
            self.subset(mask, name=f"{self.name}[test]"),
        )

    def stats(self, chunk_rows: int = 8192) -> FeatureStats:
        """Per-feature and per-row statistics of ``X`` (see :func:`initwise.data.feature_stats`).

        Computed once in one streaming pass and cached.
        """
        if self._stats is None:
            self._stats = feature_stats(self.X, chunk_rows=chunk_rows)
        return self._stats


def _stratified_test_rows(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    picks = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            continue
        n_test = min(int(round(test_fraction * len(members))), len(members) - 1)
        picks.append(rng.permutation(members)[:n_test])
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def _to_layout(block: Any, layout: str, device: torch.device | str | None) -> Any:
    if layout == "dense":
        dense = block.toarray() if sp.issparse(block) else np.array(block)
        t = torch.from_numpy(dense)
        return t if device is None else t.to(device)
    csr = block if sp.issparse(block) else sp.csr_matrix(block)
    if layout == "sparse":
        return csr_to_torch(csr, device=device)
    return csr_to_bag(csr, device=device)
