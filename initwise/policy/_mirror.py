"""Looks-linear draws: mirrored weights for Linear chains whose activation has a linear odd part.

For an activation with ``phi(z) - phi(-z) = c * z`` for every ``z`` (ReLU and leaky ReLU,
GELU -- exact and tanh form --, SiLU, softplus, hard-swish: ``phi(z) = c z / 2 + even(z)``),
two units that see ``z`` and ``-z`` carry ``z`` itself through the nonlinearity:
``phi(z) - phi(-z) = c z``. In a chain ``L -> phi -> M`` of ``nn.Linear`` layers, drawing L's
output rows in mirrored pairs, ``W_L = [B; -B]`` (bias ``[b; -b]``), and M's input columns in
anti-mirrored pairs, ``W_M = [A, -A]`` (so M computes ``A (phi(z) - phi(-z)) = c A z``), makes the
chain exactly linear at initialization; a middle layer has both, ``[[A, -A], [-A, A]]``. With
``A`` orthogonal and scaled ``1/c``, each pre-activation of a chain of equal widths is an
isometric image of the previous one (where widths differ, ``A`` is a scaled projection or
embedding): the whole depth starts as one linear map with all singular values equal
(dynamical isometry for ReLU networks, which plain orthogonal draws cannot give), and the
nonlinearity comes in as training moves the mirrored halves apart. The output layer's block is
Gaussian (like every output layer of the auto rule), and a block above the orthogonal cost
bound too. "Looks linear"
initialization (Balduzzi et al. 2017, "The Shattered Gradients Problem", arXiv:1702.08591);
for plain ReLU networks, mirrored orthogonal blocks (Burkholz & Dubatovka 2019, "Initialization
of ReLUs for Dynamical Isometry", arXiv:1806.06362).

Only where the graph shows the chain plainly: ``L``'s output goes to the activation and nowhere
else, the activation's output to ``M`` and nowhere else (neither is returned by the model),
both are ``nn.Linear`` (its own ``forward``) called once with untied, unparametrized weights,
both are drawn by the ``"auto"`` policy itself (no override, not frozen: a half-drawn pair
would be neither linear nor variance-preserving), ``L`` has an even number of outputs and a
bias (a unit that is inactive on the data is re-centred *with* its mirror by ``initwise.init``,
which needs the bias), and the network has no normalization layer (the same condition as the
orthogonal hidden draws).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from initwise.activations import activation_facts
from initwise.graph import consumers_of
from initwise.policy._common import has_norm, planned_by_registry
from initwise.schemes import normal_, orthogonal_

__all__ = ["MirrorRole", "mirror_gain", "mirror_roles", "mirrored_fill", "odd_linear_slope"]


def odd_linear_slope(name: str, fn: Any = None) -> float | None:
    """``c`` when the activation satisfies ``phi(z) - phi(-z) = c z`` (``c > 0``), else ``None``.

    :attr:`initwise.activations.ActivationFacts.odd_slope` (checked numerically in float64 on
    ``z`` in ``[-8, 8]``, relative tolerance 1e-9, with the activation's exact numpy form): ReLU 1,
    ``LeakyReLU(a)`` ``1 + a``, GELU (both forms), SiLU, softplus and hard-swish 1; tanh, sigmoid,
    ELU, SELU, Mish... ``None``. A module with learnable parameters (``nn.PReLU``) gives ``None``:
    its slope moves during training and may differ per channel.

    Example:
        >>> odd_linear_slope("leaky_relu", torch.nn.LeakyReLU(0.2))
        1.2
    """
    if isinstance(fn, nn.Module) and any(True for _ in fn.parameters()):
        return None
    facts = activation_facts(fn if fn is not None else name)
    return facts.odd_slope if facts is not None else None


class MirrorRole:
    """A layer's part in a looks-linear chain.

    Attributes:
        out: its output rows are drawn in mirrored pairs ``[B; -B]`` (it feeds ``phi`` then a
            mirrored-input Linear).
        in_slope: ``c`` of the activation before it when its input columns are anti-mirrored
            ``[A, -A]`` (its input is ``phi`` of a mirrored layer), else ``None``.
        activation: name of the activation after it (with ``out``), for notes.
        in_activation: name of the activation before it (with ``in_slope``), for notes.
        producer: the mirrored layer whose activated output it reads (with ``in_slope``).
    """

    __slots__ = ("activation", "in_activation", "in_slope", "out", "producer")

    def __init__(self) -> None:
        self.out = False
        self.in_slope: float | None = None
        self.activation = ""
        self.in_activation = ""
        self.producer: nn.Module | None = None


def _plain_linear(module: Any) -> bool:
    """An ``nn.Linear`` computing ``x W^T + b`` itself (a subclass with its own ``forward`` --
    a masked or quantized Linear -- may not keep the pairs)."""
    return (isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward
            and type(module).__name__ != "NonDynamicallyQuantizableLinear")  # (MHA out_proj)


def _owners(model: nn.Module) -> dict[int, int]:
    """How many modules hold each parameter (by id): > 1 for tied weights."""
    count: dict[int, int] = {}
    for m in model.modules():
        for p in m._parameters.values():
            if p is not None:
                count[id(p)] = count.get(id(p), 0) + 1
    return count


def mirror_roles(ctx: Any) -> dict[int, MirrorRole]:
    """``{id(module): MirrorRole}`` for the ``nn.Linear`` layers of ``ctx.graph`` that form
    looks-linear chains (conditions in the module docstring); cached on the context."""
    cached = getattr(ctx, "_mirror_roles", None)
    if cached is not None:
        return cached
    roles: dict[int, MirrorRole] = {}
    ctx._mirror_roles = roles
    if ctx.policy_name not in ("auto", "generic"):  # both halves must be drawn by this rule
        return roles
    if has_norm(ctx):  # (the orthogonal rule's condition too)
        return roles
    graph = ctx.graph
    nodes = graph.nodes
    returned = set(getattr(graph, "returned", ()))
    consumers = consumers_of(nodes)
    calls = {id(layer.module): layer.calls for layer in graph.layers}
    owners = _owners(ctx.model)
    drawn = getattr(ctx, "policy_draws", None) or (lambda m: True)
    names = {id(m): n for n, m in ctx.model.named_modules()}

    def usable(module: Any) -> bool:
        # a parametrized weight (weight_norm...) is computed, not a leaf: not mirrored; an
        # overridden or frozen layer is not drawn by this rule, so its partner must not be either
        weight = module._parameters.get("weight") if _plain_linear(module) else None
        # (a registered layer plan may keep the module's own values: not drawn by the rule)
        return (weight is not None and calls.get(id(module)) == 1
                and owners.get(id(weight), 0) == 1 and drawn(module)
                and not planned_by_registry(names.get(id(module), ""), module, ctx.model))

    for n in nodes:
        lin = n.module
        if n.role != "layer" or not usable(lin):
            continue
        if (lin.out_features % 2 or lin.bias is None or len(consumers[n.index]) != 1
                or n.index in returned):
            continue
        act = nodes[consumers[n.index][0]]
        if act.role != "activation" or tuple(dict.fromkeys(act.inputs)) != (n.index,):
            continue
        if len(consumers[act.index]) != 1 or act.index in returned:
            continue
        nxt = nodes[consumers[act.index][0]]
        if (nxt.role != "layer" or tuple(nxt.inputs) != (act.index,) or not usable(nxt.module)
                or nxt.module is lin or nxt.module.in_features != lin.out_features):
            continue
        c = odd_linear_slope(act.activation or "", act.activation_fn)
        if c is None:
            continue
        first = roles.setdefault(id(lin), MirrorRole())
        first.out, first.activation = True, act.activation or ""
        second = roles.setdefault(id(nxt.module), MirrorRole())
        second.in_slope, second.producer = c, lin
        second.in_activation = act.activation or ""
    return roles


def mirrored_fill(rows: int, cols: int, role: MirrorRole, gain: float, orthogonal: bool,
                  fallback: Any) -> Any:
    """The fill of a looks-linear layer's ``(rows, cols)`` weight.

    The drawn block has per-output variance ``gain^2 / fan_in`` over its own input width --
    ``cols`` without ``role.in_slope``, ``cols / 2`` with it -- orthogonal (rows or columns
    orthonormal, times ``sqrt(rows/cols)`` when taller) when ``orthogonal``, else Gaussian.
    ``role.in_slope``: the block ``A`` fills the left half of the columns and ``-A`` the right
    half; ``role.out``: the rows hold the block on top and its negative below. ``gain`` is the
    caller's (:func:`mirror_gain` for an anti-mirrored input). A tensor of another shape (a
    parametrization's) gets ``fallback``.
    """
    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        if tuple(t.shape) != (rows, cols):
            fallback(t, g)
            return
        r = rows // 2 if role.out else rows
        c_in = cols // 2 if role.in_slope is not None else cols
        sub = torch.empty(r, c_in, dtype=t.dtype, device=t.device)
        if orthogonal:
            orthogonal_(sub, gain * math.sqrt(max(r / c_in, 1.0)), g)
        else:
            normal_(sub, 0.0, gain / math.sqrt(c_in), generator=g)
        block = torch.cat([sub, -sub], 1) if role.in_slope is not None else sub
        with torch.no_grad():
            t.copy_(torch.cat([block, -block], 0) if role.out else block)

    return fill


def mirror_gain(gain: float, producer_gain: float, slope: float) -> float:
    """Gain of the block ``A`` of a layer reading anti-mirrored pairs: ``gain / (g_prev * c)``.

    The usual rule gives the layer the output variance ``gain^2 E[phi(z)^2]`` with
    ``E[phi(z)^2] = 1 / g_prev^2`` at unit ``q`` (``g_prev``: the variance gain of the
    activation before it); through the pairs the input is ``c z`` with ``E[z^2] = 1``, so ``A``
    needs ``gain^2 / (g_prev^2 c^2)`` to keep that variance. In a homogeneous chain
    (``gain = g_prev``) that is ``1/c``: each pre-activation an isometric image of the previous
    one; for ReLU (``g_prev = sqrt 2``, ``c = 1``) every entry's std equals Kaiming's exactly.
    """
    return gain / (producer_gain * slope)
