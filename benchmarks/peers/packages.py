"""Thin wrappers over the pinned peer packages, each called as its README tells its users.

Pins (install with ``pip install lsuv==0.3.0 gradinit==0.1.1 dks==0.1.2 zero-init==0.3``); each
package is imported inside its wrapper, so this module imports without them.

* :func:`lsuv_init` -- ``lsuv`` 0.3.0, ``lsuv_with_singlebatch(model, x)`` (Mishkin & Matas,
  arXiv:1511.06422). It draws its orthonormal weights from torch's global RNG; the wrapper
  seeds it inside ``torch.random.fork_rng`` so the caller's RNG state is left alone.
* :func:`gradinit_package` -- ``gradinit`` 0.1.1, its README loop: ``GradInitWrapper``, Adam on
  the scales, ``grad_loss(loss, norm)``, ``clamp_scales()``. The package is a simplified port of
  GradInit: when the gradient norm is under ``gamma`` it minimizes the plain task loss instead
  of the paper's look-ahead loss after one optimizer step, so it is *not* the paper's
  objective (the faithful loop is :func:`peers.gradinit.gradinit`).
* :func:`dks_init` / :func:`dks_activation` / :func:`dks_normalize` -- ``dks`` 0.1.2 (DeepMind
  DKS/TAT, Martens et al. arXiv:2110.01765, Zhang et al. arXiv:2203.08120). Measured: the
  package's PyTorch sampler ``scaled_uniform_orthogonal_`` treats a 2-D weight as ``[in, out]``
  (and a conv bank as ``[in, out, *k]``), the JAX layout, while torch stores ``[out, in]``. On
  non-square layers it then rescales by ``sqrt(in / out)`` instead of ``sqrt(out / in)`` and
  puts the orthonormal side on the wrong axis: through a DKS-tanh MLP with alternating widths
  128 / 48 the q value alternates ~0.51 / ~1.35 instead of staying at 1. Workaround: call it on
  the transposed view, ``scaled_uniform_orthogonal_(w.transpose(0, 1))``, which writes the
  correct ``[out, in]`` SUO sample into ``w`` (q stays ~1). Same on Delta conv banks: the
  q ratio out / in of a 3x3 conv called as documented was 0.333 (8 -> 24 channels) and 2.997
  (24 -> 8), on the transposed view 1.000 and 0.998. Its Delta path indexes with a list, which
  torch warns will change meaning in a later release (a UserWarning, still correct on 2.13).
* :func:`zero_package_init` -- ``zero-init`` 0.3, ``ZerO_Init(layer)`` on every layer (Linear and
  Conv2d only; its Hadamard branch is ``hadamard(2^m) / 2^(m/2)``, same as
  :func:`peers.zeroinit.zero_matrix`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

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

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _CountForwards:
    """Counts calls of ``model``'s forward (a pre-hook on the root, removed on exit)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.n = model, 0

    def __enter__(self) -> _CountForwards:
        self._h = self.model.register_forward_pre_hook(self._hook)
        return self

    def _hook(self, *_: object) -> None:
        self.n += 1

    def __exit__(self, *_: object) -> None:
        self._h.remove()


def lsuv_init(model: nn.Module, batches: Iterable[Batch], *, loss_fn: LossFn | None = None,
              seed: int = 0, needed_std: float = 1.0, std_tol: float = 0.1,
              max_attempts: int = 10) -> PeerResult:
    """``lsuv.lsuv_with_singlebatch`` on the first batch's input, in place.

    Args:
        model: any model. batches: ``(input, target)`` tuples; only the first input is used.
        loss_fn: unused. seed: seed of the orthonormal draws (0). needed_std, std_tol,
            max_attempts: the package's arguments (1.0, 0.1, 10).

    Returns:
        PeerResult with the forward passes LSUV made.
    """
    from lsuv import lsuv_with_singlebatch

    cost = Cost("lsuv")
    x, _ = next(cycle_batches(batches, "lsuv_init"))
    with torch.random.fork_rng(), _CountForwards(model) as c:
        torch.manual_seed(seed)
        lsuv_with_singlebatch(model, x, needed_std=needed_std, std_tol=std_tol,
                              max_attempts=max_attempts, verbose=False,
                              device=next(model.parameters()).device)
    cost.forward = c.n
    return cost.result()


