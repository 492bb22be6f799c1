"""Shared models and helpers for the policy tests."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

torch.set_num_threads(1)


class WithReset(nn.Module):
    """A custom layer with its own reset_parameters that draws from the GLOBAL RNG."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n, n))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return x @ self.weight.t()


class NoReset(nn.Module):
    """A custom layer with a parameter and no reset_parameters."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((n,), 3.0))

    def forward(self, x):
        return x * self.scale


class Acceptance(nn.Module):
    """Issue 2's acceptance model: tied weights, frozen params, MHA, LSTM, ConvTranspose2d,
    EmbeddingBag and custom modules."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(40, 16)
        self.bag = nn.EmbeddingBag(500, 16, mode="sum")
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.up = nn.ConvTranspose2d(1, 2, 4, stride=2)
        self.frozen = nn.Linear(16, 16)
        self.frozen.requires_grad_(False)
        self.custom = WithReset(16)
        self.gate = NoReset(16)
        self.head = nn.Linear(16, 40, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids, bag_ids, offsets):
        h = self.emb(ids) + self.bag(bag_ids, offsets)[:, None]
        a, _ = self.attn(h, h, h)
        o, _ = self.lstm(h + a)
        img = self.up(o[:, None, :4, :4]).mean((1, 2, 3))[:, None, None]
        o = self.custom(self.frozen(o)) + img
        return self.head(self.gate(o))


def acceptance_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 40, (2, 5), generator=g), torch.randint(0, 500, (12,), generator=g),
            torch.tensor([0, 6]))


def bits(model: nn.Module) -> dict[str, torch.Tensor]:
    """Exact bit patterns of every parameter and buffer (so -0.0 != 0.0 and NaN == NaN)."""
    out = {}
    for k, v in model.state_dict(keep_vars=True).items():
        v = v.detach().clone()
        out[k] = v.view(torch.int32) if v.dtype == torch.float32 else v
    return out


def same_bits(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_std(t: torch.Tensor, expected: float, sigmas: float = 5.0) -> None:
    """The sample std of ``t`` equals ``expected`` within ``sigmas`` standard errors
    (std of a sample std of n normal draws ~ expected / sqrt(2 n))."""
    t = t.detach().double().flatten()
    tol = sigmas / math.sqrt(2 * t.numel())
    ratio = float(t.pow(2).mean().sqrt()) / expected
    assert abs(ratio - 1) < tol, f"std ratio {ratio:.4f}, tolerance {tol:.4f}"


@pytest.fixture
def acceptance():
    return Acceptance(), acceptance_inputs()


@pytest.fixture
def h():
    """The helpers above, as a namespace (test modules cannot import conftest by name)."""
    import types

    return types.SimpleNamespace(
        Acceptance=Acceptance, WithReset=WithReset, NoReset=NoReset,
        inputs=acceptance_inputs, bits=bits, same_bits=same_bits, assert_std=assert_std,
    )
