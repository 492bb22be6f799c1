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

Scoring as the model does (``infer_loss(..., output=)``, :func:`label_shift`): a causal language
model given ``{"input_ids": x, "labels": x}`` shifts internally -- its logits at position ``t``
are scored against ``labels[:, t + 1]`` -- while a masked LM, a seq2seq model (T5, BART: their
logits are aligned with ``labels``) and a classifier are scored unshifted. Labels ``-100`` are
ignored, as Hugging Face does. A seq2seq model called without decoder inputs gets them from its
labels the way it would itself (``split_batch(batch, model)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AMBIGUOUS",
    "CAUSAL_OUTPUT",
    "LOSS_KINDS",
    "MIN_ROWS",
    "OWN_LOSS_RTOL",
    "LossSpec",
    "call_model",
    "check_batch",
    "check_hookable",
    "check_targets",
    "compute_loss",
    "extract_logits",
    "forward_context",
    "infer_loss",
    "is_tensor_like",
    "iter_batches",
    "loss_warning",
    "label_prior_loss",
    "label_shift",
    "model_device",
    "scored",
    "output_warning",
    "select_output",
    "split_batch",
    "to_torch",
]

LOSS_KINDS = ("ce", "bce", "mse")
#: Fewest rows (samples) a batch must hold: per-unit statistics of one row are degenerate
#: (every variance 0), so one row cannot calibrate nor diagnose a model.
MIN_ROWS = 2


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


def split_batch(batch: Any, model: nn.Module | None = None) -> tuple[Any, Any | None]:
    """Split a batch into ``(inputs, targets)``; targets is ``None`` when the batch has none.

    Args:
        batch: one batch, in a form of the module docstring.
        model: the model the inputs are for (optional). Given, a dict batch with ``"labels"``
            and no decoder inputs, for a model that builds its decoder inputs from its labels
            (Hugging Face seq2seq: ``prepare_decoder_input_ids_from_labels``, T5 and BART),
            gets ``decoder_input_ids`` built that way: what the model does itself when it is
            called with ``labels``, which initwise scores outside the model.

    Raises:
        TypeError: if the batch is none of the documented forms.
    """
    if _is_pair(batch):
        return batch[0], batch[1]
    if isinstance(batch, list) and len(batch) == 1 and is_tensor_like(batch[0]):
        return batch[0], None  # a DataLoader over TensorDataset(x) yields [x]: inputs alone
    if isinstance(batch, Mapping):
        if "labels" in batch:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            return _decoder_inputs(model, inputs, batch["labels"]), batch["labels"]
        return batch, None
    if is_tensor_like(batch):
        return batch, None
    raise TypeError(
        f"batch: expected (inputs, targets), inputs alone (tensor, ndarray, torch.sparse, "
        f"scipy.sparse) or a dict of those; got {type(batch).__name__}. {_batch_hint(batch)}"
    )


def _decoder_inputs(model: nn.Module | None, inputs: dict[str, Any], labels: Any) -> dict:
    prepare = getattr(model, "prepare_decoder_input_ids_from_labels", None)
    if not callable(prepare) or not isinstance(labels, torch.Tensor) \
            or "decoder_input_ids" in inputs or "decoder_inputs_embeds" in inputs:
        return inputs
    return {**inputs, "decoder_input_ids": prepare(labels=labels)}


def _batch_hint(batch: Any) -> str:
    if isinstance(batch, (str, bytes, PathLike)):
        return ("To read a file, load it first: ds = initwise.data.load(path), then pass "
                "ds.batches(256) or one batch of it.")
    if isinstance(batch, (tuple, list)) and batch and all(_is_pair(b) for b in batch):
        return "It is a list of batches: pass one of them, e.g. data[0]."
    if isinstance(batch, (tuple, list)) and len(batch) > 2 and all(map(is_tensor_like, batch)):
        return "Wrap several positional inputs as ((a, b, c), targets)."
    if isinstance(batch, Iterable) and not isinstance(batch, (tuple, list)):
        return ("It looks like a loader or an iterable of batches: the doctor diagnoses one "
                "batch, e.g. batch = next(iter(loader)).")
    return "Wrap several positional inputs as ((a, b, c), targets)."


