"""Unit surgery shared by the peers: rows in, columns out, Adam moments of exactly those."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from initwise.nn import SparseLinear

#: optimizer state entries zeroed for a re-drawn unit (Adam / AdamW; SGD momentum)
STATE_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


@dataclass
class Hidden:
    """One hidden layer: its weights (``layer``), its ReLU module, the layer reading it."""

    layer: nn.Module
    act: nn.Module
    nxt: nn.Module

    @property
    def units(self) -> int:
        return self.layer.weight.shape[unit_axis(self.layer)]


def unit_axis(m: nn.Module) -> int:
    """Weight axis of output units (SparseLinear stores ``(in, out)``)."""
    return 1 if isinstance(m, SparseLinear) else 0


def hidden_layers(model: nn.Sequential) -> list[Hidden]:
    """The ``(layer, ReLU, next layer)`` triples of a ``[layer, ReLU]* layer`` Sequential."""
    mods = list(model)
    return [Hidden(mods[i], mods[i + 1], mods[i + 2]) for i in range(0, len(mods) - 2, 2)]


def _fill_state(opt: torch.optim.Optimizer | None, p: torch.Tensor, axis: int,
                idx: torch.Tensor) -> None:
    if opt is None:
        return
    state = opt.state.get(p, {})
    for key in STATE_KEYS:
        t = state.get(key)
        if isinstance(t, torch.Tensor) and t.shape == p.shape:
            t.index_fill_(axis, idx, 0.0)


@torch.no_grad()
def reinit_incoming(h: Hidden, idx: torch.Tensor, gen: torch.Generator,
                    opt: torch.optim.Optimizer | None) -> None:
    """Fresh incoming weights from torch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
    bias 0, optimizer state of those rows zeroed."""
    w, ax = h.layer.weight, unit_axis(h.layer)
    fan_in = w.shape[1 - ax]
    bound = 1.0 / math.sqrt(fan_in)
    for j in idx.tolist():
        row = w.select(ax, j)
        row.copy_((torch.rand(row.shape, generator=gen) * 2 - 1) * bound)
    _fill_state(opt, w, ax, idx)
    if h.layer.bias is not None:
        h.layer.bias[idx] = 0.0
        _fill_state(opt, h.layer.bias, 0, idx)


@torch.no_grad()
def zero_outgoing(h: Hidden, idx: torch.Tensor, opt: torch.optim.Optimizer | None,
                  mean: torch.Tensor | None = None) -> None:
    """Zero the next layer's weights reading ``idx`` (adding ``W[:, j] * mean[j]`` to its bias
    when ``mean`` is given) and their optimizer state."""
    w = h.nxt.weight
    ax = 1 - unit_axis(h.nxt)
    if mean is not None and h.nxt.bias is not None:
        cols = w.index_select(ax, idx)
        cols = cols if ax == 1 else cols.T
        h.nxt.bias += cols @ mean.to(cols.dtype)
    w.index_fill_(ax, idx, 0.0)
    _fill_state(opt, w, ax, idx)


def outgoing_abs_sum(h: Hidden) -> torch.Tensor:
    """Per unit, ``sum_k |w_out[k, j]|``."""
    w = h.nxt.weight.detach()
    return w.abs().sum(0) if unit_axis(h.nxt) == 0 else w.abs().sum(1)
