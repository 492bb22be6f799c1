"""Named-scheme policies (``"xavier"``, ``"kaiming"``, ``"lecun"``, ``"orthogonal"``, and every
tensor scheme name usable in ``overrides``), ``"torch"`` and ``"critical"``.

Named schemes change only the WEIGHT scheme: every weight (each block of a packed MHA/RNN
weight separately, with that block's fans) gets the scheme; biases are 0; norm layers (1, 0);
PReLU its initial slope. Embedding tables use the one-hot view (``fan_in = num_embeddings``,
``fan_out = embedding_dim``: an embedding is a linear layer on one-hot/count vectors), which is
what "Kaiming on an EmbeddingBag" means in practice. ``kaiming_*`` and ``orthogonal`` use the
variance gain of the activation the graph finds after the layer (1 when none); ``xavier_*`` and
``lecun_*`` use gain 1, as their papers do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

import initwise.schemes as schemes
from initwise.activations import activation_facts, resolve_activation
from initwise.graph import layer_kind, norm_name
from initwise.layers import layer_type
from initwise.policy._common import (
    ZEROS,
    blockwise,
    custom_biases,
    is_bias,
    normal,
    own_params,
    zero_padding,
)
from initwise.policy._rules import auto_policy, dense_plan, structural_plan
from initwise.policy._types import ModulePlan, ParamInit, PolicyContext, activation_key
from initwise.schemes.fans import Block, Fans, blocks, fans, tensor_fans
from initwise.theory import criticality

__all__ = ["SCHEME_NAMES", "critical", "named_policy", "torch_policy"]

#: Tensor-scheme names accepted as ``overrides`` values and behind the named policies.
SCHEME_NAMES = (
    "xavier_uniform", "xavier_normal", "kaiming_normal", "kaiming_uniform", "lecun_normal",
    "lecun_uniform", "orthogonal",
)


def _scheme_fill(scheme: str, fans: Any, gain: float, act: Any) -> Callable[..., Any]:
    if scheme in ("xavier_uniform", "xavier_normal"):
        fn = getattr(schemes, scheme + "_")
        return lambda t, g: fn(t, gain=1.0, generator=g, fans=fans)
    if scheme in ("kaiming_normal", "kaiming_uniform"):
        fn = getattr(schemes, scheme + "_")
        nonlinearity = act if act is not None else "linear"
        return lambda t, g: fn(t, 0, "fan_in", nonlinearity, g, fans=fans)
    if scheme in ("lecun_normal", "lecun_uniform"):
        fn = getattr(schemes, scheme + "_")
        return lambda t, g: fn(t, g, fans=fans)
    if scheme == "orthogonal":
        return lambda t, g: schemes.orthogonal_(t, gain, g)
    raise ValueError(f"scheme: unknown scheme {scheme!r}; valid: {list(SCHEME_NAMES)}.")


def _weight_fans(module: nn.Module, pname: str) -> list[Any]:
    """Blocks of a weight with module-aware fans (one-hot view for embedding tables)."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        f = Fans(module.num_embeddings, module.embedding_dim, 1)
        return [Block("all", slice(0, module.num_embeddings), f)]
    registered = layer_type(module)
    if (layer_kind(module) == "other" and not hasattr(module, "initwise_fans")
            and (registered is None or registered.fans is None)):
        tensor = getattr(module, pname)
        return [Block("all", slice(0, tensor.shape[0]), tensor_fans(tensor))]
    return blocks(module, pname)


def _gain_and_act(module: nn.Module, ctx: PolicyContext, scheme: str) -> tuple[float, Any]:
    if not scheme.startswith(("kaiming", "orthogonal")):
        return 1.0, None
    act = ctx.activation(module)
    if act is None:
        return 1.0, None
    return ctx.gain(module), (act[1] if act[1] is not None else act[0])