def to_torch(x: Any, device: torch.device | str | None = None) -> Any:
    """Convert arrays to tensors (recursively in dicts/tuples) without densifying sparse data.

    ndarrays of floats become float32 (float64 stays float64 only if it was a tensor already),
    integer arrays int64, and ``scipy.sparse`` matrices a ``torch.sparse_csr_tensor``
    (float32 values) whose memory is O(nnz).
    """
    if isinstance(x, torch.Tensor):
        return x if device is None else x.to(device)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(
                f"inputs: an ndarray of dtype {x.dtype} (shape {x.shape}) is not numeric; "
                f"convert it explicitly first, e.g. x.astype(np.float32) for numbers stored as "
                f"objects, after dropping or encoding strings and None."
            )
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
    ``.logits``; a dict's ``"logits"`` entry, else its first leaf (the source then ends with
    :data:`AMBIGUOUS` when the dict holds several: :func:`output_warning`); a tuple's or list's
    first leaf.
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
        keys = [k for k, v in output.items() if is_leaf(v)]
        if keys:
            more = f" {AMBIGUOUS} among {keys[:6]}" if len(keys) > 1 else ""
            return output[keys[0]], f"output[{keys[0]!r}]{more}"
    if isinstance(output, (tuple, list)):
        for i, value in enumerate(output):
            if is_leaf(value):
                return value, f"output[{i}]"
    return None


#: Marks an output source picked from a dict of several tensors without a ``"logits"`` key.
AMBIGUOUS = "(first entry: no 'logits' key)"


def loss_warning(spec: LossSpec | None, targets: Iterable[Any], who: str) -> str | None:
    """The warning for one-hot float labels read as multi-label BCE (else ``None``)."""
    if spec is None or spec.kind != "bce" or not spec.inferred:
        return None
    ts = [t for t in targets if isinstance(t, torch.Tensor)]
    if not ts or not all(t.is_floating_point() and t.dim() >= 2 and t.shape[-1] > 1 for t in ts):
        return None
    if not all(bool((t.sum(-1) == 1).all()) for t in ts):
        return None
    return (f"{who}: the float targets are one-hot rows (each sums to 1), so BCE (independent "
            f"sigmoid outputs) was inferred; for softmax cross-entropy pass integer class "
            f"labels (y.argmax(-1)), or pass loss='bce' to confirm BCE.")


def output_warning(source: str, who: str) -> str | None:
    """The warning for an output taken from a dict without ``"logits"`` (else ``None``)."""
    if AMBIGUOUS not in source:
        return None
    return (f"{who}: the model returns a dict of several tensors without a 'logits' key; "
            f"{source} was taken as the logits. Return the logits under 'logits' (or first) "
            f"from forward(), or wrap the model to return only the logits.")


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
        shift: ``1`` for a causal LM that shifts its labels internally (logits ``[:, :-1]``
            scored against targets ``[:, 1:]``, :func:`label_shift`), else ``0``.
    """

    kind: str
    class_dim: int = -1
    inferred: bool = False
    shift: int = 0


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


def infer_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str | None = None, *,
               output: Any = None) -> LossSpec:
    """Infer (or validate) the loss from the logits and targets.

    Integer targets with one dimension fewer than the logits mean cross-entropy; targets shaped
    like the logits with values in {0, 1} mean BCE (multi-label); other float targets mean MSE.
    Cross-entropy on sequences is shifted as the model shifts it (:func:`label_shift`).

    Args:
        logits: the model's logits.
        targets: the batch's targets (tensor).
        loss: ``None`` to infer, or one of ``"ce"``, ``"bce"``, ``"mse"`` to validate.
        output: the model output the logits came from (default ``None``: scored unshifted);
            it tells whether the model is a causal LM scoring its labels shifted.

    Raises:
        ValueError: for an unknown loss name or targets that cannot fit the logits.

    Example:
        >>> logits, labels = torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long)
        >>> class CausalLMOutput(dict):  # stands for Hugging Face's output of a causal LM
        ...     pass
        >>> infer_loss(logits, labels).shift, infer_loss(logits, labels,
        ...                                             output=CausalLMOutput()).shift
        (0, 1)
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
        spec = LossSpec("ce", _ce_class_dim(logits, targets), inferred)
        shift = label_shift(output, logits, targets) if spec.class_dim == -1 else 0
        return replace(spec, shift=shift) if shift else spec
    if targets.numel() != logits.numel():
        raise ValueError(
            f"targets: {loss} needs targets with as many elements as the logits "
            f"{tuple(logits.shape)}; got {tuple(targets.shape)}."
        )
    return LossSpec(loss, -1, inferred)


