"""The ``"auto"`` policy: per module type, the scheme that fits the activation that follows.

Rules (``g`` = variance gain ``1/sqrt(E[phi(z)^2])`` of the activation the graph finds after the
layer, 1 when none; fans are module-aware, :func:`initwise.schemes.fans.fans`):

* Linear, Conv, ConvTranspose, Bilinear, SparseLinear: ``N(0, g^2 / fan_in)`` (He et al. 2015;
  reported as ``kaiming_normal``, or ``lecun_normal`` when ``g = 1``). SELU gets exactly LeCun
  (Klambauer et al. 2017). The output layer (also before an output sigmoid) gets gain 1: unit
  variance logits, neither shrunk (a small head measurably slows learning) nor zero (it would
  give no gradient to the layers below at step 0); ``initwise.init`` then sets the label-prior bias.
  In a network with residual branches and no normalization at all, the last layer of each of
  the N branches is further scaled by ``1/sqrt(N)`` so the stream's variance stays O(1).
  A *hidden* ``nn.Linear`` (in the graph, not the output layer, not ``MultiheadAttention``'s
  ``out_proj``) of a network without normalization layers gets the same per-output variance
  from an orthogonal draw instead (reported ``orthogonal``):
  ``g * orthogonal``, times ``sqrt(out/in)`` when ``out > in``, so rows have squared norm
  ``g^2`` on average. Products of Gaussian matrices spread their singular values with depth;
  orthogonal ones do not (Saxe et al. 2013; Pennington et al. 2017, arXiv:1711.04735). Measured
  under ``initwise.init``, orthogonal vs Gaussian hidden draws, 3 seeds: on validation splits
  (``benchmarks/datainit_choose.py``) text/Adam 54.8 vs 51.5 % accuracy, 48-layer MLPs with
  Adam GELU 98.2 vs 94.5, SELU 98.9 vs 91.2; on the trainability benchmark's test splits
  (``benchmarks/RESULTS.md``) text/Adam 58.5 vs 55.7, 48-layer Adam tanh 97.6 vs 92.9, SELU
  96.5 vs 94.7, but ReLU 96.5 vs 97.6, GELU 95.0 vs 95.6, and text/SGD diverged on 1 of 3 seeds
  (0 before). Cost: a QR per layer (~0.1 s for 1024 x 1024 on one core), so layers above the
  bound ``ORTHOGONAL_MAX_WORK`` (or with fan-in above ``ORTHOGONAL_MAX_FAN_IN``) stay Gaussian.
* Looks-linear pairs (same networks, reported ``looks_linear``): where the graph shows a plain
  chain ``Linear -> phi -> Linear`` with ``phi(z) - phi(-z) = c z`` (ReLU, leaky ReLU, GELU,
  SiLU, softplus, hard-swish), the first layer's output rows are drawn in mirrored pairs
  ``[B; -B]`` (``B`` by the rule above) and the second's input columns as ``[A, -A]`` (``A``
  orthogonal, or Gaussian for the output layer, with gain ``g / (g_prev c)`` on the half-width
  input: Kaiming's entry std for ReLU), so the whole chain is exactly linear at init (with
  all singular values equal where the widths are); training separates the halves
  (:mod:`initwise.policy._mirror`: conditions, references). Measured under ``initwise.init``
  on validation splits, 3 seeds (``benchmarks/datainit_choose.py``, ``iw-nomirror`` =
  orthogonal draws without the pairs):
  48-layer ReLU MLPs 98.9 vs 96.3 (Adam) and 98.5 vs 93.8 (SGD), 48-layer GELU SGD 99.6 vs
  96.3, text/Adam 59.8 vs 54.8; tanh/SELU nets are untouched; CTR within 0.1. Text/SGD at lr
  0.05 sits at its edge of stability for every init: over 12 seeds it turned non-finite 4
  times with the pairs, 3 without and 3 with Kaiming (``benchmarks/RESULTS.md``).
* Biases: 0. Norm layers: weight 1, bias 0, running statistics reset.
* Embedding: one row per lookup (fan_in 1), so rows ``N(0, g^2)``: unit-variance output, the
  scale every downstream rule assumes; ``N(0, 1)`` when a norm follows. A table TIED to an output
  layer is that layer's weight: ``N(0, 1/embedding_dim)`` (LeCun for the head, Press & Wolf 2017
  style). ``padding_idx`` rows are 0.
* EmbeddingBag: a linear layer on the sparse count vector (the one-hot view), so
  ``N(0, g^2 / num_embeddings)`` -- on real sparse text this learns far faster than ``N(0, 1)``
  (measured while planning initwise on a 57-class hashed-text set: 61 % vs 27 % test accuracy
  after one epoch).
* MultiheadAttention: q, k, v blocks LeCun-normal per block (unit-variance queries/keys/values),
  bias 0, ``bias_k``/``bias_v`` ``N(0, 1)`` (a learned unit-variance key/value row); ``out_proj``
  is a Linear and follows the Gaussian Linear rule with the attention module's graph facts.
* RNN/LSTM/GRU (and cells): input weights LeCun-normal per gate block, recurrent weights
  orthogonal per gate block (Saxe et al. 2013, arXiv:1312.6120), projections LeCun, biases 0
  except the LSTM forget gate: ``bias_ih`` forget block 1 (Jozefowicz et al. 2015).
* PReLU: its ``init`` slope (0.25 by default).
* Other modules with parameters: their own ``reset_parameters``; without one, parameters named
  like biases (``bias``, ``*_bias``) are 0 and the rest go to ``on_unknown``.

References:
    He et al. 2015, arXiv:1502.01852; Klambauer et al. 2017, arXiv:1706.02515; Press & Wolf
    2017, arXiv:1608.05859; Saxe et al. 2013, arXiv:1312.6120; Jozefowicz, Zaremba & Sutskever
    2015, "An Empirical Exploration of Recurrent Network Architectures" (ICML).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from initwise.graph import layer_kind, norm_name
from initwise.policy._common import (
    ONES,
    ZEROS,
    blockwise,
    constant,
    custom_biases,
    has_norm,
    has_param,
    normal,
    own_params,
    zero_padding,
)
from initwise.policy._mirror import mirror_gain, mirror_roles, mirrored_fill
from initwise.policy._types import ModulePlan, ParamInit, PolicyContext
from initwise.schemes import orthogonal_
from initwise.schemes.fans import blocks, fans

__all__ = [
    "ORTHOGONAL_MAX_FAN_IN",
    "ORTHOGONAL_MAX_WORK",
    "attention_plan",
    "auto_policy",
    "dense_plan",
    "embedding_plan",
    "norm_plan",
    "rnn_plan",
    "structural_plan",
]


def _act_note(ctx: PolicyContext, module: nn.Module) -> tuple[float, str, str]:
    """(gain, scheme name, note) for a dense layer's weight under the auto rule.

    An output layer (feeds the model output, not through a residual add) gets gain 1 even when
    an output nonlinearity follows (``sigmoid(head(x))``): there is no next layer whose input
    variance the gain would preserve, and unit-variance logits are the neutral start.
    """
    node = ctx.layer(module)
    act = ctx.activation(module)
    if node is not None and node.is_output and not node.residual:
        suffix = f" (before the output {act[0]})" if act is not None else ""
        return 1.0, "lecun_normal", f"output layer: gain 1{suffix}"
    if act is None:
        return 1.0, "lecun_normal", "no activation follows: gain 1"
    if act[0] == "selu":
        return 1.0, "lecun_normal", "SELU: LeCun normal (self-normalizing)"
    g = ctx.gain(module)
    return g, "kaiming_normal", f"variance gain of the following {act[0]}"


def dense_plan(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan:
    """Linear/Conv/ConvTranspose/Bilinear/SparseLinear: ``N(0, g^2 / fan_in)`` (orthogonal with
    that variance for a hidden ``nn.Linear``), bias 0."""
    f = fans(module, "weight")
    g, scheme, note = _act_note(ctx, module)
    n_res = _norm_free_branches(ctx)
    node = ctx.layer(module)
    if n_res > 1 and node is not None and node.residual and _last_of(node, module):
        g /= math.sqrt(n_res)
        note += f"; last layer of a residual branch in a norm-free net: / sqrt({n_res})"
    fill = normal(g / math.sqrt(max(f.fan_in, 1)))
    role = _mirror_role(module, ctx)
    fan_in = f.fan_in
    if role is not None:
        rows, cols = module.out_features, module.in_features
        block = (rows // 2 if role.out else rows,
                 cols // 2 if role.in_slope is not None else cols)
        orth = _orthogonal_hidden(module, node, ctx, block)  # the QR runs on the block
        if role.in_slope is not None:  # drawn on the half-width input z of the pairs
            g = mirror_gain(g, ctx.gain(role.producer), role.in_slope)
            fan_in = cols // 2
        fill = mirrored_fill(rows, cols, role, g, orth, fill)
        scheme = "looks_linear"
        if role.out:
            note += (f"; looks-linear: output rows in mirrored pairs [B; -B] for the following "
                     f"{role.activation} ({role.activation}(z) - {role.activation}(-z) is "
                     f"linear in z)")
        if role.in_slope is not None:
            note += (f"; looks-linear: input columns [A, -A] (the {role.in_activation} pairs "
                     f"before it pass {role.in_slope:g} z through), A "
                     f"{'orthogonal' if orth else 'Gaussian'} with gain {g:.4g} on fan-in "
                     f"{fan_in}")
    elif _orthogonal_hidden(module, node, ctx):
        rows, cols = module.out_features, module.in_features
        scale = g * math.sqrt(max(rows / cols, 1.0))
        fill = _scaled_orthogonal(scale, (rows, cols), fill)
        scheme = "orthogonal"
        note += (f"; hidden Linear: orthogonal (isometric) draw, gain {scale:.4g}"
                 + (f" = {g:.4g} x sqrt(out/in)" if rows > cols else ""))
    plan = ModulePlan({"weight": ParamInit(scheme, fill, fan_in, f.fan_out, g, note)})
    if has_param(module, "bias"):
        plan.params["bias"] = ZEROS
    return plan


#: the orthogonal draw of a hidden Linear costs a QR of its (out, in) weight: used up to
#: out * in * min(out, in) <= ORTHOGONAL_MAX_WORK (a 1024 x 1024 layer: ~0.13 s on one core) and
#: fan-in <= ORTHOGONAL_MAX_FAN_IN (a huge fan-in is a sparse/one-hot input, not a hidden layer)
ORTHOGONAL_MAX_WORK = 2**30
ORTHOGONAL_MAX_FAN_IN = 65536


def _orthogonal_hidden(module: nn.Module, node: Any, ctx: PolicyContext,
                       shape: tuple[int, int] | None = None) -> bool:
    """Whether the auto rule draws this layer orthogonal: a hidden ``nn.Linear`` (the graph
    knows it and it is not the output layer) of affordable size, in a network without
    normalization layers (the benefit below was measured on norm-free networks only; where
    norms re-scale every layer the QR's cost is not spent).

    Why: a deep chain of Gaussian matrices has a product whose singular values spread with
    depth (for ReLU at criticality the squared singular values of the input-output Jacobian
    have variance ~2L with Gaussian weights vs ~L with orthogonal ones; for tanh near the
    linear regime orthogonal weights give dynamical isometry: Saxe et al. 2013,
    arXiv:1312.6120; Pennington et al. 2017, arXiv:1711.04735). The variance of each output is
    Kaiming's (rows have squared norm ``g^2``), so every other rule is unchanged.

    ``shape``: the ``(rows, cols)`` block actually drawn, when smaller than the weight (the
    block of a looks-linear layer); the cost bounds apply to it.
    """
    if not isinstance(module, nn.Linear) or node is None or node.module is not module:
        return False  # (nn.MultiheadAttention's out_proj keeps the Gaussian draw)
    if node.is_output or has_norm(ctx):
        return False
    rows, cols = shape or (module.out_features, module.in_features)  # also under weight norm
    if rows * cols == 0:
        return False
    return cols <= ORTHOGONAL_MAX_FAN_IN and rows * cols * min(rows, cols) <= ORTHOGONAL_MAX_WORK


def _mirror_role(module: nn.Module, ctx: PolicyContext) -> Any:
    """The module's :class:`~initwise.policy._mirror.MirrorRole` in a looks-linear chain of the
    traced graph, or ``None``."""
    return mirror_roles(ctx).get(id(module))


def _scaled_orthogonal(scale: float, shape: tuple[int, int], gaussian: Any) -> Any:
    """``scale * orthogonal`` for a tensor of the weight's ``(out, in)`` shape; any other
    tensor (a parametrization whose original has another shape) gets the ``gaussian`` fill."""
    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        if tuple(t.shape) == shape:
            orthogonal_(t, scale, g)
        else:
            gaussian(t, g)

    return fill


def _last_of(node: Any, module: nn.Module) -> bool:
    """Whether ``module`` is the last matrix of graph layer ``node``: the layer itself, or the
    output projection of an attention layer (``MultiheadAttention.out_proj``)."""
    return node.module is module or (node.kind == "attention"
                                     and getattr(node.module, "out_proj", None) is module)


def _norm_free_branches(ctx: PolicyContext) -> int:
    """Number of residual layers when the network has no norm at all, else 0.

    Without normalization each variance-preserving ``x + f(x)`` doubles the stream's variance
    (``2^N`` after N blocks); scaling each branch's last layer by ``1/sqrt(N)`` makes each block
    multiply it by ``1 + 1/N`` instead, ``(1 + 1/N)^N < e`` in all (GPT-2's ``1/sqrt(N)`` on
    residual projections; Fixup, arXiv:1901.09321, in spirit).
    """
    if has_norm(ctx):
        return 0
    return sum(1 for n in ctx.graph.layers if n.residual)


def _tied_output(module: nn.Module, ctx: PolicyContext) -> str | None:
    """Name of a Linear (an output head) sharing this embedding's weight, or ``None``."""
    weight = module.weight
    for other_name, other in ctx.model.named_modules():
        if other is not module and isinstance(other, nn.Linear) and other.weight is weight:
            return other_name
    return None


def embedding_plan(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan:
    """Embedding / EmbeddingBag rows (see the module docstring)."""
    num, dim = module.num_embeddings, module.embedding_dim
    node = ctx.layer(module)
    head = _tied_output(module, ctx)
    if head is not None:
        std, fan_in, g = 1 / math.sqrt(dim), dim, 1.0
        note = f"tied to output layer {head!r}: LeCun for the head (fan_in = embedding_dim)"
    elif isinstance(module, nn.EmbeddingBag):
        g, _, note = _act_note(ctx, module)
        std, fan_in = g / math.sqrt(num), num
        note = f"bag = linear layer on sparse counts: fan_in = num_embeddings; {note}"
    elif node is not None and node.followed_by_norm:
        std, fan_in, g = 1.0, 1, 1.0
        note = f"feeds a {node.followed_by_norm}: N(0, 1) rows"
    else:
        g, _, note = _act_note(ctx, module)
        std, fan_in = g, 1
        note = f"one row per lookup (fan_in 1): unit-variance output; {note}"
    fill = zero_padding(normal(std), module.padding_idx)
    if module.padding_idx is not None:
        note += f"; padding row {module.padding_idx} = 0"
    return ModulePlan({"weight": ParamInit("normal", fill, fan_in, dim, g, note)})


def attention_plan(name: str, module: nn.MultiheadAttention, ctx: PolicyContext) -> ModulePlan:
    """MultiheadAttention's own parameters (``out_proj`` is a Linear child)."""
    plan = ModulePlan()
    for pname in own_params(module):
        if pname == "in_proj_weight":
            bl = blocks(module, pname)
            plan.params[pname] = ParamInit(
                "lecun_normal", blockwise(bl, lambda b: normal(1 / math.sqrt(b.fans.fan_in))),
                bl[0].fans.fan_in, bl[0].fans.fan_out, 1.0, "per block q, k, v")
        elif pname in ("q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k", "bias_v"):
            f = fans(module, pname)
            plan.params[pname] = ParamInit("lecun_normal", normal(1 / math.sqrt(f.fan_in)),
                                           f.fan_in, f.fan_out, 1.0)
        elif pname == "in_proj_bias":
            plan.params[pname] = ZEROS
    return plan


def rnn_plan(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan:
    """RNN/LSTM/GRU and cells: LeCun inputs, orthogonal recurrences, forget-gate bias 1."""
    plan = ModulePlan()
    lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    for pname in own_params(module):
        bl = blocks(module, pname)
        f = bl[0].fans
        if pname.startswith("weight_hh"):
            plan.params[pname] = ParamInit(
                "orthogonal", blockwise(bl, lambda b: lambda t, g: orthogonal_(t, 1.0, g)),
                f.fan_in, f.fan_out, 1.0, "per gate block (Saxe et al. 2013)")
        elif pname.startswith(("weight_ih", "weight_hr")):
            plan.params[pname] = ParamInit(
                "lecun_normal", blockwise(bl, lambda b: normal(1 / math.sqrt(b.fans.fan_in))),
                f.fan_in, f.fan_out, 1.0, "per gate block")
        elif lstm and pname.startswith("bias_ih"):
            plan.params[pname] = ParamInit(
                "constant", blockwise(bl, lambda b: constant(1.0 if b.label == "forget" else 0.0)),
                note="forget gate 1, others 0 (Jozefowicz et al. 2015)")
        elif pname.startswith("bias"):
            plan.params[pname] = ZEROS
    return plan


def norm_plan(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan:
    """Norm layers: weight 1, bias 0, running statistics reset.

    A norm whose weight is exactly zero was zero-initialized on purpose (no library default
    is 0): the last norm of a residual block, so that the block starts as the identity (Goyal
    et al. 2017, arXiv:1706.02677; timm and torchvision's ``zero_init_residual``). Its weight
    and bias are kept (reported ``kept``); the gradient to the weight is not zero, so it learns.
    """
    plan = ModulePlan(reset_running_stats=hasattr(module, "reset_running_stats"))
    weight = module._parameters.get("weight")
    if isinstance(weight, torch.Tensor) and weight.numel() and not bool(weight.detach().any()):
        note = ("zero-initialized on purpose (a residual block's last norm starts the block as "
                "the identity, Goyal et al. 2017): kept")
        for pname in own_params(module):
            value = module._parameters[pname].detach().clone()
            plan.params[pname] = ParamInit("kept", _copy_of(value), note=note)
        return plan
    for pname in own_params(module):
        if pname == "weight":
            plan.params[pname] = ONES
        elif pname == "bias":
            plan.params[pname] = ZEROS
    return plan


def _copy_of(value: torch.Tensor) -> Any:
    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        t.copy_(value.to(t.device, t.dtype))

    return fill


def structural_plan(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan | None:
    """The auto rule for the non-dense module types (shared by every built-in policy)."""
    kind = layer_kind(module)
    if isinstance(module, nn.PReLU):
        init = float(getattr(module, "init", 0.25))
        return ModulePlan({"weight": ParamInit("constant", constant(init),
                                               note="PReLU initial slope")})
    if kind == "norm" or norm_name(module) is not None:
        return norm_plan(name, module, ctx)
    if kind == "attention":
        return attention_plan(name, module, ctx)
    if kind == "rnn":
        return rnn_plan(name, module, ctx)
    return None


def auto_policy(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan | None:
    """The ``"auto"`` policy (rules in the module docstring)."""
    kind = layer_kind(module)
    if kind in ("linear", "conv", "conv_transpose", "bilinear"):
        return dense_plan(name, module, ctx)
    if kind in ("embedding", "embedding_bag"):
        return embedding_plan(name, module, ctx)
    return structural_plan(name, module, ctx) or custom_biases(module)
