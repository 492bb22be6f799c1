"""User overrides: ``{name glob | module type: scheme | policy | callable | "skip"}``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from initwise.policy._common import own_params
from initwise.policy._named import SCHEME_NAMES, named_plan
from initwise.policy._rules import auto_policy
from initwise.policy._types import (
    ModulePlan,
    ParamInit,
    Policy,
    PolicyContext,
    get_policy,
    policies,
)
from initwise.select import ModuleRules
from initwise.state import rng_devices, seeded_rng

__all__ = ["Overrides"]

_SPECIAL = ("skip", "reset_parameters")


def _accepts_generator(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generator" or p.kind is p.VAR_KEYWORD for p in params)


def tensor_scheme_fill(fn: Callable[..., Any], devices: list[int]) -> Callable[..., Any]:
    """A fill calling a user tensor scheme ``fn(tensor, generator=g)``; a scheme without a
    ``generator`` argument runs on the global RNG seeded from the generator (caller's state
    restored)."""
    if _accepts_generator(fn):
        return lambda t, g: fn(t, generator=g)

    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        with seeded_rng(g, devices):
            fn(t)

    return fill


class Overrides(ModuleRules):
    """Validated overrides (:class:`initwise.select.ModuleRules`: a key covers its subtree, the
    first matching entry in the order given wins, a key matching nothing is refused)."""

    def __init__(self, overrides: Mapping[Any, Any] | None, model: nn.Module) -> None:
        valid = [*SCHEME_NAMES, *_SPECIAL, *policies()]

        def check(key: Any, value: Any) -> None:
            if isinstance(value, str) and value not in valid:
                raise ValueError(
                    f"overrides[{key!r}]: unknown scheme or policy {value!r}; valid: {valid}, "
                    f"a Policy, or a tensor scheme callable fn(tensor, generator=None)."
                )
            if not isinstance(value, str) and not callable(value):
                raise TypeError(
                    f"overrides[{key!r}]: expected a scheme/policy name or a callable, got "
                    f"{type(value).__name__}."
                )

        super().__init__(overrides, model, option="overrides", check_value=check)

    @property
    def needs_graph(self) -> bool:
        """Whether some override reads the graph (activation-dependent schemes, policies)."""
        for _, value in self.items:
            if isinstance(value, str) and value in SCHEME_NAMES:
                if value.startswith(("kaiming", "orthogonal")):
                    return True
            elif isinstance(value, str) and value not in _SPECIAL:
                if get_policy(value).needs_graph:
                    return True
            elif isinstance(value, Policy) and value.needs_graph:
                return True
            elif not isinstance(value, str):
                return True  # a tensor scheme: the rest of the module follows "auto"
        return False

    def decide(self, hit: tuple[Any, Any], name: str, module: nn.Module,
               ctx: PolicyContext) -> Any:
        """The decision (plan, 'reset_parameters', 'skip', None) an override gives a module."""
        _, value = hit
        if isinstance(value, str):
            if value in _SPECIAL:
                return value
            if value in SCHEME_NAMES:
                return named_plan(value, name, module, ctx)
            return get_policy(value)(name, module, ctx)
        if isinstance(value, Policy):
            return value(name, module, ctx)
        return self._callable_plan(value, name, module, ctx)

    @staticmethod
    def _callable_plan(fn: Callable[..., Any], name: str, module: nn.Module,
                       ctx: PolicyContext) -> ModulePlan:
        """A tensor scheme for every >= 2-d parameter and every parameter ``"auto"`` does not
        cover; the rest (biases, norm weights of known layers) as ``"auto"`` decides."""
        base = auto_policy(name, module, ctx) or ModulePlan()
        plan = ModulePlan(dict(base.params), base.reset_running_stats, base.note)
        scheme = getattr(fn, "__name__", type(fn).__name__)
        fill = tensor_scheme_fill(fn, rng_devices(ctx.model))
        for pname in own_params(module):
            if getattr(module, pname).dim() >= 2 or pname not in base.params:
                plan.params[pname] = ParamInit(scheme.rstrip("_"), fill, note="user override")
        return plan