#: A model output's class name holding this marks a causal LM (Hugging Face's
#: ``CausalLMOutput``, ``CausalLMOutputWithPast``, ``...WithCrossAttentions``,
#: ``MoeCausalLMOutputWithPast``, ``MambaCausalLMOutput``...).
CAUSAL_OUTPUT = "CausalLM"
#: How close (relative) a candidate alignment's loss must be to the model's own ``.loss``.
OWN_LOSS_RTOL = 1e-4


def label_shift(output: Any, logits: torch.Tensor, targets: torch.Tensor) -> int:
    """How the model aligns its sequence logits with its labels: ``1`` shifted, ``0`` not.

    A causal language model given ``labels`` scores ``logits[:, :-1]`` against
    ``labels[:, 1:]`` (it shifts internally: Hugging Face's ``ForCausalLMLoss``); masked LMs,
    seq2seq models (T5, BART) and per-position taggers score them aligned. The rule, in order:

    1. the output carries the model's own finite scalar ``.loss`` (it was called with the
       labels): the alignment whose cross-entropy reproduces it (relative :data:`OWN_LOSS_RTOL`)
       -- the model itself says how it scores;
    2. else the output's class: a name containing :data:`CAUSAL_OUTPUT` (Hugging Face's causal
       LM outputs) is shifted; anything else (``MaskedLMOutput``, ``Seq2SeqLMOutput``, a
       tensor, a dict, a tuple) is not.

    Only sequence cross-entropy can be shifted: logits ``(B, T, V)`` with targets ``(B, T)``,
    ``T >= 2``; anything else is ``0``.

    Args:
        output: the model output (or ``None``).
        logits: the logits taken from it.
        targets: the labels.

    Returns:
        ``1`` or ``0``.
    """
    if output is None or logits.dim() < 3 or tuple(targets.shape) != tuple(logits.shape[:-1]) \
            or targets.shape[-1] < 2 or targets.is_floating_point():
        return 0
    own = getattr(output, "loss", None)
    if isinstance(own, torch.Tensor) and own.numel() == 1 and bool(torch.isfinite(own)):
        ref = float(own.detach())
        with torch.no_grad():
            for shift in (0, 1):
                spec = LossSpec("ce", -1, True, shift)
                got = float(compute_loss(spec, logits.detach().float(), targets.to(logits.device)))
                if math.isclose(got, ref, rel_tol=OWN_LOSS_RTOL, abs_tol=1e-6):
                    return shift
    return 1 if CAUSAL_OUTPUT in type(output).__name__ else 0


