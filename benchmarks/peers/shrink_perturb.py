"""Shrink & Perturb (Ash & Adams, NeurIPS 2020, arXiv:1910.08475).

Our choice for a continual stream (the paper applies it when new data arrives): every
``every`` steps (1,000) every weight matrix ``w <- shrink * w + sigma * eps``, ``eps ~
N(0, 1)``, with ``shrink`` = 0.8 and ``sigma`` = 0.01; biases are left; optimizer state kept.
"""

from __future__ import annotations

import torch
from torch import nn


class ShrinkPerturb:
    """Shrink & Perturb on any model (all parameters with >= 2 dimensions).

    Args:
        model: the model. every: steps between applications (1,000). shrink: 0.8.
        sigma: 0.01. seed: seed of the noise.
    """

    def __init__(self, model: nn.Module, *, every: int = 1000, shrink: float = 0.8,
                 sigma: float = 0.01, seed: int = 0) -> None:
        self.model, self.every, self.shrink, self.sigma = model, every, shrink, sigma
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def after_step(self, step: int, x: object, opt: torch.optim.Optimizer) -> int:
        """Call after ``opt.step()``; shrinks and perturbs every ``every`` steps."""
        if (step + 1) % self.every:
            return 0
        for p in self.model.parameters():
            if p.dim() >= 2:
                noise = torch.randn(p.shape, generator=self.gen, dtype=p.dtype)
                p.mul_(self.shrink).add_(noise, alpha=self.sigma)
        return 1
