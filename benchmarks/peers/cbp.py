"""Continual Backprop (Dohare et al., Nature 2024, arXiv:2306.13812): replace low-utility units.

Each step, per hidden layer: the contribution utility ``u_j <- d u_j + (1 - d) |h_j| sum_k
|w_out[k, j]|`` (``|h_j|`` averaged over the batch, decay ``d`` = 0.99) and a running mean of
``h_j`` are updated and every unit ages by one; a fraction ``rho`` (1e-4) of the layer's mature
units (age > ``maturity`` = 100) is replaced per step (fractions accumulate), the lowest
bias-corrected utility first: fresh incoming weights from the initializer, bias 0, outgoing
weights 0 and the next layer's bias corrected by the unit's mean output times its old outgoing
weights (so the function does not change), Adam moments of those rows/columns zeroed, utility,
mean and age reset.
"""

from __future__ import annotations

import torch
from torch import nn

from peers._units import hidden_layers, outgoing_abs_sum, reinit_incoming, zero_outgoing


class ContinualBackprop:
    """Continual Backprop on a ``[layer, ReLU]* layer`` Sequential.

    Args:
        model: the Sequential. rate: replacement rate per step (1e-4). decay: utility decay
        (0.99). maturity: minimum age (100). seed: seed of the re-draws.
    """

    def __init__(self, model: nn.Sequential, *, rate: float = 1e-4, decay: float = 0.99,
                 maturity: int = 100, seed: int = 0) -> None:
        self.hidden = hidden_layers(model)
        self.rate, self.decay, self.maturity = rate, decay, maturity
        self.gen = torch.Generator().manual_seed(seed)
        n = [h.units for h in self.hidden]
        self.util = [torch.zeros(k) for k in n]
        self.mean = [torch.zeros(k) for k in n]
        self.age = [torch.zeros(k, dtype=torch.long) for k in n]
        self.owed = [0.0 for _ in n]
        self.replaced = 0
        self._last: list[torch.Tensor | None] = [None for _ in n]
        for i, h in enumerate(self.hidden):
            h.act.register_forward_hook(self._hook(i))

    def _hook(self, i: int):
        def keep(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if mod.training:
                self._last[i] = out.detach()
        return keep

    @torch.no_grad()
    def after_step(self, step: int, x: object, opt: torch.optim.Optimizer) -> int:
        """Call after ``opt.step()`` (uses the activations of the step's training forward)."""
        n = 0
        for i, h in enumerate(self.hidden):
            a = self._last[i]
            if a is None:
                continue
            a = a.reshape(-1, a.shape[-1]).float()
            d = self.decay
            self.util[i].mul_(d).add_((1 - d) * a.abs().mean(0) * outgoing_abs_sum(h).float())
            self.mean[i].mul_(d).add_((1 - d) * a.mean(0))
            self.age[i] += 1
            mature = self.age[i] > self.maturity
            self.owed[i] += self.rate * int(mature.sum())
            k = int(self.owed[i])
            if k == 0:
                continue
            self.owed[i] -= k
            bias_c = 1 - d ** self.age[i].double()
            u = (self.util[i].double() / bias_c).masked_fill(~mature, float("inf"))
            idx = torch.argsort(u)[:k]
            mean = (self.mean[i].double() / bias_c)[idx]
            zero_outgoing(h, idx, opt, mean=mean)
            reinit_incoming(h, idx, self.gen, opt)
            self.util[i][idx] = 0.0
            self.mean[i][idx] = 0.0
            self.age[i][idx] = 0
            n += k
        self.replaced += n
        return n
