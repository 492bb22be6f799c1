"""Talking to a user's model: batches in, logits out, the loss the targets imply.

Shared by :func:`initwise.init`, :func:`initwise.doctor` and the CLI, so that every component
understands the same batch forms and the same model outputs.

Batch forms (``split_batch``):

* ``(inputs, targets)`` -- a tuple or list of exactly two items whose first item is
  tensor-like (tensor, ndarray, ``torch.sparse``, ``scipy.sparse``, dict or tuple of those) and
  whose second is not a tuple/list (so ``[(x0, y0), (x1, y1)]`` is two batches);
* ``inputs`` alone -- a tensor, ndarray, sparse matrix, or a dict (the model is called as
  ``model(**inputs)``; a ``"labels"`` key, the Hugging Face convention, is taken as targets);
* several positional inputs -- ``((a, b, c), targets)``: the model is called as ``model(a, b, c)``.

Model outputs (``extract_logits``): a tensor; an object with ``.logits`` (Hugging Face
``ModelOutput``); a dict (its ``"logits"`` entry, else its first tensor); a tuple or list (its first
tensor). The source is returned as text so reports can say which output was used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LOSS_KINDS",
    "LossSpec",
    "call_model",
    "check_hookable",
    "compute_loss",
    "extract_logits",
    "infer_loss",
    "is_tensor_like",
    "iter_batches",
    "label_prior_loss",
    "model_device",
    "select_output",
    "split_batch",
    "to_torch",
]

LOSS_KINDS = ("ce", "bce", "mse")


def _is_scipy_sparse(x: Any) -> bool:
    return sp.issparse(x)


def is_tensor_like(x: Any) -> bool:
    """True for a tensor, an ndarray, a scipy.sparse matrix, or a dict/tuple of those."""
    if isinstance(x, (torch.Tensor, np.ndarray)) or _is_scipy_sparse(x):
        return True
    if isinstance(x, Mapping):
        return len(x) > 0 and all(is_tensor_like(v) for v in x.values())
    if isinstance(x, tuple):
        return len(x) > 0 and all(is_tensor_like(v) for v in x)
    return False


def _is_pair(batch: Any) -> bool:
    # (inputs, targets): two items, tensor-like inputs, and targets that are not themselves a
    # tuple/list -- so a list of two batches [(x0, y0), (x1, y1)] is not mistaken for one batch.
    return (
        isinstance(batch, (tuple, list))
        and len(batch) == 2
        and is_tensor_like(batch[0])
        and not isinstance(batch[1], (tuple, list))
    )


def split_batch(batch: Any) -> tuple[Any, Any | None]:
    """Split a batch into ``(inputs, targets)``; targets is ``None`` when the batch has none.

    Raises:
        TypeError: if the batch is none of the documented forms.
    """
    if _is_pair(batch):
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        if "labels" in batch:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            return inputs, batch["labels"]
        return batch, None
    if is_tensor_like(batch):
        return batch, None
    raise TypeError(
        f"batch: expected (inputs, targets), inputs alone (tensor, ndarray, torch.sparse, "
        f"scipy.sparse) or a dict of those; got {type(batch).__name__}. Wrap several positional "
        f"inputs as ((a, b, c), targets)."
    )


def to_torch(x: Any, device: torch.device | str | None = None) -> Any:
    """Convert arrays to tensors (recursively in dicts/tuples) without densifying sparse data.

    ndarrays of floats become float32 (float64 stays float64 only if it was a tensor already),
    integer arrays int64, and ``scipy.sparse`` matrices a ``torch.sparse_csr_tensor``
    (float32 values) whose memory is O(nnz).
    """
    if isinstance(x, torch.Tensor):
        return x if device is None else x.to(device)
    if isinstance(x, np.ndarray):
        if np.issubdtype(x.dtype, np.floating):
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        elif np.issubdtype(x.dtype, np.bool_):
            t = torch.from_numpy(np.ascontiguousarray(x))
        else:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
        return t if device is None else t.to(device)
    if _is_scipy_sparse(x):
        csr = x.tocsr()
        with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            t = torch.sparse_csr_tensor(
                torch.from_numpy(csr.indptr.astype(np.int64)),
                torch.from_numpy(csr.indices.astype(np.int64)),
                torch.from_numpy(csr.data.astype(np.float32)),
                size=csr.shape,
            )
        return t if device is None else t.to(device)
    if isinstance(x, Mapping):
        return {k: to_torch(v, device) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(to_torch(v, device) for v in x)
    if isinstance(x, list):
        return [to_torch(v, device) for v in x]
    return x


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameterless model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def check_hookable(model: Any, who: str) -> None:
    """Raise a clear error unless ``model`` is an eager ``nn.Module`` that accepts hooks.

    Args:
        model: the user's model.
        who: the caller's name for the message (``"doctor"``, ``"init"``).

    Raises:
        TypeError: for a non-Module, or a TorchScript module (it refuses forward hooks).
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"{who}: model is a TorchScript module, which does not support the forward hooks "
            f"{who} measures with; pass the eager nn.Module (e.g. the factory that built it) or "
            f"a torch.export program's .module()."
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}.")


