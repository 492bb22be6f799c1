"""The policy protocol: plans per module, the context a policy sees, and the registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initwise.graph import trace, trace_structure
from initwise.schemes.gains import gain as activation_gain

__all__ = [
    "Fill",
    "ModulePlan",
    "ParamInit",
    "Policy",
    "PolicyContext",
    "get_policy",
    "policies",
    "register_policy",
]

#: Fills ONE tensor in place from a generator: ``fill(tensor, generator) -> None``.
Fill = Callable[[torch.Tensor, torch.Generator], Any]


@dataclass(frozen=True)
class ParamInit:
    """How to initialize one parameter.

    Attributes:
        scheme: the scheme's name as reported (``"kaiming_normal"``, ``"zeros"``...).
        fill: ``fill(tensor, generator)``, filling the tensor in place. It receives a tensor of
            the parameter's shape (float32 or float64, on the generator's device).
        fan_in: the fan-in used, if any (reported).
        fan_out: the fan-out used, if any (reported).
        gain: the gain used, if any (reported).
        note: why this choice (reported).
    """

    scheme: str
    fill: Fill
    fan_in: int | None = None
    fan_out: int | None = None
    gain: float | None = None
    note: str = ""


@dataclass
class ModulePlan:
    """A policy's decision for one module's own parameters.

    Attributes:
        params: :class:`ParamInit` per parameter name (names as in ``module._parameters``, or a
            parametrized tensor's name such as ``"weight"``). Parameters the plan leaves out
            are handled like an unknown module's (its ``reset_parameters``, else ``on_unknown``).
        reset_running_stats: also reset the module's running statistics (norm layers).
        note: a note added to every record of this module.
    """

    params: dict[str, ParamInit] = field(default_factory=dict)
    reset_running_stats: bool = False
    note: str = ""


#: What a policy function returns for a module: a plan, ``"reset_parameters"`` (the module's
#: own), ``"skip"`` (leave untouched), ``"keep"`` (leave untouched on purpose: the values are the
#: model's own init, recorded as ``kept``), or ``None`` (not handled: reset_parameters/on_unknown).
Decision = ModulePlan | str | None


class PolicyContext:
    """What a policy sees besides the module: the model, its graph (lazy), the generator.

    Attributes:
        model: the model being initialized.
        generator: the random source (also available to ``ParamInit.fill``).
        policy_name: the name of the policy being applied.
    """

    def __init__(self, model: nn.Module, generator: torch.Generator,
                 example_inputs: Any = None, policy_name: str = "") -> None:
        self.model = model
        self.generator = generator
        self.policy_name = policy_name
        self._inputs = example_inputs
        self._graph: Any = None
        self._owners: dict[int, Any] | None = None
        self._gains: dict[tuple[str, str], float] = {}
        self.warnings: list[str] = []
        #: ``policy_draws(module)``: whether the policy itself will draw the module's weight
        #: (no override matches it, it is not frozen); set by :func:`initwise.policy.apply`
        self.policy_draws: Callable[[nn.Module], bool] | None = None

    def warn(self, message: str) -> None:
        """Add ``message`` to the report's warnings (once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def graph(self) -> Any:
        """The :class:`~initwise.graph.ModelGraph`: traced on ``example_inputs`` when given,
        else :func:`~initwise.graph.trace_structure` (computed on first use)."""
        if self._graph is None:
            if self._inputs is not None:
                self._graph = trace(self.model, self._inputs)
            else:
                self._graph = trace_structure(self.model)
        return self._graph

    def layer(self, module: nn.Module) -> Any:
        """The graph's :class:`~initwise.graph.LayerNode` for ``module``, or for the layer that
        contains it (``attn.out_proj`` -> ``attn``), or ``None``."""
        if self._owners is None:
            owners: dict[int, Any] = {}
            for node in self.graph.layers:
                for m in node.module.modules():
                    owners.setdefault(id(m), node)
            self._owners = owners
        return self._owners.get(id(module))

    def activation(self, module: nn.Module) -> tuple[str, Any] | None:
        """``(name, activation_fn)`` of the nonlinearity that follows ``module``, or ``None``."""
        node = self.layer(module)
        if node is None or node.activation is None:
            return None
        return node.activation, node.activation_fn

    def gain(self, module: nn.Module) -> float:
        """Variance gain ``1/sqrt(E[phi(z)^2])`` of the activation after ``module`` (1 if none).

        See :func:`initwise.schemes.gains.gain`.
        """
        act = self.activation(module)
        if act is None:
            return 1.0
        name, fn = act
        key = activation_key(name, fn)
        if key not in self._gains:
            try:
                value = float(activation_gain(fn if fn is not None else name, mode="variance"))
            except ValueError as exc:
                raise ValueError(
                    f"no variance gain for the activation {name!r} after module "
                    f"{type(module).__name__} ({exc}); set this layer's scheme with "
                    f"overrides={{name or type: 'xavier_normal' (or another scheme)}}."
                ) from exc
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"activation {name!r} after a layer has no finite gain.")
            self._gains[key] = value
        return self._gains[key]


