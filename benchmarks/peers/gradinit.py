"""GradInit (Zhu et al. 2021), the paper's loop: learn one scale per parameter tensor.

Algorithm 1 of the paper. Every parameter tensor ``w_i`` (weights and biases) gets a scalar
``m_i`` (init 1); the net runs with ``theta_i = m_i * w_i``. Per iteration, on a batch ``S``:

* ``g = grad_theta L(S; theta)`` (kept in the graph), ``G = ||g||_p`` with ``p = 1`` for Adam,
  ``p = 2`` for SGD;
* if ``G > gamma``: take a step on ``m`` that lowers ``G`` (the gradient-norm constraint);
* else: the look-ahead objective ``L(S'; theta - eta A[g]) / eta`` on a second batch ``S'``,
  ``A[g] = g / ||g||_2`` for SGD (the reference's ``--gradinit-normalize-grad``), ``sign(g)``
  for Adam (Adam's first step), and a step on ``m`` that lowers it;
* the steps on ``m`` are Adam (lr ``tau``), gradient clipped at norm 1, then ``m >= 0.01``.

At the end ``w_i <- m_i w_i``. Defaults are the authors' CIFAR launch script: 390 iterations (an
epoch of CIFAR-10 at batch 128), ``tau = 1e-2``, ``eta = 0.1``, ``gamma = 1``, min scale 0.01,
scale-gradient clip 1; ``budget`` scales the iteration count down (``round(390 * budget)``).

Deviations from the reference: ``S'`` is simply the next batch (the reference reuses the first
half of ``S`` and draws a new second half); the model stays in the mode it was given (the
reference puts BatchNorm in train mode and dropout off); as in the reference, ``A[g]`` is
detached, so the look-ahead objective is differentiated through ``theta`` only; the clamp at
0.01 applies to every scale (the paper's Algorithm 1; the reference code lets bias scales go to
0); for Adam, ``eta`` defaults to 1e-3 (set it to the training learning rate, as the paper
does).

Reference:
    Zhu, Ni, Xu, Kong, Huang, Goldstein, "GradInit: Learning to Initialize Neural Networks for
    Stable and Efficient Training", NeurIPS 2021, arXiv:2102.08098.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.func import functional_call

from ._cost import (
    Batch,
    Cost,
    LossFn,
    PeerResult,
    check_positive,
    cycle_batches,
    double_backward_attention,
)

_ALGS = ("sgd", "adam")


def _grads(model: nn.Module, theta: dict[str, torch.Tensor], batch: Batch, loss_fn: LossFn,
           create_graph: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x, y = batch
    loss = loss_fn(functional_call(model, theta, (x,)), y)
    g = torch.autograd.grad(loss, list(theta.values()), create_graph=create_graph,
                            allow_unused=True)
    return loss, [torch.zeros_like(t) if gi is None else gi for gi, t in zip(g, theta.values())]


def _norm(g: list[torch.Tensor], alg: str) -> torch.Tensor:
    if alg == "adam":
        return sum(gi.abs().sum() for gi in g)
    return sum(gi.square().sum() for gi in g).sqrt()


def _step(g: list[torch.Tensor], alg: str) -> list[torch.Tensor]:
    """``A[g]``, detached: sign for Adam, the unit-norm gradient for SGD."""
    if alg == "adam":
        return [gi.detach().sign() for gi in g]
    n = _norm(g, "sgd").detach().clamp_min(1e-12)
    return [gi.detach() / n for gi in g]


def lookahead_loss(model: nn.Module, batch: Batch, next_batch: Batch, *, loss_fn: LossFn,
                   alg: str = "sgd", eta: float = 0.1) -> float:
    """GradInit's objective at the model's current parameters: ``L(S'; theta - eta A[g(S)])``.

    Args:
        model: the net. batch: ``S``. next_batch: ``S'``. loss_fn: task loss.
        alg: ``"sgd"`` or ``"adam"``. eta: look-ahead step (0.1).

    Returns:
        The look-ahead loss (not divided by ``eta``).
    """
    theta = {n: p.detach().requires_grad_() for n, p in model.named_parameters()}
    _, g = _grads(model, theta, batch, loss_fn, create_graph=False)
    with torch.no_grad():
        new = {n: t - eta * a for (n, t), a in zip(theta.items(), _step(g, alg))}
        x, y = next_batch
        return float(loss_fn(functional_call(model, new, (x,)), y))


def gradinit(model: nn.Module, batches: Iterable[Batch], *, loss_fn: LossFn, seed: int = 0,
             budget: float = 1.0, iters: int = 390, alg: str = "sgd", lr: float = 1e-2,
             eta: float | None = None, gamma: float = 1.0, min_scale: float = 0.01,
             grad_clip: float = 1.0) -> PeerResult:
    """Run GradInit's loop on ``model``'s trainable tensors and write ``m_i w_i`` back in place.

    Args:
        model: any model (parameters are read by name, the net is run functionally).
        batches: ``(input, target)`` tuples, cycled (two per look-ahead iteration).
        loss_fn: task loss ``loss_fn(output, target)``.
        seed: unused (the loop draws nothing; the batches fix the run).
        budget: fraction of the paper's iteration count (1.0). iters: the full count (390).
        alg: target optimizer, ``"sgd"`` or ``"adam"``. lr: Adam's lr on the scales (1e-2).
        eta: look-ahead step (None: 0.1 for SGD, 1e-3 for Adam). gamma: gradient-norm bound
            (1.0). min_scale: lower clamp of every scale (0.01). grad_clip: norm clip of the
            scales' gradient (1.0).

    Returns:
        PeerResult; notes hold the iterations, the constraint-step count and the final scales
        (``scales``: name -> m_i).

    Raises:
        ValueError: an unknown ``alg`` or a non-positive budget / step size.
    """
    if alg not in _ALGS:
        raise ValueError(f"gradinit: alg must be one of {_ALGS}, got {alg!r}.")
    eta = (0.1 if alg == "sgd" else 1e-3) if eta is None else eta
    check_positive("gradinit", budget=budget, iters=iters, lr=lr, eta=eta, gamma=gamma)
    cost = Cost("gradinit")
    data = cycle_batches(batches, "gradinit")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    base = {n: p.detach().clone() for n, p in named}
    scales = torch.ones(len(named), requires_grad=True)
    opt = torch.optim.Adam([scales], lr=lr)
    n_iter = max(1, round(iters * budget))
    with double_backward_attention():
        constrained = _loop(model, data, base, scales, opt, cost, n_iter=n_iter, alg=alg,
                            eta=eta, gamma=gamma, min_scale=min_scale, grad_clip=grad_clip,
                            loss_fn=loss_fn)
    with torch.no_grad():
        for s, (n, p) in zip(scales, named):
            p.copy_(s * base[n])
    final = dict(zip(base, scales.detach().tolist()))
    return cost.result(iterations=n_iter, constraint_steps=constrained, scales=final)


def _loop(model: nn.Module, data: Iterator[Batch], base: dict[str, torch.Tensor],
          scales: torch.Tensor, opt: torch.optim.Optimizer, cost: Cost, *, n_iter: int,
          alg: str, eta: float, gamma: float, min_scale: float, grad_clip: float,
          loss_fn: LossFn) -> int:
    """GradInit's iterations (see the module docstring); returns the constraint-step count."""
    constrained = 0
    for _ in range(n_iter):
        theta = {n: s * w for s, (n, w) in zip(scales, base.items())}
        _, g = _grads(model, theta, next(data), loss_fn, create_graph=True)
        gnorm = _norm(g, alg)
        cost.forward += 1
        cost.backward += 1
        if gnorm.item() > gamma:
            obj, constrained = gnorm, constrained + 1
        else:
            new = {n: t - eta * a for (n, t), a in zip(theta.items(), _step(g, alg))}
            x, y = next(data)
            obj = loss_fn(functional_call(model, new, (x,)), y) / eta
            cost.forward += 1
        opt.zero_grad()
        obj.backward()
        cost.backward += 1
        torch.nn.utils.clip_grad_norm_([scales], grad_clip)
        opt.step()
        with torch.no_grad():
            scales.clamp_(min=min_scale)
    return constrained
