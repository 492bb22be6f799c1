"""Shared tiny models and data for the datainit tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn


def _sparse_counts(n_rows: int, n_cols: int, nnz: int, seed: int) -> sp.csr_matrix:
    """Non-negative count rows (bag-of-words-like): ``nnz`` Zipf-ish columns per row."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_cols + 1)
    p /= p.sum()
    cols = rng.choice(n_cols, size=(n_rows, nnz), p=p)
    rows = np.repeat(np.arange(n_rows), nnz)
    vals = rng.integers(1, 4, size=n_rows * nnz).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols.ravel())), shape=(n_rows, n_cols))
    m.sum_duplicates()
    return m


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def sparse_counts():
    """Factory ``(n_rows, n_cols, nnz, seed) -> csr_matrix`` of non-negative counts."""
    return _sparse_counts


@pytest.fixture
def mlp():
    """The :class:`MLP` class."""
    return MLP


class MLP(nn.Sequential):
    """Linear -> act -> ... -> Linear head."""

    def __init__(self, n_in: int, width: int, n_out: int, depth: int = 3, act=nn.ReLU) -> None:
        layers: list[nn.Module] = []
        d = n_in
        for _ in range(depth - 1):
            layers += [nn.Linear(d, width), act()]
            d = width
        layers.append(nn.Linear(d, n_out))
        super().__init__(*layers)