def named_plan(scheme: str, name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan | None:
    """The plan of the named scheme ``scheme`` for one module (see the module docstring)."""
    kind = layer_kind(module)
    if kind == "norm" or norm_name(module) is not None or isinstance(module, nn.PReLU):
        return structural_plan(name, module, ctx)
    if kind is None:
        return custom_biases(module)
    gain, act = _gain_and_act(module, ctx, scheme)
    plan = ModulePlan()
    for pname in own_params(module):
        if is_bias(pname):
            plan.params[pname] = ZEROS
            continue
        try:
            bl = _weight_fans(module, pname)
        except ValueError:
            continue  # a parameter the fans rules do not know: left to reset/on_unknown
        fill = blockwise(bl, lambda b: _scheme_fill(scheme, b.fans, gain, act))
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            fill = zero_padding(fill, module.padding_idx)
        note = f"per block {', '.join(b.label for b in bl)}" if len(bl) > 1 else ""
        f = bl[0].fans
        plan.params[pname] = ParamInit(scheme, fill, f.fan_in, f.fan_out, gain, note)
    return plan


def named_policy(scheme: str) -> Callable[[str, nn.Module, PolicyContext], ModulePlan | None]:
    """A policy function applying tensor scheme ``scheme`` to every weight."""
    if scheme not in SCHEME_NAMES:
        raise ValueError(f"scheme: unknown scheme {scheme!r}; valid: {list(SCHEME_NAMES)}.")

    def policy(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan | None:
        return named_plan(scheme, name, module, ctx)

    policy.__name__ = scheme
    return policy


def torch_policy(name: str, module: nn.Module, ctx: PolicyContext) -> str | None:
    """``"torch"``: every module's own ``reset_parameters`` (``_reset_parameters`` for MHA)."""
    if callable(getattr(module, "reset_parameters", None)) or callable(
        getattr(module, "_reset_parameters", None)
    ):
        return "reset_parameters"
    return None


#: sigma_b values tried, in order, for a smooth activation when ``critical()`` gets none.
SIGMA_B_LADDER = (math.sqrt(0.05), 0.5, 1.0)


def default_sigma_b(spec: Any) -> tuple[float, ...]:
    """The sigma_b values to try for the edge of chaos of ``spec``, in order.

    ReLU-like (positively homogeneous) networks are critical only at ``sigma_b = 0``,
    ``sigma_w = sqrt(2/(1+a^2))``, where the pre-activation variance stays exactly constant
    (Hayou et al. 2019). Smooth activations need ``sigma_b > 0`` for a fixed point ``q* > 0``;
    ``sigma_b^2 = 0.05`` is the value of Schoenholz et al. 2017 (arXiv:1611.01232). Some (GELU,
    Mish) have a STABLE critical point only at larger ``sigma_b``, hence the ladder
    :data:`SIGMA_B_LADDER`; the first value with a stable point is used.
    """
    return (0.0,) if spec.relu_family else SIGMA_B_LADDER


def _sigma_w(result: Any) -> float:
    if isinstance(result, (int, float)):
        return float(result)
    if hasattr(result, "sigma_w"):
        return float(result.sigma_w)
    if isinstance(result, (tuple, list)):
        return float(result[0])
    raise TypeError(f"edge_of_chaos returned {type(result).__name__}; expected sigma_w.")


def critical(sigma_b: float | None = None) -> Callable[..., ModulePlan | None]:
    """The ``"critical"`` policy: each dense layer at the edge of chaos of its activation.

    Weights ``N(0, sigma_w^2 / fan_in)``, biases ``N(0, sigma_b^2)``, where ``sigma_w`` solves
    ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] = 1`` at a stable fixed point ``q*`` of the variance
    map (:func:`initwise.theory.edge_of_chaos`): correlations neither collapse nor decorrelate
    exponentially with depth. Layers with no activation after them get the ``"auto"`` dense rule
    (gain 1: LeCun, or orthogonal for a hidden Linear) and zero bias; embeddings, attention,
    recurrent and norm layers follow ``"auto"``. An activation with
    no stable critical point on the default sigma_b ladder (SiLU, softplus) gets the ``"auto"``
    rule, with a warning in the report.

    Args:
        sigma_b: bias std. Default ``None``: 0 for the ReLU family, else the first value of
            :data:`SIGMA_B_LADDER` with a stable critical point (:func:`default_sigma_b`).

    Returns:
        A policy function for :func:`initwise.policy.apply`.

    References:
        Poole et al. 2016 (arXiv:1606.05340); Schoenholz et al. 2017 (arXiv:1611.01232).
    """
    if sigma_b is not None and (not math.isfinite(sigma_b) or sigma_b < 0):
        raise ValueError(f"critical: sigma_b must be a finite float >= 0, got {sigma_b!r}.")
    cache: dict[tuple[str, Any], tuple[float, float] | None] = {}

    def policy(name: str, module: nn.Module, ctx: PolicyContext) -> ModulePlan | None:
        if layer_kind(module) not in ("linear", "conv", "conv_transpose", "bilinear"):
            return auto_policy(name, module, ctx)
        act = ctx.activation(module)
        if act is None:
            return dense_plan(name, module, ctx)
        key = activation_key(*act)
        if key not in cache:
            cache[key] = _edge(act, sigma_b)
        if cache[key] is None:
            ctx.warn(
                f"critical: {act[0]!r} has no stable edge of chaos at sigma_b in "
                f"{[round(b, 4) for b in SIGMA_B_LADDER]}; layers followed by it get the "
                f"'auto' rule (variance gain) instead."
            )
            return dense_plan(name, module, ctx)
        sw, sb = cache[key]
        return _critical_plan(module, act[0], sw, sb)

    policy.__name__ = "critical"
    return policy


def _edge(act: tuple[str, Any], sigma_b: float | None) -> tuple[float, float] | None:
    """(sigma_w, sigma_b) at the edge of chaos, or None if the default ladder finds none.

    Raises:
        ValueError: an explicit ``sigma_b`` with no stable critical point.
    """
    target = act[1] if act[1] is not None else act[0]
    facts = activation_facts(target)
    spec = facts.spec if facts is not None else resolve_activation(target)  # (raises: why)
    if sigma_b is not None:
        try:
            return _sigma_w(criticality.edge_of_chaos(spec, sigma_b=float(sigma_b))), float(sigma_b)
        except ValueError as exc:
            raise ValueError(
                f"critical: no edge of chaos for {act[0]!r} at sigma_b={sigma_b} ({exc}); use "
                f"critical(sigma_b=None) for the default search, or policy='auto'."
            ) from exc
    for sb in default_sigma_b(spec):
        try:
            return _sigma_w(criticality.edge_of_chaos(spec, sigma_b=sb)), sb
        except ValueError:
            continue
    return None


def _critical_plan(module: nn.Module, act: str, sw: float, sb: float) -> ModulePlan:
    f = fans(module, "weight")
    note = f"edge of chaos for {act}: sigma_w={sw:.4g}, sigma_b={sb:.4g}"
    plan = ModulePlan({"weight": ParamInit("critical_normal", normal(sw / math.sqrt(f.fan_in)),
                                           f.fan_in, f.fan_out, sw, note)})
    if "bias" in own_params(module):
        plan.params["bias"] = ParamInit("normal", normal(sb), note=note) if sb > 0 else ZEROS
    return plan
