"""ReDo (Sokar et al., ICML 2023, arXiv:2302.12902): recycle dormant units every F steps.

The recipe as published: every ``every`` (1,000) steps, on a batch of recent inputs, a unit's
score is its mean ``|h|`` over the batch divided by the layer's mean of that quantity (the
mean, not the sum, as the authors' code does); units with score ``<= tau`` (0.1) get fresh
incoming weights from the layer's initializer (here torch's default) and a zero bias, their
outgoing weights are set to zero and their Adam moments are zeroed. No cap on the count, no
bias correction.
"""

from __future__ import annotations

import torch
from torch import nn

from peers._units import hidden_layers, reinit_incoming, zero_outgoing


class ReDo:
    """ReDo on a ``[layer, ReLU]* layer`` Sequential.

    Args:
        model: the Sequential. every: steps between recycles (1,000). tau: threshold (0.1).
        seed: seed of the re-draws.
    """

    def __init__(self, model: nn.Sequential, *, every: int = 1000, tau: float = 0.1,
                 seed: int = 0) -> None:
        self.model, self.every, self.tau = model, every, tau
        self.hidden = hidden_layers(model)
        self.gen = torch.Generator().manual_seed(seed)
        self.recycled = 0

    def scores(self, x: object) -> list[torch.Tensor]:
        """ReDo's score of every hidden unit on batch ``x`` (no_grad forward with hooks)."""
        acts: list[torch.Tensor] = []
        hooks = [h.act.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
                 for h in self.hidden]
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            for hk in hooks:
                hk.remove()
        out = []
        for a in acts:
            m = a.abs().reshape(-1, a.shape[-1]).mean(0)
            out.append(m / m.mean() if m.mean() > 0 else torch.zeros_like(m))
        return out

    def after_step(self, step: int, x: object, opt: torch.optim.Optimizer) -> int:
        """Call after ``opt.step()`` with the step's batch; recycles every ``every`` steps."""
        if (step + 1) % self.every:
            return 0
        n = 0
        for h, s in zip(self.hidden, self.scores(x)):
            idx = (s <= self.tau).nonzero().flatten()
            if idx.numel():
                reinit_incoming(h, idx, self.gen, opt)
                zero_outgoing(h, idx, opt)
                n += idx.numel()
        self.recycled += n
        return n