def activation_key(name: str, fn: Any) -> tuple[str, Any]:
    """A cache key for an activation: its repr for a module without parameters (two
    ``nn.LeakyReLU(0.2)`` are the same), the instance itself for one WITH parameters (two
    ``nn.PReLU`` with different slopes are not, though their reprs are equal)."""
    if isinstance(fn, nn.Module):
        return (name, id(fn)) if any(True for _ in fn.parameters()) else (name, repr(fn))
    return (name, name)


@dataclass(frozen=True)
class Policy:
    """A named whole-model policy.

    Attributes:
        name: the registry name.
        fn: ``fn(qualified_name, module, ctx) -> ModulePlan | "reset_parameters" | "skip" |
            None``, called for every module that owns parameters.
        needs_graph: whether ``fn`` reads ``ctx.graph`` (traced up front, before any change).
        description: one line for listings.
    """

    name: str
    fn: Callable[[str, nn.Module, PolicyContext], Decision]
    needs_graph: bool = False
    description: str = ""

    def __call__(self, name: str, module: nn.Module, ctx: PolicyContext) -> Decision:
        return self.fn(name, module, ctx)


_REGISTRY: dict[str, Policy] = {}


def register_policy(name: str, fn: Callable[[str, nn.Module, PolicyContext], Decision] | Policy,
                    overwrite: bool = False, *, needs_graph: bool = False,
                    description: str = "") -> Policy:
    """Register a whole-model policy under ``name`` (usable as ``apply(model, policy=name)``).

    Args:
        name: the policy's name (a non-empty string).
        fn: a :class:`Policy`, or ``fn(qualified_name, module, ctx)`` returning a
            :class:`ModulePlan`, ``"reset_parameters"``, ``"skip"`` or ``None`` (not handled).
        overwrite: replace an existing policy of that name. Default ``False``.
        needs_graph: ``fn`` reads ``ctx.graph`` / ``ctx.activation`` / ``ctx.gain``.
        description: one line for listings.

    Returns:
        The registered :class:`Policy`.

    Raises:
        ValueError: if ``name`` is taken and ``overwrite`` is False, or ``name`` is empty.
        TypeError: if ``fn`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_policy: name must be a non-empty string, got {name!r}.")
    if not callable(fn):
        raise TypeError(f"register_policy: fn must be callable, got {type(fn).__name__}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"register_policy: a policy named {name!r} is already registered; pass "
            f"overwrite=True to replace it, or choose another name."
        )
    policy = fn if isinstance(fn, Policy) else Policy(name, fn, needs_graph, description)
    if policy.name != name:
        policy = Policy(name, policy.fn, policy.needs_graph, policy.description)
    _REGISTRY[name] = policy
    return policy


def policies() -> dict[str, str]:
    """Registered policy names with their one-line descriptions.

    Returns:
        ``{name: description}`` in registration order.
    """
    return {name: p.description for name, p in _REGISTRY.items()}


def get_policy(policy: str | Policy | Callable[..., Decision]) -> Policy:
    """Resolve a policy name, :class:`Policy` or bare function to a :class:`Policy`.

    Args:
        policy: a registered name, a :class:`Policy`, or ``fn(name, module, ctx)``.

    Returns:
        The :class:`Policy` (a bare function is assumed to read the graph).

    Raises:
        ValueError: for an unknown name (lists the registered names).
        TypeError: for anything else.
    """
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        if policy not in _REGISTRY:
            raise ValueError(
                f"policy: unknown policy {policy!r}; registered: {sorted(_REGISTRY)}. Register "
                f"your own with initwise.policy.register_policy(name, fn)."
            )
        return _REGISTRY[policy]
    if callable(policy):
        name = getattr(policy, "__name__", type(policy).__name__)
        return Policy(name, policy, needs_graph=True)
    raise TypeError(
        f"policy: expected a policy name ({sorted(_REGISTRY)}), a Policy or a function "
        f"fn(name, module, ctx), got {type(policy).__name__}."
    )
