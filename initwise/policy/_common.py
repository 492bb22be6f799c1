"""Helpers every policy module shares: fills, parameter names, graph conditions, registered plans.

The bottom of the policy package (above :mod:`initwise.policy._types` only), so that the auto rule
(``_rules``), its looks-linear pairs (``_mirror``), the named schemes (``_named``) and the
traversal (``_apply``) import each other in one direction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from initwise.layers import has_plans, layer_type
from initwise.policy._types import ModulePlan, ParamInit, PolicyContext
from initwise.schemes import normal_

__all__ = [
    "ONES",
    "ZEROS",
    "blockwise",
    "constant",
    "custom_biases",
    "has_norm",
    "has_param",
    "is_bias",
    "legacy_hooks",
    "legacy_names",
    "normal",
    "own_params",
    "planned_by_registry",
    "registered_plan",
    "zero_padding",
]


def normal(std: float) -> Any:
    """A fill drawing ``N(0, std^2)`` (via :func:`initwise.schemes.normal_`)."""
    return lambda t, g: normal_(t, 0.0, std, generator=g)


def constant(value: float) -> Any:
    """A fill writing ``value`` everywhere (no randomness)."""
    return lambda t, g: t.fill_(value)


def blockwise(blocks: list[Any], make_fill: Any) -> Any:
    """A fill applying ``make_fill(block)`` to the rows of each block of a packed weight."""

    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        for block in blocks:
            make_fill(block)(t[block.rows], g)

    return fill


def zero_padding(fill: Any, padding_idx: int | None) -> Any:
    """Wrap ``fill`` so that the row ``padding_idx`` ends up 0 (Embedding/EmbeddingBag)."""
    if padding_idx is None:
        return fill

    def wrapped(t: torch.Tensor, g: torch.Generator) -> None:
        fill(t, g)
        t[padding_idx].zero_()

    return wrapped


ZEROS = ParamInit("zeros", constant(0.0))
ONES = ParamInit("ones", constant(1.0))


def has_norm(ctx: PolicyContext) -> bool:
    """Whether the traced graph contains a normalization (module or functional)."""
    return any(n.role == "norm" or n.kind == "norm" for n in ctx.graph.nodes)


def is_bias(pname: str) -> bool:
    """``bias``, ``bias_ih_l0``, ``in_proj_bias`` -- but not MHA's learned ``bias_k``/``bias_v``
    rows, which are keys/values, not additive biases."""
    if pname in ("bias_k", "bias_v"):
        return False
    return pname == "bias" or pname.startswith("bias_") or pname.endswith("_bias")


def legacy_hooks(module: nn.Module) -> dict[str, Any]:
    """Old-style reparametrization hooks (``torch.nn.utils.spectral_norm`` / ``weight_norm``) of
    ``module``, by the name of the tensor they compute (``"weight"``)."""
    return {h.name: h for h in module._forward_pre_hooks.values()
            if isinstance(h, (SpectralNorm, WeightNorm))}


def legacy_names(module: nn.Module) -> dict[str, str]:
    """Raw parameter name -> the name policies plan for, for old-style hooks: spectral_norm's
    ``weight_orig`` and weight_norm's ``weight_v`` stand for ``weight``; weight_norm's magnitude
    ``weight_g`` maps to ``""`` (it is set together with ``weight_v``)."""
    out: dict[str, str] = {}
    for name, hook in legacy_hooks(module).items():
        if isinstance(hook, SpectralNorm):
            out[f"{name}_orig"] = name
        else:
            out[f"{name}_v"], out[f"{name}_g"] = name, ""
    return out


def own_params(module: nn.Module) -> list[str]:
    """The names policies plan for in ``module``: its own parameters (old-style hook names
    mapped to the computed tensor's), then its parametrized tensors."""
    legacy = legacy_names(module)
    names = [legacy.get(k, k) for k, v in module._parameters.items() if v is not None]
    names = [n for n in names if n]
    if parametrize.is_parametrized(module):
        names += list(module.parametrizations.keys())
    return names


def has_param(module: nn.Module, pname: str) -> bool:
    """Whether ``pname`` is one of :func:`own_params`."""
    return pname in own_params(module)


def custom_biases(module: nn.Module) -> ModulePlan | None:
    """A custom module without ``reset_parameters``: its bias-named parameters are 0 (the
    universal convention); the rest stay uncovered (``on_unknown``)."""
    if any(callable(getattr(module, a, None)) for a in ("reset_parameters", "_reset_parameters")):
        return None
    biases = {p: ParamInit("zeros", constant(0.0), note="bias of a custom module")
              for p in own_params(module) if is_bias(p)}
    return ModulePlan(biases) if biases else None


def _planner(name: str, module: nn.Module, model: nn.Module) -> Any:
    """The registered layer type with a plan of the nearest module (itself, then its
    ancestors) that has one, or ``None``."""
    parts = name.split(".") if name else []
    chain = [module] + [model.get_submodule(".".join(parts[:i]))
                        for i in range(len(parts) - 1, -1, -1)]
    for owner in chain:
        registered = layer_type(owner)
        if registered is not None and registered.plan is not None:
            return registered
    return None


def registered_plan(name: str, module: nn.Module, ctx: PolicyContext) -> Any:
    """The decision a registered layer type's ``plan`` gives ``module`` (its own type's or the
    nearest registered ancestor's: a plan covers the type's subtree), or ``None``.

    ``"keep"`` means ``"skip"``: the parameters keep the values the module gave them.
    """
    if not has_plans():
        return None
    registered = _planner(name, module, ctx.model)
    if registered is None:
        return None
    decision = registered.plan(name, module, ctx)
    if decision is None or isinstance(decision, ModulePlan) or decision in _PLAN_WORDS:
        return "skip" if decision == "keep" else decision
    raise ValueError(
        f"the plan registered for {registered.cls.__name__} (initwise.register_layer) returned "
        f"{decision!r} for module {name!r}; expected a ModulePlan, one of {list(_PLAN_WORDS)} "
        f"or None (the policy's rule).")


_PLAN_WORDS = ("keep", "skip", "reset_parameters")


def planned_by_registry(name: str, module: nn.Module, model: nn.Module) -> bool:
    """Whether a registered ``plan`` covers ``module`` (so a policy rule that pairs layers must
    not count on drawing it)."""
    return has_plans() and _planner(name, module, model) is not None