def scored(spec: LossSpec, logits: torch.Tensor | None, targets: torch.Tensor
           ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The ``(logits, targets)`` the loss compares: shifted for a causal LM (``spec.shift``).

    Example:
        >>> _, t = scored(LossSpec("ce", shift=1), None, torch.tensor([[5, 6, 7]]))
        >>> t.tolist()
        [[6, 7]]
    """
    if not spec.shift:
        return logits, targets
    return (None if logits is None else logits[..., :-spec.shift, :],
            targets[..., spec.shift:])


def compute_loss(spec: LossSpec, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean loss of ``logits`` against ``targets`` under ``spec`` (CE ignores index -100;
    a causal LM's targets shifted: :func:`scored`)."""
    if spec.kind == "ce":
        check_targets(spec, logits, targets)
        logits, targets = scored(spec, logits, targets)
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

    The targets a causal LM scores (``spec.shift``: the first position of each row is never a
    target) are those counted.
    """
    t = scored(spec, None, torch.as_tensor(targets).detach().cpu())[1]
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
    if isinstance(data, (str, bytes, PathLike)):
        raise TypeError(
            f"data: got a path ({data!r}); read it first with initwise.data.load(path) (svmlight, "
            f"npz, npy, csv, parquet) and pass the Dataset it returns."
        )
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



# --- validating a batch ---------------------------------------------------------------------


def _leaves(x: Any, path: str = "inputs") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(x, torch.Tensor):
        yield path, x
    elif isinstance(x, Mapping):
        for k, v in x.items():
            yield from _leaves(v, f"{path}[{k!r}]")
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{path}[{i}]")


def _stored(t: torch.Tensor) -> tuple[torch.Tensor, Callable[[int], str]]:
    """The stored values of a tensor (sparse: never densified) and a function naming the cell
    of the k-th stored value."""
    if t.layout == torch.sparse_coo:
        idx, vals = t._indices(), t._values()
        return vals, lambda k: _cell([int(i) for i in idx[:, k]])
    if t.layout == torch.sparse_csr:
        crow, cols, vals = t.crow_indices(), t.col_indices(), t.values()

        def cell(k: int) -> str:
            key = torch.tensor(k, dtype=crow.dtype, device=crow.device)
            row = int(torch.searchsorted(crow, key, right=True)) - 1
            return f"row {row}, column {int(cols[k])}"

        return vals, cell
    shape = tuple(t.shape)
    return t.reshape(-1), lambda k: _cell([int(i) for i in np.unravel_index(k, shape)])


def _cell(pos: list[int]) -> str:
    if len(pos) == 1:
        return f"row {pos[0]}"
    if len(pos) == 2:
        return f"row {pos[0]}, column {pos[1]}"
    return f"row {pos[0]}, index {tuple(pos[1:])}"


def _check_finite(t: torch.Tensor, what: str, where: str, remedy: str,
                  neg_inf: bool = False) -> None:
    if not (t.is_floating_point() or t.is_complex()):
        return
    vals, cell = _stored(t.detach())
    bad = ~torch.isfinite(vals)
    if neg_inf:  # an additive attention mask holds -inf on purpose
        bad &= vals != float("-inf")
    if not bool(bad.any()):
        return
    k = int(bad.nonzero()[0, 0])
    raise ValueError(
        f"{where}: {what} holds {int(bad.sum())} NaN/Inf value(s) (first at {cell(k)}: "
        f"{float(vals[k])}); {remedy}"
    )


def _is_bag(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) in (2, 3) and all(
        isinstance(t, torch.Tensor) and t.dim() == 1 for t in x[:2]) and not any(
        t.is_floating_point() for t in x[:2])


def _rows(t: torch.Tensor) -> int:
    """Samples in a leaf: rows of floating/sparse data, positions of integer ids."""
    if t.dim() == 0:
        return 1
    if t.is_floating_point() or t.layout != torch.strided:
        return int(t.shape[0])
    return int(t.numel())


def check_batch(inputs: Any, targets: Any, where: str, *, min_rows: int = MIN_ROWS,
                inputs_finite: bool = True) -> None:
    """Refuse a batch that cannot be measured: non-finite values, too few rows.

    Sparse tensors are checked through their stored values (O(nnz), never densified). An input
    named like a mask (a dict key containing ``"mask"``) may hold ``-inf`` (additive attention
    masks); NaN and ``+inf`` are refused there too.

    Args:
        inputs: the model inputs (converted to torch).
        targets: the targets (a tensor) or ``None``.
        where: the caller and the batch, for the message (``"init: batch 2"``).
        min_rows: fewest rows the batch must hold (default :data:`MIN_ROWS`).
        inputs_finite: also refuse non-finite inputs (default True).

    Raises:
        ValueError: naming the first non-finite cell, or the row count, and the remedy.
    """
    leaves = list(_leaves(inputs))
    data = [(p, t) for p, t in leaves if t.is_floating_point() or t.layout != torch.strided]
    main = data[0] if data else (leaves[0] if leaves else None)
    if _is_bag(inputs):  # (indices, offsets[, per_sample_weights]): one row per bag
        main = ("inputs[1] (bag offsets)", inputs[1])
    if main is not None:
        n = _rows(main[1])
        if n == 0:
            raise ValueError(
                f"{where}: {main[0]} has 0 rows (shape {tuple(main[1].shape)}); pass a "
                f"non-empty batch (a filter or the loader's last batch may have removed every "
                f"row).")
        if n < min_rows:
            raise ValueError(
                f"{where}: batch too small: {main[0]} has {n} row(s) (shape "
                f"{tuple(main[1].shape)}); per-unit statistics need at least {min_rows} rows "
                f"(use a batch of 32 or more).")
    if inputs_finite:
        for path, t in data:
            _check_finite(t, path, where, "impute or drop them first, e.g. "
                          "torch.nan_to_num(x) or X[np.isfinite(X).all(1)].",
                          neg_inf="mask" in path.lower())
    if isinstance(targets, torch.Tensor):
        _check_finite(targets, "targets", where, "drop those rows or fix the labels first.")


def check_targets(spec: LossSpec, logits: torch.Tensor, targets: torch.Tensor,
                  where: str = "targets") -> None:
    """Refuse class labels outside ``[0, C)`` (``-100``, the ignore index, allowed) for CE.

    Raises:
        ValueError: naming the offending label, the number of classes and the remedy.
    """
    if spec.kind != "ce" or targets.numel() == 0:
        return
    n_classes = int(logits.shape[spec.class_dim])
    t = targets.detach()
    bad = (t != -100) & ((t < 0) | (t >= n_classes))
    if bool(bad.any()):
        k = int(bad.reshape(-1).nonzero()[0, 0])
        raise ValueError(
            f"{where}: label {int(t.reshape(-1)[k])} (position {k}) is out of range for "
            f"{n_classes} classes (the logits are {tuple(logits.shape)}); labels must be in "
            f"[0, {n_classes - 1}] (or -100 to ignore a position): re-encode the labels or "
            f"widen the output layer.")


# --- explaining a failed forward ------------------------------------------------------------


@dataclass
class _Entered:
    stack: list[tuple[str, nn.Module, tuple]] = field(default_factory=list)


def _shape_hint(name: str, module: nn.Module, x: Any) -> str | None:
    if not isinstance(x, torch.Tensor):
        return None
    kind = type(module).__name__
    w = module._parameters.get("weight")
    if isinstance(w, torch.Tensor) and w.is_floating_point() and x.layout == torch.strided \
            and x.dtype != w.dtype and not isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        how = "x.float()" if w.dtype == torch.float32 else f"x.to({w.dtype})"
        other = f" or the model (model.to({x.dtype}))" if x.is_floating_point() else ""
        return (f"layer {name!r} ({kind}) has {w.dtype} parameters but received {x.dtype} "
                f"inputs; the model expects {w.dtype}: convert the batch ({how}){other}.")
    need = getattr(module, "in_features", None)
    got = x.shape[-1] if x.dim() else None
    if need is None and isinstance(module, nn.modules.conv._ConvNd):
        need, got = module.in_channels, (x.shape[1] if x.dim() > 1 else None)
        what = "input channels"
    else:
        what = "input features (the last dimension)"
    if isinstance(need, int) and got is not None and need != got:
        return (f"layer {name!r} ({kind}) expects {need} {what} but the batch gives {got} "
                f"(shape {tuple(x.shape)}); check the feature columns (a label or id column "
                f"left in, a missing one-hot level) or build the layer with {got}.")
    n_emb = getattr(module, "num_embeddings", None)
    if isinstance(n_emb, int) and not x.is_floating_point() and x.numel():
        hi, lo = int(x.max()), int(x.min())
        if hi >= n_emb or lo < 0:
            return (f"layer {name!r} ({kind}) has num_embeddings={n_emb} but the batch holds "
                    f"index {hi if hi >= n_emb else lo}; ids must be in [0, {n_emb - 1}].")
    return None


@contextmanager
def forward_context(model: nn.Module, where: str) -> Iterator[None]:
    """Say where a model's forward failed, for torch's own context-free errors.

    Forward pre-/post-hooks on every module keep the stack of modules being run (always
    removed). When the block raises, the innermost module still running is compared with its
    input: a dtype the parameters do not have -> ``TypeError``; a feature or channel count the
    layer does not expect, or an id beyond an embedding table -> ``ValueError``; both raised
    from the original error and naming the batch, the layer, what it expects and the remedy.
    Any other error is re-raised unchanged (on Python >= 3.11 with a note naming the batch and
    the module).

    Args:
        model: the model.
        where: the caller and the batch (``"init: batch 1"``).
    """
    entered = _Entered()
    names = {id(m): n for n, m in model.named_modules()}

    def pre(mod: nn.Module, args: tuple) -> None:
        entered.stack.append((names.get(id(mod), type(mod).__name__), mod, args))

    def post(mod: nn.Module, args: tuple, out: Any) -> None:
        if any(e[1] is mod for e in entered.stack):  # (drops entries of caught errors)
            while entered.stack.pop()[1] is not mod:
                pass

    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        yield
    except Exception as exc:
        if not entered.stack:
            raise
        name, mod, args = entered.stack[-1]
        hint = None
        if isinstance(exc, (RuntimeError, TypeError, IndexError, ValueError)):
            hint = _shape_hint(name or "<model>", mod, args[0] if args else None)
        if hint is not None:
            cls = TypeError if "parameters but received" in hint else ValueError
            raise cls(f"{where}: the model's forward failed: {hint} (torch: {exc})") from exc
        if hasattr(exc, "add_note"):
            exc.add_note(f"{where}: raised by the model's forward in module {name or '<model>'!r} "
                         f"({type(mod).__name__}).")
        raise
    finally:
        for h in handles:
            h.remove()
