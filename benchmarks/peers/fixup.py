"""Fixup (Zhang et al. 2019) and SkipInit / ReZero for residual nets without normalization.

Fixup, as its paper states it (Section 3, "Fixup initialization"):

1. the classification layer and the last layer of every residual branch start at 0;
2. every other layer gets a standard init (He), and the weight layers inside the residual
   branches are then scaled by ``L ** (-1 / (2 m - 2))``, ``L`` the number of residual branches
   and ``m`` the number of layers in a branch;
3. a scalar multiplier (init 1) in every branch and a scalar bias (init 0) before each conv,
   linear and element-wise activation layer.

SkipInit (De & Smith 2020) and ReZero (Bachlechner et al. 2020) keep the standard init and put
a learnable scalar, initialized to 0, on each residual branch (``x + alpha * F(x)``), so every
block is the identity at init.

What the functions require of the model: attributes ``blocks`` (an iterable of blocks, each with
``layers``: its branch's weight layers in forward order, ``scale``: the branch's scalar
multiplier, and ``biases``: its scalar biases) and ``head`` (the classification layer); any
other ``nn.Linear`` / ``nn.ConvNd`` (a stem) gets the standard init. :class:`ResidualNet`
builds such a model (Fixup's CIFAR BasicBlock, conv or MLP branches).

Deviations from the references: the standard init is He normal on the fan-in with the gain of
the net's activation (Fixup's CIFAR code draws on the fan-out; the two agree for the square
branch layers of these nets); SkipInit and ReZero share one function because on this block
they differ only in where the activation sits (ReZero: ``post_act=False``, no activation after
the sum; SkipInit and Fixup: the BasicBlock's activation after the sum).

References:
    Zhang, Dauphin, Ma, "Fixup Initialization: Residual Learning Without Normalization",
    ICLR 2019, arXiv:1901.09321. De, Smith, "Batch Normalization Biases Residual Blocks
    Towards the Identity Function in Deep Networks", NeurIPS 2020, arXiv:2002.10444.
    Bachlechner et al., "ReZero is All You Need", arXiv:2003.04887.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ._cost import Batch, Cost, LossFn, PeerResult

_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ResidualBlock(nn.Module):
    """Fixup's BasicBlock: ``act(x + scale * F(x) + b)``, scalar biases before every layer.

    ``F(x) = W2 (act(W1 (x + b0) + b1) + b2)``; with ``post_act=False`` no activation follows
    the sum (ReZero's block).
    """

    def __init__(self, width: int, *, kind: str = "conv", act: str = "relu",
                 post_act: bool = True) -> None:
        super().__init__()
        if kind == "conv":
            self.layers = nn.ModuleList(
                [nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(2)])
        else:
            self.layers = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(2)])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(1)) for _ in range(4)])
        self.scale = nn.Parameter(torch.ones(1))
        self.act = _ACTS[act]()
        self.post_act = post_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.biases
        out = self.act(self.layers[0](x + b[0]) + b[1])
        out = self.layers[1](out + b[2]) * self.scale + b[3]
        return self.act(x + out) if self.post_act else x + out


class ResidualNet(nn.Module):
    """A norm-free residual net with the hooks Fixup / SkipInit / ReZero need.

    Args:
        in_features: input channels (``kind="conv"``, inputs ``(N, C, H, W)``) or features
            (``kind="mlp"``, inputs ``(N, F)``).
        width: channels / units of every block. n_blocks: residual branches ``L``.
        n_classes: outputs of the head. kind: ``"conv"`` (3x3 convs) or ``"mlp"``.
        act: ``"relu"`` or ``"tanh"``. post_act: activation after each sum (True).
    """

    def __init__(self, in_features: int, width: int, n_blocks: int, n_classes: int, *,
                 kind: str = "conv", act: str = "relu", post_act: bool = True) -> None:
        super().__init__()
        if kind not in ("conv", "mlp"):
            raise ValueError(f"ResidualNet: kind must be 'conv' or 'mlp', got {kind!r}.")
        if act not in _ACTS:
            raise ValueError(f"ResidualNet: act must be one of {sorted(_ACTS)}, got {act!r}.")
        self.kind = kind
        self.stem = (nn.Conv2d(in_features, width, 3, padding=1, bias=False) if kind == "conv"
                     else nn.Linear(in_features, width, bias=False))
        self.stem_bias = nn.Parameter(torch.zeros(1))
        self.stem_act = _ACTS[act]()
        self.blocks = nn.ModuleList(
            [ResidualBlock(width, kind=kind, act=act, post_act=post_act)
             for _ in range(n_blocks)])
        self.head_bias = nn.Parameter(torch.zeros(1))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem_act(self.stem(x) + self.stem_bias)
        for block in self.blocks:
            h = block(h)
        if self.kind == "conv":
            h = h.mean(dim=(2, 3))
        return self.head(h + self.head_bias)


def _activation_name(model: nn.Module) -> str:
    """``"tanh"`` when the model holds a Tanh and no ReLU, else ``"relu"`` (He's gain)."""
    kinds = {type(m) for m in model.modules()}
    return "tanh" if nn.Tanh in kinds and nn.ReLU not in kinds else "relu"


def _he_(weight: torch.Tensor, act: str, gen: torch.Generator, factor: float = 1.0) -> None:
    fan_in = weight[0].numel()
    std = nn.init.calculate_gain(act) / math.sqrt(fan_in) * factor
    with torch.no_grad():
        weight.normal_(0.0, std, generator=gen)


def _blocks(model: nn.Module, who: str) -> list[nn.Module]:
    blocks = list(getattr(model, "blocks", None) or [])
    head = getattr(model, "head", None)
    if not blocks or not isinstance(head, nn.Linear):
        raise TypeError(
            f"{who} needs a model with `blocks` (each with `layers`, `scale`, `biases`) and a "
            f"Linear `head`; {type(model).__name__} has none. Build it with ResidualNet or "
            "add these attributes.")
    for i, b in enumerate(blocks):
        if not all(hasattr(b, a) for a in ("layers", "scale", "biases")) or len(b.layers) < 2:
            raise TypeError(f"{who}: blocks[{i}] lacks `layers` (>= 2), `scale` or `biases`.")
    return blocks


def _standard_init(model: nn.Module, blocks: list[nn.Module], act: str,
                   gen: torch.Generator, factor: float) -> None:
    """He init on every weight layer; branch layers times ``factor``; biases 0."""
    branch = {id(m) for b in blocks for m in b.layers}
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            _he_(m.weight, act, gen, factor if id(m) in branch else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for b in blocks:
        with torch.no_grad():
            for p in b.biases:
                p.zero_()


def fixup_init(model: nn.Module, batches: Iterable[Batch] | None = None, *,
               loss_fn: LossFn | None = None, seed: int = 0) -> PeerResult:
    """Fixup's init, in place (data-free: ``batches`` and ``loss_fn`` are ignored).

    Args:
        model: a model with ``blocks`` and ``head`` (see the module docstring).
        batches: unused. loss_fn: unused. seed: seed of the draws (0).

    Returns:
        PeerResult with zero passes; notes hold ``L``, ``m`` and the branch factor.

    Raises:
        TypeError: the model lacks the hooks.
    """
    cost = Cost("fixup")
    blocks = _blocks(model, "fixup_init")
    n_branches, m = len(blocks), len(blocks[0].layers)
    factor = n_branches ** (-1.0 / (2 * m - 2))
    gen = torch.Generator().manual_seed(seed)
    _standard_init(model, blocks, _activation_name(model), gen, factor)
    with torch.no_grad():
        for b in blocks:
            b.layers[-1].weight.zero_()
            b.scale.fill_(1.0)
        model.head.weight.zero_()
        if model.head.bias is not None:
            model.head.bias.zero_()
    return cost.result(L=n_branches, m=m, branch_factor=factor)


def skipinit(model: nn.Module, batches: Iterable[Batch] | None = None, *,
             loss_fn: LossFn | None = None, seed: int = 0) -> PeerResult:
    """SkipInit / ReZero, in place: standard (He) init everywhere, every branch scalar 0.

    Args:
        model: a model with ``blocks`` and ``head`` (see the module docstring).
        batches: unused. loss_fn: unused. seed: seed of the draws (0).

    Returns:
        PeerResult with zero passes.

    Raises:
        TypeError: the model lacks the hooks.
    """
    cost = Cost("skipinit")
    blocks = _blocks(model, "skipinit")
    gen = torch.Generator().manual_seed(seed)
    _standard_init(model, blocks, _activation_name(model), gen, 1.0)
    with torch.no_grad():
        for b in blocks:
            b.scale.zero_()
    return cost.result(L=len(blocks))


#: ReZero's rule on this block is SkipInit's (build the net with ``post_act=False``)
rezero = skipinit
