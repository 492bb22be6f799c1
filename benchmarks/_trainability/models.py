"""The networks the trainability benchmark trains: what users write, no normalization.

Every model marks its output layer as ``self.head``; every other parametrized layer is followed
by the network's activation (the baselines read this to pick the matched gain).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "selu": nn.SELU}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown {name!r}; valid values are {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class BagMLP(nn.Module):
    """``nn.EmbeddingBag(mode="sum", sparse=True)`` over a sparse row, then a plain MLP.

    ``sparse=True`` (sparse table gradients) is the idiom for tables this large: a step costs
    O(nnz x width) instead of O(vocabulary x width) (measured 20-30x faster at 2^18 x 64).

    ``forward(indices, offsets, per_sample_weights)`` (the ``Dataset.batches(layout="bag")``
    triple), or ``forward((indices, offsets, per_sample_weights))`` -- the single-argument form
    that ``lsuv_with_singlebatch`` calls.
    """

    def __init__(self, n_features: int, width: int, hidden: int, n_out: int, act: str = "relu"):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, width, mode="sum", sparse=True)
        layers: list[nn.Module] = [_act(act)]
        for _ in range(hidden):
            layers += [nn.Linear(width, width), _act(act)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, indices, offsets=None, per_sample_weights=None) -> torch.Tensor:
        if isinstance(indices, (tuple, list)):
            indices, offsets, per_sample_weights = indices
        h = self.bag(indices, offsets, per_sample_weights=per_sample_weights)
        return self.head(self.body(h))


class PlainMLP(nn.Module):
    """``depth`` Linear layers (``depth - 1`` hidden + head), activation after each hidden one."""

    def __init__(self, n_in: int, width: int, depth: int, n_out: int, act: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = []
        fan_in = n_in
        for _ in range(depth - 1):
            layers += [nn.Linear(fan_in, width), _act(act)]
            fan_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(fan_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ResBlock(nn.Module):
    """``x + fc2(act(fc1(x)))``: a two-layer residual branch, no normalization."""

    def __init__(self, width: int, act: str):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = _act(act)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class ResMLP(nn.Module):
    """Stem Linear -> ``blocks`` residual blocks -> activation -> head. No normalization."""

    def __init__(self, n_in: int, width: int, blocks: int, n_out: int, act: str = "relu"):
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*[ResBlock(width, act) for _ in range(blocks)])
        self.act = _act(act)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.blocks(self.stem(x))))


class BagResMLP(nn.Module):
    """``nn.EmbeddingBag`` stem over a sparse row, then ``blocks`` residual blocks and a head."""

    def __init__(self, n_features: int, width: int, blocks: int, n_out: int, act: str = "relu"):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, width, mode="sum", sparse=True)
        self.blocks = nn.Sequential(*[ResBlock(width, act) for _ in range(blocks)])
        self.act = _act(act)
        self.head = nn.Linear(width, n_out)

    def forward(self, indices, offsets=None, per_sample_weights=None) -> torch.Tensor:
        if isinstance(indices, (tuple, list)):
            indices, offsets, per_sample_weights = indices
        h = self.bag(indices, offsets, per_sample_weights=per_sample_weights)
        return self.head(self.act(self.blocks(h)))