def gradinit_package(model: nn.Module, batches: Iterable[Batch], *, loss_fn: LossFn,
                     seed: int = 0, steps: int = 390, lr: float = 1e-3, norm: int = 1,
                     gamma: float = 1.0, min_scale: float = 0.01) -> PeerResult:
    """The ``gradinit`` 0.1.1 README loop, in place (the package's simplified objective).

    Args:
        model: any model. batches: ``(input, target)`` tuples, cycled. loss_fn: task loss.
        seed: unused (the loop draws nothing). steps: loop steps (390, the paper's count).
        lr: Adam's learning rate on the scales (1e-3, torch's default as in the README).
        norm: 1 when training will use Adam, 2 for SGD (README). gamma: gradient-norm
            threshold (1.0). min_scale: clamp of the scales (0.01).

    Returns:
        PeerResult; notes hold the last loss.
    """
    from gradinit import GradInitWrapper

    check_positive("gradinit_package", steps=steps, lr=lr)
    cost = Cost("gradinit_package")
    data = cycle_batches(batches, "gradinit_package")
    last = float("nan")
    with GradInitWrapper(model) as ginit, double_backward_attention():
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            x, y = next(data)
            loss = loss_fn(model(x), y)
            loss = ginit.grad_loss(loss, norm, gamma=gamma)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ginit.clamp_scales(min_scale)
            last = loss.item()
            cost.forward += 1
            cost.backward += 2  # grad_loss's create_graph gradient, then loss.backward()
    return cost.result(last_objective=last)


def dks_activation(name: str, depth: int, *, method: str = "DKS",
                   **params: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The DKS/TAT-transformed activation for an MLP of ``depth`` nonlinear layers.

    Args:
        name: a ``dks`` activation name (``"tanh"``, ``"softplus"``, ``"leaky_relu"``, ...).
        depth: nonlinear layers in series (the subnetwork maximizing function applies the
            local map ``depth`` times). method: ``"DKS"`` or ``"TAT"``.
        **params: ``dks_params`` (DKS) or ``tat_params`` (TAT) entries.

    Returns:
        The transformed activation, a torch callable.
    """
    from dks.pytorch import activation_transform

    check_positive("dks_activation", depth=depth)

    def subnet_max(x: float, r_fn: Callable[[float], float]) -> float:
        for _ in range(depth):
            x = r_fn(x)
        return x

    kw = {"dks_params": params} if method == "DKS" else {"tat_params": params}
    with warnings.catch_warnings():  # dks's root finder probes cosh far out: overflow is benign
        warnings.filterwarnings("ignore", "overflow", RuntimeWarning)
        acts = activation_transform.get_transformed_activations(
            [name], method=method, subnet_max_func=subnet_max, **kw)
    return acts[name]


def dks_normalize(x: torch.Tensor) -> torch.Tensor:
    """``dks``'s per-location normalization (adds one homogeneous coordinate: ``F + 1``)."""
    from dks.pytorch import data_preprocessing

    return data_preprocessing.per_location_normalization(x)


def dks_init(model: nn.Module, batches: Iterable[Batch] | None = None, *,
             loss_fn: LossFn | None = None, seed: int = 0, delta: bool = True) -> PeerResult:
    """``dks``'s SUO sampler on every Linear / ConvNd weight (transposed view), zero biases.

    Args:
        model: a model built with :func:`dks_activation`'s activations and fed
            :func:`dks_normalize`'d inputs (DKS's assumptions). batches: unused.
        loss_fn: unused. seed: seed of the draws (0; the sampler uses torch's global RNG,
            seeded inside ``fork_rng``). delta: Delta-orthogonal conv kernels (True).

    Returns:
        PeerResult with zero passes; notes name the layout workaround.
    """
    from dks.pytorch import parameter_sampling_functions as psf

    cost = Cost("dks")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for m in model.modules():
            if isinstance(m, _WEIGHTED):
                psf.scaled_uniform_orthogonal_(m.weight.data.transpose(0, 1), delta=delta)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return cost.result(layout="sampler called on weight.transpose(0, 1) ([in, out] view)")


def zero_package_init(model: nn.Module, batches: Iterable[Batch] | None = None, *,
                      loss_fn: LossFn | None = None, seed: int = 0) -> PeerResult:
    """``zero_init.ZerO_Init`` on every module, in place (Linear and Conv2d; others untouched).

    Args:
        model: any model. batches, loss_fn, seed: unused (deterministic, data-free).

    Returns:
        PeerResult with zero passes.
    """
    from zero_init import ZerO_Init

    cost = Cost("zero_package")
    for m in model.modules():
        ZerO_Init(m)
    return cost.result()
