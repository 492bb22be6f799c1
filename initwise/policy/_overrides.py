"""User overrides: ``{name glob | module type: scheme | policy | callable | "skip"}``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
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
from initwise.state import rng_devices, seeded_rng

__all__ = ["Overrides"]

_SPECIAL = ("skip", "reset_parameters")


def _glob_match(name: str, pattern: str) -> bool:
    """``pattern`` matches the module or one of its ancestors (an override covers a subtree)."""
    parts = name.split(".") if name else []
    return any(fnmatchcase(".".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)) or (
        fnmatchcase(name, pattern)
    )


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


class Overrides:
    """Validated overrides; the first matching entry (in the order given) wins."""

    def __init__(self, overrides: Mapping[Any, Any] | None, model: nn.Module) -> None:
        self.items: list[tuple[Any, Any]] = []
        self._modules = dict(model.named_modules())
        if overrides is None:
            return
        if not isinstance(overrides, Mapping):
            raise TypeError(
                f"overrides: expected a dict {{name glob or module type: scheme}}, got "
                f"{type(overrides).__name__}."
            )
        names = [n for n, _ in model.named_modules()]
        valid = [*SCHEME_NAMES, *_SPECIAL, *policies()]
        for key, value in overrides.items():
            self._check_key(key, model, names)
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
            self.items.append((key, value))

    @staticmethod
    def _check_key(key: Any, model: nn.Module, names: list[str]) -> None:
        if isinstance(key, str):
            if not any(_glob_match(n, key) for n in names):
                shown = ", ".join(repr(n) for n in names[1:8])
                raise ValueError(
                    f"overrides: {key!r} matches no module name (names look like {shown}); "
                    f"use a qualified module name or a glob such as 'encoder.*'."
                )
        elif isinstance(key, type) and issubclass(key, nn.Module):
            if not any(isinstance(m, key) for m in model.modules()):
                raise ValueError(f"overrides: the model contains no {key.__name__} module.")
        else:
            raise TypeError(
                f"overrides: keys must be module-name globs (str) or nn.Module types, got "
                f"{key!r}."
            )

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

    def match(self, name: str, module: nn.Module) -> tuple[Any, Any] | None:
        """The first ``(key, value)`` whose glob matches ``name`` or one of its ancestors, or
        whose type ``module`` or one of its ancestors is (an override covers a subtree)."""
        for key, value in self.items:
            hit = _glob_match(name, key) if isinstance(key, str) else self._is_in(name, module, key)
            if hit:
                return key, value
        return None

    def _is_in(self, name: str, module: nn.Module, key: type) -> bool:
        if isinstance(module, key):
            return True
        parts = name.split(".") if name else []
        return any(isinstance(self._modules.get(".".join(parts[:i])), key)
                   for i in range(len(parts)))

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
