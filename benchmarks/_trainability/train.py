"""Training, evaluation and measurement for one (config, optimizer, init, seed) run."""

from __future__ import annotations

import math
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Budget:
    """A fixed training budget: epochs of mini-batches and the two optimizers' settings."""

    epochs: int
    batch_size: int
    sgd_lr: float
    adam_lr: float = 1e-3
    momentum: float = 0.9


def call(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def loss_fn(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out.squeeze(-1), y.reshape(-1).to(out.dtype))
    return F.cross_entropy(out, y)


class _Both:
    """Two optimizers stepped together (SparseAdam for sparse tables + Adam for the rest)."""

    def __init__(self, *opts: torch.optim.Optimizer):
        self.opts = opts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()


def make_optimizer(name: str, model: nn.Module, budget: Budget) -> Any:
    """SGD+momentum or Adam; tables with sparse gradients get the sparse-gradient variant.

    * ``sgd``: momentum on dense parameters; a sparse table gets plain SGD at the momentum's
      steady-state step ``lr / (1 - momentum)`` (torch's sparse momentum buffer is re-added
      uncoalesced each step, so its cost grows with every step; no momentum on embeddings is
      also the DLRM convention).
    * ``adam``: ``SparseAdam`` on sparse tables, ``Adam`` on the rest (torch's ``Adam`` rejects
      sparse gradients).
    """
    if name not in ("sgd", "adam"):
        raise ValueError(f"optimizer: unknown {name!r}; valid values are ('sgd', 'adam')")
    sparse = [
        p for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse
        for p in m.parameters(recurse=False)
    ]
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids]
    if name == "sgd":
        groups = [{"params": dense, "momentum": budget.momentum}]
        if sparse:
            groups.append({"params": sparse, "momentum": 0.0,
                           "lr": budget.sgd_lr / (1.0 - budget.momentum)})
        return torch.optim.SGD(groups, lr=budget.sgd_lr)
    if not sparse:
        return torch.optim.Adam(dense, lr=budget.adam_lr)
    return _Both(torch.optim.SparseAdam(sparse, lr=budget.adam_lr),
                 torch.optim.Adam(dense, lr=budget.adam_lr))


@torch.no_grad()
def predict(model: nn.Module, ds: Any, layout: str) -> torch.Tensor:
    outs = [call(model, x) for x, _ in ds.batches(4096, layout=layout)]
    return torch.cat(outs)


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    # average ranks for ties
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    return (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def metric(task: str, metric_name: str, out: torch.Tensor, y: np.ndarray) -> float:
    """The test metric in points: accuracy %, ROC AUC x 100, or R^2 x 100."""
    if not torch.isfinite(out).all():
        return float("nan")
    if metric_name == "r2":
        pred = out.squeeze(-1).double().numpy()
        yd = y.astype(np.float64)
        return 100.0 * (1.0 - ((yd - pred) ** 2).sum() / ((yd - yd.mean()) ** 2).sum())
    if metric_name == "auc":
        return 100.0 * _auc(torch.softmax(out.double(), -1)[:, 1].numpy(), y)
    return 100.0 * float((out.argmax(-1).numpy() == y).mean())


@torch.no_grad()
def initial_loss(model: nn.Module, probe: tuple[Any, torch.Tensor], task: str) -> float:
    return float(loss_fn(task, call(model, probe[0]), probe[1]))


def train(
    model: nn.Module,
    train_ds: Any,
    layout: str,
    task: str,
    opt_name: str,
    budget: Budget,
    seed: int,
) -> dict[str, Any]:
    """Train for the budget; stop early (``diverged``) if the loss turns non-finite."""
    opt = make_optimizer(opt_name, model, budget)
    model.train()
    epoch_times, last_loss, diverged = [], float("nan"), False
    for epoch in range(budget.epochs):
        start = time.perf_counter()
        batches = train_ds.batches(
            budget.batch_size, shuffle=True, seed=seed * 1000 + epoch, layout=layout
        )
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(task, call(model, x), y)
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            opt.step()
            last_loss = loss.item()
        epoch_times.append(time.perf_counter() - start)
        if diverged:
            break
    return {"epoch_s": epoch_times, "final_train_loss": last_loss, "diverged": diverged}


def data_path_memory(ds: Any, batch_size: int, layout: str) -> dict[str, float]:
    """Peak Python-heap bytes (tracemalloc) of one shuffled epoch through ``ds.batches``.

    Compared with the bytes of the CSR matrix itself and of one densified batch.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        nnz = 0
        for x, _ in ds.batches(batch_size, shuffle=True, seed=0, layout=layout):
            nnz = max(nnz, int(x[0].numel()) if isinstance(x, tuple) else 0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    X = ds.X
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return {
        "peak_mib": peak / 2**20,
        "max_batch_nnz": nnz,
        "csr_mib": csr_bytes / 2**20,
        "dense_batch_mib": batch_size * ds.n_features * 4 / 2**20,
        "dense_all_mib": len(ds) * ds.n_features * 4 / 2**20,
    }


def finite_or(x: float, fallback: float) -> float:
    return x if math.isfinite(x) else fallback
