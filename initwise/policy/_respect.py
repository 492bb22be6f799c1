"""The ``"respect"`` policy: keep the model's own initialization, and how ``"auto"`` picks it.

A model built by a library its authors tuned (Hugging Face ``transformers``, ``timm``,
``torchvision``) carries knowledge that a generic rule does not see: GPT-2 scales its residual
output projections by ``1/sqrt(2 n_layer)``; BERT and ViT draw N(0, 0.02) with a LayerNorm after
every block; timm and torchvision zero-init the last norm of each residual block (Goyal et al.
2017, arXiv:1706.02677) or a head; timm uses LayerScale. Redrawing those by fan-in rules trained
worse on every such model we tried (issue 15: BERT stuck at chance, GPT-2 5.77 vs 5.00 held-out
loss, ViT 0.050 vs 0.017). ``"respect"`` leaves every parameter as the library set it (each is
reported ``kept``); :func:`initwise.init` then fixes only what the measurement flags (the output
bias at the label prior, units dead on the data, a sparse input table, badly scaled inputs).

``"auto"`` chooses ``"respect"`` for a model whose modules come from a known library
(:func:`model_library`) and whose own init is healthy: finite parameters (:func:`initwise.apply`,
which has no data), and in :func:`initwise.init` also no error of the doctor's signal and
gradient checks on the calibration batch. Otherwise it applies the generic per-layer rules
(registered as ``"generic"``).
"""

from __future__ import annotations

import torch
from torch import nn

from initwise.policy._types import PolicyContext

__all__ = ["KNOWN_LIBRARIES", "finite_parameters", "model_library", "respect_policy"]

#: Top-level packages whose models carry a deliberate, tuned initialization.
KNOWN_LIBRARIES = ("transformers", "timm", "torchvision")


def model_library(model: nn.Module) -> tuple[str, str] | None:
    """``(library, class name)`` of the first module (the model itself first) whose class is
    defined in one of :data:`KNOWN_LIBRARIES`, or ``None``.

    Example:
        >>> model_library(nn.Linear(2, 2)) is None
        True
    """
    for module in model.modules():
        root = type(module).__module__.split(".", 1)[0]
        if root in KNOWN_LIBRARIES:
            return root, type(module).__name__
    return None


def finite_parameters(model: nn.Module) -> str | None:
    """The name of the first floating parameter holding a NaN/Inf, or ``None``."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and p.numel() and not bool(torch.isfinite(p.detach()).all()):
            return name
    return None


def respect_policy(name: str, module: nn.Module, ctx: PolicyContext) -> str:
    """Keep every parameter as the model's own init set it (recorded as ``kept``)."""
    return "keep"
