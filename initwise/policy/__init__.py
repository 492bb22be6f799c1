"""Whole-model initialization: which scheme for which parameter, applied in one traversal.

:func:`apply` walks the model's modules by qualified name; a *policy* decides, per module that
owns parameters, a :class:`ModulePlan` (one :class:`ParamInit` per parameter), the module's own
``reset_parameters``, or ``"skip"``; the traversal fills the tensors from one generator and
records every parameter in the :class:`~initwise.initreport.InitReport`.

Built-in policies (``policies()`` lists them; :func:`register_policy` adds yours):

* ``"auto"`` -- per layer, the scheme that fits the activation the graph finds after it (rules in
  :mod:`initwise.policy._rules`: Kaiming-style ``N(0, g^2/fan_in)`` with the activation's
  variance gain -- drawn orthogonal (same per-output variance) for hidden ``nn.Linear``
  layers, and in mirrored "looks-linear" pairs where plain ``Linear -> ReLU/GELU/SiLU... ->
  Linear`` chains make the network exactly linear at init (:mod:`initwise.policy._mirror`) --,
  LeCun for SELU and for the output layer, embeddings by lookup, packed MHA/RNN weights per
  block, LSTM forget bias 1, norms (1, 0), biases 0);
* ``"critical"`` -- dense layers at the edge of chaos of their activation (:func:`critical`);
* ``"torch"`` -- every module's own ``reset_parameters``;
* ``"xavier"``, ``"kaiming"``, ``"lecun"``, ``"orthogonal"`` -- that scheme on every weight
  (``xavier_uniform``, ``kaiming_normal``, ``lecun_normal``; see :mod:`initwise.policy._named`).

Safety: tied weights are initialized once (later owners are reported ``tied:<first name>``, in
registration order); frozen parameters are untouched unless ``include_frozen=True``;
parametrized weights (``torch.nn.utils.parametrize``) are set through ``right_inverse``, keeping
the parametrization; a meta-device or unmaterialized lazy model is refused with the remedy.

Randomness: every draw comes from one ``torch.Generator`` (``generator=`` or ``seed=``; with
neither, a fresh seed is drawn from the OS and reported in ``InitReport.seed``). Tensors are
filled on the generator's device in float32/float64 and copied, so the same seed gives the same
bits on any device or dtype-equal model. Module ``reset_parameters`` (``"torch"`` and unknown
modules) draw from the global RNG; they run inside :func:`initwise.state.seeded_rng` (a fork of
the global RNG seeded from the generator), so they are reproducible and the caller's RNG state is
untouched. Atomic: :func:`initwise.state.guarded` restores the model if anything raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from initwise.graph import ModelGraph, check_materialized
from initwise.initreport import InitReport
from initwise.modelio import forward_context
from initwise.options import ON_UNKNOWN, check_on_unknown, resolve_generator
from initwise.policy._apply import _Walker
from initwise.policy._named import SCHEME_NAMES, critical, named_policy, torch_policy
from initwise.policy._overrides import Overrides
from initwise.policy._respect import (
    KNOWN_LIBRARIES,
    finite_parameters,
    model_library,
    respect_policy,
)
from initwise.policy._rules import auto_policy
from initwise.policy._types import (
    ModulePlan,
    ParamInit,
    Policy,
    PolicyContext,
    get_policy,
    policies,
    register_policy,
)
from initwise.state import guarded

__all__ = [
    "KNOWN_LIBRARIES",
    "ON_UNKNOWN",
    "SCHEME_NAMES",
    "ModulePlan",
    "ParamInit",
    "Policy",
    "PolicyContext",
    "apply",
    "choose_auto",
    "critical",
    "get_policy",
    "model_library",
    "policies",
    "register_policy",
]

register_policy("auto", auto_policy, needs_graph=True,
                description="'respect' for a healthy model of a known library (transformers, "
                            "timm, torchvision), else 'generic'")
register_policy("generic", Policy("generic", auto_policy, True,
                                  "per layer, the scheme for the activation that follows it"))
register_policy("respect", respect_policy,
                description="keep the model's own init (init then fixes what it measures)")
register_policy("critical", critical(), needs_graph=True,
                description="dense layers at the edge of chaos of their activation")
register_policy("torch", torch_policy, description="each module's own reset_parameters()")
for _name, _scheme, _graph in (("xavier", "xavier_uniform", False),
                               ("kaiming", "kaiming_normal", True),
                               ("lecun", "lecun_normal", False),
                               ("orthogonal", "orthogonal", True)):
    register_policy(_name, named_policy(_scheme), needs_graph=_graph,
                    description=f"{_scheme} on every weight, biases 0, norms (1, 0)")


def _check_model(model: Any) -> None:
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            "apply: model is a TorchScript module, whose parameters cannot be re-initialized "
            "in place by module; initialize the eager nn.Module first, then script it "
            "(initwise.apply(model); torch.jit.script(model)).")
    check_materialized(
        model, then="call apply",
        meta_remedy="call model.to_empty(device='cpu') (or your device) first, then apply() "
                    "fills it.")


def apply(model: nn.Module, policy: str | Policy | Any = "auto", *,
          generator: torch.Generator | int | None = None, seed: int | None = None,
          overrides: Mapping[Any, Any] | None = None, example_inputs: Any = None,
          on_unknown: str = "warn", include_frozen: bool = False,
          graph: ModelGraph | None = None, atomic: bool = True) -> InitReport:
    """Initialize every parameter of ``model`` by ``policy``; atomic and reproducible.

    Args:
        model: the model (modified in place).
        policy: a registered name (``"auto"``, ``"critical"``, ``"torch"``, ``"xavier"``,
            ``"kaiming"``, ``"lecun"``, ``"orthogonal"``, or yours), a :class:`Policy`, or a
            function ``fn(qualified_name, module, ctx) -> ModulePlan | "reset_parameters" |
            "skip" | None``. Default ``"auto"``.
        generator: the random source: a ``torch.Generator`` or an int seed. Default ``None``.
        seed: seed for a fresh CPU generator (exclusive with ``generator``). With neither, a
            seed is derived from the caller's global RNG without advancing it (so
            ``torch.manual_seed`` makes the call reproducible) and reported in
            ``InitReport.seed`` (:func:`initwise.options.resolve_generator`).
        overrides: ``{name glob or module type: value}``; the first matching entry wins and
            covers the matched module's subtree. Values: a scheme name (``"xavier_normal"``,
            ``"kaiming_uniform"``, ``"orthogonal"``, ... see ``SCHEME_NAMES``), a policy name
            or :class:`Policy`, ``"reset_parameters"``, ``"skip"``, or a tensor scheme
            ``fn(tensor, generator=None)`` (applied to every >= 2-d parameter of the module;
            the rest as ``"auto"`` decides). Default ``None``.
        example_inputs: inputs for :func:`initwise.graph.trace` (exact activations, norms,
            residuals); without them the graph comes from :func:`initwise.graph.trace_structure`.
        on_unknown: for parameters the policy does not cover in a module without
            ``reset_parameters``: ``"error"`` (ValueError), ``"warn"`` (default: warning,
            left as they are) or ``"skip"`` (left as they are).
        include_frozen: also initialize parameters with ``requires_grad=False``. Default False.
        graph: a :class:`~initwise.graph.ModelGraph` of THIS model already traced (e.g. by
            ``initwise.init``), used instead of tracing again. Default ``None``.
        atomic: snapshot the model and restore it on error (default ``True``). ``False`` skips
            the copy of every tensor, for a caller that already guarantees atomicity
            (``initwise.init`` does); the model may then be half-initialized after an error.

    Returns:
        The :class:`~initwise.initreport.InitReport` with one ``ParamRecord`` per parameter
        (scheme, fans, gain, resulting std, note), in module order.

    Raises:
        TypeError: a non-module model, a bad ``generator``/``overrides``/policy type.
        ValueError: unknown policy/scheme/on_unknown, an override matching nothing, a meta or
            lazy model, ``on_unknown="error"`` with an uncovered module. On ANY error the model
            is bit-for-bit as before (parameters, buffers, requires_grad, modes).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 4))
        >>> report = apply(net, seed=0)
        >>> [(r.name, r.scheme, round(r.gain, 4)) for r in report.params if r.gain]
        [('0.weight', 'orthogonal', 1.5925), ('2.weight', 'lecun_normal', 1.0)]
        >>> relu = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
        >>> [r.scheme for r in apply(relu, seed=0).params if r.gain]  # mirrored pairs
        ['looks_linear', 'looks_linear']
    """
    check_on_unknown(on_unknown, "apply")
    if not isinstance(include_frozen, bool):
        raise TypeError(f"apply: include_frozen: expected a bool, got {include_frozen!r}.")
    asked = get_policy(policy)
    _check_model(model)
    pol, reason = choose_auto(model, asked)
    rules = Overrides(overrides, model)
    gen, used_seed = resolve_generator(generator, seed, where="apply")
    ctx = PolicyContext(model, gen, example_inputs, pol.name)
    ctx.policy_draws = _drawn_by_policy(model, rules, include_frozen)
    if graph is not None:
        _check_graph(graph, model)
        ctx._graph = graph
    report = InitReport(policy=pol.name if reason else asked.name, seed=used_seed,
                        policy_reason=reason)
    with guarded(model, restore="on_error") if atomic else nullcontext():
        if pol.needs_graph or rules.needs_graph:
            with forward_context(model, "apply: example_inputs") if example_inputs is not None \
                    else nullcontext():
                _graph_warnings(ctx, report)
        with torch.no_grad():
            _Walker(model, pol, rules, ctx, report, on_unknown, include_frozen).run()
        report.warnings.extend(ctx.warnings)
    return report


def choose_auto(model: nn.Module, pol: Policy, unhealthy: str | None = None,
                ) -> tuple[Policy, str]:
    """The policy ``"auto"`` stands for on this model, and why (:mod:`initwise.policy._respect`).

    Args:
        model: the model.
        pol: the requested policy; any other than ``"auto"`` is returned as it is.
        unhealthy: what a measurement found wrong with the model's own init (``initwise.init``
            runs the doctor's checks), or ``None``.

    Returns:
        ``(policy, reason)``: ``"respect"`` for a model of a known library with a healthy own
        init, else ``"generic"``; the reason is ``""`` for a policy other than ``"auto"``.
    """
    if pol.name != "auto" or get_policy("auto") is not pol:
        return pol, ""
    lib = model_library(model)
    if lib is None:
        return get_policy("generic"), ""
    origin = f"{lib[1]} comes from {lib[0]}"
    bad = finite_parameters(model)
    if bad is not None:
        unhealthy = f"parameter {bad!r} holds NaN/Inf"
    if unhealthy is not None:
        return get_policy("generic"), (f"auto chose 'generic': {origin}, but its own init is "
                                       f"not healthy ({unhealthy})")
    return get_policy("respect"), (f"auto chose 'respect': {origin} and its own init is "
                                   f"healthy, so every parameter keeps it")


def _drawn_by_policy(model: nn.Module, rules: Overrides, include_frozen: bool) -> Any:
    """``module -> bool``: the policy (not an override) draws its weight, which is not frozen
    (or ``include_frozen``); rules that pair layers (looks-linear) need both drawn."""
    names = {id(m): n for n, m in model.named_modules()}

    def drawn(module: nn.Module) -> bool:
        name = names.get(id(module))
        weight = module._parameters.get("weight")
        return (name is not None and weight is not None and rules.match(name, module) is None
                and (include_frozen or weight.requires_grad))

    return drawn


def _check_graph(graph: Any, model: nn.Module) -> None:
    if not isinstance(graph, ModelGraph):
        raise TypeError(f"graph: expected an initwise.graph.ModelGraph, got "
                        f"{type(graph).__name__}.")
    mine = {id(m) for m in model.modules()}
    for node in graph.layers:
        if id(node.module) not in mine:
            raise ValueError(
                f"graph: layer {node.name!r} is not a module of this model (the graph was traced "
                f"on another model); trace this model or pass graph=None."
            )


def _graph_warnings(ctx: PolicyContext, report: InitReport) -> None:
    graph = ctx.graph
    report.warnings.extend(graph.warnings)
    if graph.method in ("sequential", "modules"):
        report.warnings.append(
            f"graph from {graph.method} adjacency: the activation after a layer is unknown "
            f"outside nn.Sequential (gain 1 used there); pass example_inputs= for exact gains."
        )