def call_model(model: nn.Module, inputs: Any) -> Any:
    """Call ``model(**inputs)`` (dict), ``model(*inputs)`` (tuple) or ``model(inputs)``."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def select_output(output: Any, is_leaf: Callable[[Any], bool]) -> tuple[Any, str] | None:
    """The part of a model output that holds the logits, as ``(part, source)``, or ``None``.

    The one rule for which output is the logits: the output itself if ``is_leaf``; its
    ``.logits``; a dict's ``"logits"`` entry, else its first leaf; a tuple's or list's first leaf.
    ``is_leaf`` says what a value is (a tensor when running a model, a graph node when tracing
    one symbolically), so eager and symbolic callers agree.
    """
    if is_leaf(output):
        return output, "output"
    logits = getattr(output, "logits", None)
    if is_leaf(logits):
        return logits, "output.logits"
    if isinstance(output, Mapping):
        if is_leaf(output.get("logits")):
            return output["logits"], "output['logits']"
        for key, value in output.items():
            if is_leaf(value):
                return value, f"output[{key!r}]"
    if isinstance(output, (tuple, list)):
        for i, value in enumerate(output):
            if is_leaf(value):
                return value, f"output[{i}]"
    return None


def extract_logits(output: Any) -> tuple[torch.Tensor, str]:
    """Return ``(logits, source)`` from a model's output; ``source`` says which part was used.

    Raises:
        TypeError: if the output holds no tensor.
    """
    picked = select_output(output, lambda v: isinstance(v, torch.Tensor))
    if picked is not None:
        return picked
    raise TypeError(
        f"model output: expected a tensor, an object with .logits, a dict or a tuple holding a "
        f"tensor; got {type(output).__name__}. Return the logits from forward()."
    )


@dataclass(frozen=True)
class LossSpec:
    """The loss a model is trained with, as initwise understands it.

    Attributes:
        kind: ``"ce"`` (softmax cross-entropy over the last logit dim, or dim 1 for (N, C, ...)),
            ``"bce"`` (per-output sigmoid cross-entropy) or ``"mse"``.
        class_dim: the logits dimension that holds classes/outputs.
        inferred: True when initwise inferred the kind from the targets.
    """

    kind: str
    class_dim: int = -1
    inferred: bool = False


def _ce_class_dim(logits: torch.Tensor, targets: torch.Tensor) -> int:
    # (N, C) with (N,), (B, T, V) with (B, T): classes last.  (N, C, H, W) with (N, H, W): dim 1.
    if logits.shape[:-1] == targets.shape:
        return -1
    if logits.dim() >= 3 and logits.shape[:1] + logits.shape[2:] == targets.shape:
        return 1
    raise ValueError(
        f"targets: integer targets of shape {tuple(targets.shape)} do not fit logits of shape "
        f"{tuple(logits.shape)} for cross-entropy (expected logits (..., C) with targets (...))."
    )


def infer_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str | None = None) -> LossSpec:
    """Infer (or validate) the loss from the logits and targets.

    Integer targets with one dimension fewer than the logits mean cross-entropy; targets shaped
    like the logits with values in {0, 1} mean BCE (multi-label); other float targets mean MSE.

    Args:
        logits: the model's logits.
        targets: the batch's targets (tensor).
        loss: ``None`` to infer, or one of ``"ce"``, ``"bce"``, ``"mse"`` to validate.

    Raises:
        ValueError: for an unknown loss name or targets that cannot fit the logits.
    """
    if loss is not None and loss not in LOSS_KINDS:
        raise ValueError(f"loss: unknown loss {loss!r}; valid values are {LOSS_KINDS} or None.")
    targets = torch.as_tensor(targets)
    integer = not (targets.is_floating_point() or targets.is_complex())
    if loss is None:
        if integer and targets.dim() == logits.dim() - 1:
            loss = "ce"
        elif targets.shape == logits.shape and bool(((targets == 0) | (targets == 1)).all()):
            loss = "bce"
        elif targets.is_floating_point() and targets.numel() == logits.numel():
            loss = "mse"
        else:
            raise ValueError(
                f"targets: cannot infer a loss from targets {tuple(targets.shape)} "
                f"({targets.dtype}) and logits {tuple(logits.shape)}; pass loss='ce'|'bce'|'mse'."
            )
        inferred = True
    else:
        inferred = False
    if loss == "ce":
        return LossSpec("ce", _ce_class_dim(logits, targets), inferred)
    if targets.numel() != logits.numel():
        raise ValueError(
            f"targets: {loss} needs targets with as many elements as the logits "
            f"{tuple(logits.shape)}; got {tuple(targets.shape)}."
        )
    return LossSpec(loss, -1, inferred)


def compute_loss(spec: LossSpec, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean loss of ``logits`` against ``targets`` under ``spec`` (CE ignores index -100)."""
    if spec.kind == "ce":
        if spec.class_dim == 1:
            return F.cross_entropy(logits, targets.long(), ignore_index=-100)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), ignore_index=-100
        )
    t = targets.reshape(logits.shape).to(logits.dtype)
    if spec.kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, t)
    return F.mse_loss(logits, t)


