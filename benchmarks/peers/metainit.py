"""MetaInit (Dauphin & Schoenholz 2019): tune the weight norms to minimize the gradient quotient.

The gradient quotient of parameters ``theta`` on a batch, with ``g`` the gradient and ``H`` the
Hessian of the loss,

    GQ(theta) = 1/N * sum_i | (g_i - (H g)_i) / g_i - 1 |,

with ``g_i + eps * sign(g_i)`` in the denominator (``eps = 1e-5``), measures how far one step of
gradient descent is from changing the gradient by a constant factor. ``H g`` is the gradient of
``|g|^2 / 2`` (double backprop). MetaInit keeps every weight tensor's direction (tensors of
``>= 2`` dims; biases are not tuned) and moves its norm by signSGD with momentum on
``d GQ / d||w||`` (the paper's Algorithm: lr 0.1, momentum 0.9, 500 steps, ``eps = 1e-5``);
``budget`` scales the step count down (``round(500 * budget)``). GQ is taken over all
parameters, biases included, as in the paper's code.

Deviations from the reference: the paper's code feeds fresh ``N(0, 1)`` inputs and random
labels at every step (data-free); here the loop uses the benchmark's batches, cycled, so it
sees the same inputs as the data-aware peers (set ``batches`` to Gaussian noise to get the
paper's variant); the model stays in the mode it was given (the paper calls ``model.eval()``).
As in the paper, the norm step is additive (``||w|| + momentum buffer``), so on tiny nets whose
norms are ~1 the paper's lr 0.1 overshoots (measured: GQ rose from 12 to 91 on a 4-layer width-32
tanh MLP with weights x4); lr ~0.01 suits them.

Reference:
    Dauphin, Schoenholz, "MetaInit: Initializing learning by learning to initialize",
    NeurIPS 2019.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ._cost import (
    Batch,
    Cost,
    LossFn,
    PeerResult,
    check_positive,
    cycle_batches,
    double_backward_attention,
)


def gradient_quotient(loss: torch.Tensor, params: list[torch.Tensor],
                      eps: float = 1e-5) -> torch.Tensor:
    """GQ (see the module docstring), differentiable in ``params``; mean over all entries.

    Args:
        loss: scalar loss built from ``params`` with a graph. params: the tensors.
        eps: floor of the denominator (1e-5).

    Returns:
        The scalar quotient.
    """
    grad = torch.autograd.grad(loss, params, create_graph=True)
    hg = torch.autograd.grad(sum((g * g).sum() / 2 for g in grad), params, create_graph=True)
    total = sum(((g - h) / (g + eps * (2 * (g >= 0).float() - 1).detach()) - 1).abs().sum()
                for g, h in zip(grad, hg))
    return total / sum(p.numel() for p in params)


def quotient_on(model: nn.Module, batch: Batch, *, loss_fn: LossFn, eps: float = 1e-5) -> float:
    """GQ of ``model`` on one batch, as a float (for before / after comparisons)."""
    params = [p for p in model.parameters() if p.requires_grad]
    x, y = batch
    with double_backward_attention():
        return gradient_quotient(loss_fn(model(x), y), params, eps).item()


def metainit(model: nn.Module, batches: Iterable[Batch], *, loss_fn: LossFn, seed: int = 0,
             budget: float = 1.0, steps: int = 500, lr: float = 0.1, momentum: float = 0.9,
             eps: float = 1e-5) -> PeerResult:
    """Run MetaInit on ``model`` in place: rescale each weight tensor, directions fixed.

    Args:
        model: any model. batches: ``(input, target)`` tuples, cycled. loss_fn: task loss.
        seed: unused (the loop draws nothing). budget: fraction of the step count (1.0).
        steps: the paper's step count (500). lr: signSGD step on the norms (0.1).
        momentum: (0.9). eps: GQ's denominator floor (1e-5).

    Returns:
        PeerResult; notes hold the first and last GQ and the final norm ratio per tensor.

    Raises:
        ValueError: no weight tensor with >= 2 dims, or a non-positive budget / lr.
    """
    check_positive("metainit", budget=budget, steps=steps, lr=lr)
    cost = Cost("metainit")
    data = cycle_batches(batches, "metainit")
    params = [p for p in model.parameters() if p.requires_grad]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    if not named:
        raise ValueError("metainit: the model has no trainable weight with >= 2 dims to tune.")
    start = {n: float(p.detach().norm()) for n, p in named}
    memory = [0.0] * len(named)
    gqs: list[float] = []
    for _ in range(max(1, round(steps * budget))):
        x, y = next(data)
        with double_backward_attention():
            gq = gradient_quotient(loss_fn(model(x), y), params, eps)
            grads = torch.autograd.grad(gq, [p for _, p in named])
        cost.forward += 1
        cost.backward += 3  # gradient, Hessian-vector product, gradient of GQ
        gqs.append(gq.item())
        with torch.no_grad():
            for j, ((_, p), g) in enumerate(zip(named, grads)):
                norm = p.norm()
                d_norm = torch.sign((p * g).sum() / norm)  # sign of dGQ / d||w||
                memory[j] = momentum * memory[j] - lr * float(d_norm)
                p.mul_((norm + memory[j]) / norm)
    ratios = {n: float(p.detach().norm()) / start[n] for n, p in named}
    return cost.result(gq_first=gqs[0], gq_last=gqs[-1], norm_ratio=ratios)