def label_prior_loss(spec: LossSpec, targets: torch.Tensor, n_outputs: int) -> float:
    """The loss of the best constant predictor: what a well-initialized model starts at.

    * ce: the entropy of the class frequencies (classes never seen contribute nothing);
    * bce: the mean over outputs of the binary entropy of each output's positive rate;
    * mse: the mean over outputs of the variance of each target column.
    """
    t = torch.as_tensor(targets).detach().cpu()
    if spec.kind == "ce":
        flat = t.reshape(-1).long()
        flat = flat[flat != -100]
        counts = torch.bincount(flat, minlength=n_outputs).double()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())
    t = t.double().reshape(-1, n_outputs)
    if spec.kind == "bce":
        p = t.mean(0).clamp(1e-12, 1 - 1e-12)
        h = -(p * p.log() + (1 - p) * (1 - p).log())
        return float(h.mean())
    return float(t.var(0, unbiased=False).mean())


def _is_single_batch(data: Any) -> bool:
    return is_tensor_like(data) or isinstance(data, Mapping) or _is_pair(data)


def iter_batches(data: Any, max_batches: int | None = None) -> Iterator[Any]:
    """Yield up to ``max_batches`` batches from one batch or an iterable of batches.

    A single batch (see :func:`split_batch`) is yielded once; a DataLoader, list or generator of
    batches is iterated; an :class:`initwise.data.Dataset` gives shuffled (seed 0) batches of 256
    rows, torch sparse CSR for sparse data, dense otherwise.

    Raises:
        TypeError: if ``data`` is neither a batch nor an iterable of batches.
        ValueError: if ``max_batches`` is not a positive integer, or ``data`` yields nothing.
    """
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"batches: expected a positive integer, got {max_batches!r}.")
    if _is_single_batch(data):
        yield data
        return
    if callable(getattr(data, "batches", None)) and hasattr(data, "is_sparse"):
        # An initwise.data.Dataset: a seeded shuffle (rows may be sorted by class), torch sparse
        # CSR batches for sparse data (never densified), dense float batches otherwise.
        layout = "sparse" if data.is_sparse else "dense"
        data = data.batches(256, shuffle=True, seed=0, layout=layout)
    if not isinstance(data, Iterable):
        raise TypeError(
            f"data: expected a batch (inputs or (inputs, targets)) or an iterable of batches, "
            f"got {type(data).__name__}."
        )
    n = 0
    for batch in data:
        yield batch
        n += 1
        if max_batches is not None and n >= max_batches:
            return
    if n == 0:
        raise ValueError("data: the iterable of batches yielded no batch.")

