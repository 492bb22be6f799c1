"""Torch bridge and THE activation registry: every activation fact in initwise comes from here.

The theory engine (:mod:`initwise.theory`) works on float64 numpy functions. This module turns
what a PyTorch user has in hand into an :class:`ActivationSpec` carrying both sides:

* a name or alias (``"relu"``, ``"LeakyReLU"``, ``"swish"``) with its parameters;
* an ``nn.Module`` instance, whose parameters are read (``LeakyReLU.negative_slope``,
  ``ELU.alpha``, ``GELU.approximate``, ``PReLU``'s weight, ``Softplus.beta/threshold``,
  ``Hardtanh.min_val/max_val``...);
* a torch function (``F.relu``, ``torch.tanh``, ``F.gelu``, ``torch.Tensor.relu``...);
* any other callable: evaluated through torch in float64 (derivatives by autograd, exact almost
  everywhere), or through numpy when it does not accept tensors (derivatives by finite
  differences, see :func:`initwise.theory.activations.from_callable`).

The registry. Which module classes ARE activations (for :func:`initwise.gain`, for the graph
tracers, hence for ``apply``/``init``/``doctor``) is one table: torch's activation modules are
its built-in entries, :func:`register_activation` adds a module class or a named callable (or a
module class says so itself with ``initwise_activation = True`` / ``= "name"``), and
:func:`unregister_activation` removes a user entry, which restores the built-in behaviour. A
class is looked up along its MRO: the first class that is registered by the user, carries the
``initwise_activation`` attribute (``False`` opts out), or is a built-in entry decides.

Every derived fact -- variance gain, saturation threshold, dying units, homogeneity, the odd
slope of looks-linear pairs -- is computed once, in :func:`activation_facts`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Squash(nn.Module):
    ...     def forward(self, x):
    ...         return x / (1 + x.abs())
    >>> _ = register_activation(Squash, saturating=True)
    >>> facts = activation_facts(Squash())
    >>> facts.name, round(facts.sat_threshold, 6)  # softsign: sqrt(10) - 1
    ('Squash', 2.162278)
    >>> unregister_activation(Squash)
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initwise.theory.activations import Activation, from_callable, get_activation
from initwise.theory.activations import known_activations as theory_activations
from initwise.theory.maps import second_moment

__all__ = [
    "FLAGS",
    "SATURATION_SLOPE",
    "ActivationFacts",
    "ActivationSpec",
    "activation_facts",
    "activation_function_names",
    "known_activations",
    "module_activation",
    "register_activation",
    "registered_function",
    "resolve_activation",
    "unregister_activation",
    "variance_gain",
]


@dataclass(frozen=True)
class ActivationSpec:
    """An activation on both sides of the bridge.

    Attributes:
        name: canonical name (``"leaky_relu"``), or the callable's name for custom ones.
        params: parameters (``{"negative_slope": 0.2}``).
        np_fn: float64 numpy callable.
        torch_fn: torch callable (``None`` for a numpy-only callable).
        relu_family: zero on a half-line (units can die).
        saturating: bounded output (tanh, sigmoid, hard-tanh, softsign...).
        nonnegative: output >= 0.
        np_activation: the theory engine's :class:`~initwise.theory.activations.Activation`
            (derivatives, kinks); every ``initwise.theory`` function accepts the spec itself.
    """

    name: str
    params: dict[str, Any]
    np_fn: Callable[[np.ndarray], np.ndarray]
    torch_fn: Callable[..., Any] | None
    relu_family: bool
    saturating: bool
    nonnegative: bool
    np_activation: Activation = field(repr=False)

    @property
    def np_deriv(self) -> Callable[[np.ndarray], np.ndarray]:
        """The float64 numpy derivative (exact almost everywhere)."""
        return self.np_activation.deriv


# name -> torch function building the activation from its (torch-named) parameters
_TORCH_BUILDERS: dict[str, Callable[..., Callable[..., Any]]] = {
    "relu": lambda: F.relu,
    "leaky_relu": lambda negative_slope: lambda x: F.leaky_relu(x, negative_slope),
    "prelu": lambda init: lambda x: F.leaky_relu(x, init),
    "elu": lambda alpha: lambda x: F.elu(x, alpha),
    "celu": lambda alpha: lambda x: F.celu(x, alpha),
    "selu": lambda: F.selu,
    "gelu": lambda approximate: lambda x: F.gelu(x, approximate=approximate),
    "gelu_tanh": lambda approximate="tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda: F.silu,
    "mish": lambda: F.mish,
    "softplus": lambda beta, threshold: lambda x: F.softplus(x, beta, threshold),
    "sigmoid": lambda: torch.sigmoid,
    "tanh": lambda: torch.tanh,
    "hardtanh": lambda min_val, max_val: lambda x: F.hardtanh(x, min_val, max_val),
    "relu6": lambda: F.relu6,
    "hardswish": lambda: F.hardswish,
    "hardsigmoid": lambda: F.hardsigmoid,
    "softsign": lambda: F.softsign,
    "logsigmoid": lambda: F.logsigmoid,
    "sin": lambda: torch.sin,
    "erf": lambda: torch.erf,
    "identity": lambda: lambda x: x,
}


# ----------------------------------------------------------------------------- the registry
#: Flags ``register_activation`` accepts (they override what is probed for a custom callable).
FLAGS = ("relu_family", "saturating", "nonnegative", "homogeneous", "kinks")
_BUILTIN_OWNER = "initwise (built-in)"

#: Normalized names of torch functions / Tensor methods the graph treats as elementwise
#: activations (built-in entries; registered names are added by :func:`activation_function_names`).
_FUNCTION_NAMES = frozenset({
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu",
    "mish", "softplus", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid", "softsign",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold", "sin",
})

Reader = Callable[[nn.Module], tuple[str, dict[str, Any]] | None]


@dataclass(frozen=True)
class _Entry:
    """One registration: a module class or a name, and how it resolves.

    ``read(module) -> (name, params)`` resolves an instance by name (None: numerically, from
    ``fn`` or the instance itself); ``label(module)`` is the graph's name; ``graph``: a node of
    the graph (``nn.Identity`` resolves but is no activation node); ``exact``: ``read`` applies to
    the class itself only, a subclass (its own ``forward``) resolves numerically.
    """

    target: Any
    name: str
    owner: str
    read: Reader | None = None
    fn: Callable[..., Any] | None = None
    flags: tuple[tuple[str, Any], ...] = ()
    graph: bool = True
    exact: bool = False
    label: Callable[[nn.Module], str] | None = None

    def graph_name(self, module: nn.Module) -> str:
        return self.label(module) if self.label is not None else self.name


def _plain(name: str) -> Reader:
    return lambda m: (name, {})


def _params(name: str, *attrs: str) -> Reader:
    return lambda m: (name, {a: float(getattr(m, a)) for a in attrs})


def _prelu_params(m: nn.Module) -> tuple[str, dict[str, Any]]:
    w = m.weight.detach().to(torch.float64)
    return "prelu", ({"init": float(w.mean())} if w.numel() else {})


def _builtin(cls: type[nn.Module], name: str, read: Reader | None = None, *, exact: bool = False,
             graph: bool = True, label: Callable[[nn.Module], str] | None = None) -> _Entry:
    return _Entry(cls, name, _BUILTIN_OWNER, read, graph=graph, exact=exact, label=label)


_BUILTIN: dict[type, _Entry] = {e.target: e for e in (
    _builtin(nn.ReLU6, "relu6", _plain("relu6")),
    _builtin(nn.Hardtanh, "hardtanh", _params("hardtanh", "min_val", "max_val")),
    _builtin(nn.LeakyReLU, "leaky_relu", _params("leaky_relu", "negative_slope")),
    _builtin(nn.PReLU, "prelu", _prelu_params),
    _builtin(nn.ELU, "elu", _params("elu", "alpha")),
    _builtin(nn.CELU, "celu", _params("celu", "alpha")),
    _builtin(nn.GELU, "gelu", lambda m: ("gelu", {"approximate": m.approximate}),
             label=lambda m: "gelu_tanh" if m.approximate == "tanh" else "gelu"),
    _builtin(nn.Softplus, "softplus", _params("softplus", "beta", "threshold")),
    *(_builtin(cls, name, _plain(name), exact=True) for cls, name in (
        (nn.ReLU, "relu"), (nn.SELU, "selu"), (nn.SiLU, "silu"), (nn.Mish, "mish"),
        (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.Hardswish, "hardswish"),
        (nn.Hardsigmoid, "hardsigmoid"), (nn.Softsign, "softsign"),
        (nn.LogSigmoid, "logsigmoid"))),
    _builtin(nn.Identity, "identity", _plain("identity"), exact=True, graph=False),
    *(_builtin(cls, name) for cls, name in (
        (nn.RReLU, "rrelu"), (nn.Tanhshrink, "tanhshrink"), (nn.Softshrink, "softshrink"),
        (nn.Hardshrink, "hardshrink"), (nn.Threshold, "threshold"))),
)}
#: Activation classes of other libraries, known by qualified name (``module.qualname``) so that
#: initwise never imports those libraries: Hugging Face's tanh-formula GELUs would otherwise be
#: traced as their inner ``tanh`` (GPT-2's ``gelu_new`` read as a saturating tanh).
_BUILTIN_QUALNAMES: dict[str, tuple[str, Reader]] = {
    **{f"transformers.activations.{cls}": ("gelu_tanh", lambda m: ("gelu", {"approximate": "tanh"}))
       for cls in ("NewGELUActivation", "FastGELUActivation", "AccurateGELUActivation",
                   "GELUTanh", "PytorchGELUTanh")},
    "transformers.activations.GELUActivation": ("gelu", _plain("gelu")),
    "transformers.activations.SiLUActivation": ("silu", _plain("silu")),
    "transformers.activations.MishActivation": ("mish", _plain("mish")),
}
#: user registrations: module classes by class, names by normalized name
_USER: dict[Any, _Entry] = {}
#: _FUNCTION_NAMES and the registered names (recomputed when the registry changes)
_function_names = _FUNCTION_NAMES


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def _theory_knows(name: str) -> bool:
    try:
        get_activation(name)
    except ValueError:
        return False
    return True


def _caller() -> str:
    """The module that called the public registration function (recorded as the owner)."""
    return str(sys._getframe(2).f_globals.get("__name__", "<unknown>"))


def _check_flags(flags: dict[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise ValueError(f"{where}: unknown flag(s) {unknown}; valid: {list(FLAGS)}.")
    out = []
    for k, v in flags.items():
        if k == "kinks":
            v = tuple(float(x) for x in v)
        elif not isinstance(v, bool):
            raise TypeError(f"{where}: flag {k}= must be a bool, got {v!r}.")
        out.append((k, v))
    return tuple(out)


def register_activation(target: type[nn.Module] | str, *, name: str | None = None,
                        fn: Callable[..., Any] | None = None, overwrite: bool = False,
                        **flags: Any) -> Any:
    """Register an activation module class, or a named callable, for the whole library.

    A registered module class IS an activation everywhere: :func:`initwise.gain` and
    :func:`activation_facts` resolve its instances, :func:`initwise.graph.trace` and
    :func:`~initwise.graph.trace_structure` record them as activation nodes, so
    ``apply(policy="auto")`` draws the layer before one with its variance gain.

    Args:
        target: an ``nn.Module`` subclass (its instances are activations; subclasses too), or a
            name (then ``fn`` is required and the name resolves everywhere a name does).
        name: the activation's name. Default: the class name. For a class, a name the
            registry already knows (``"tanh"``, or a registered name) makes its instances
            that activation exactly; any other name is a label, and the instances are
            evaluated numerically (float64 twin with autograd derivatives) unless ``fn`` is given.
        fn: a float64-capable elementwise callable (torch or numpy) defining the activation:
            required for a name, optional for a class. Default ``None``.
        overwrite: replace an existing registration (a built-in one too; unregistering then
            restores the built-in). Default ``False``.
        **flags: declared facts overriding the probed ones: ``relu_family``, ``saturating``,
            ``nonnegative``, ``homogeneous`` (bools) and ``kinks`` (points where the function is
            not smooth; integrals are split there).

    Returns:
        ``target`` (so a bare ``@register_activation`` decorates a class).

    Raises:
        ValueError: the target is registered already (the message names the owner) and
            ``overwrite`` is False; an unknown flag.
        TypeError: ``target`` is neither a module class nor a name; a name without a callable
            ``fn``.

    Example:
        >>> _ = register_activation("lecun_tanh", fn=lambda x: 1.7159 * np.tanh(2 * x / 3),
        ...                         saturating=True)
        >>> round(activation_facts("lecun_tanh").gain, 6)
        1.154369
        >>> unregister_activation("lecun_tanh")
    """
    where = "register_activation"
    checked = _check_flags(flags, where)
    owner = _caller()
    if fn is not None and not callable(fn):
        raise TypeError(f"{where}: fn must be callable, got {type(fn).__name__}.")
    if isinstance(target, str):
        if not target or fn is None:
            raise TypeError(f"{where}({target!r}): a name needs fn=, a float64-capable callable.")
        key, label = _key(target), name or target
        old = _USER.get(key)
        old_owner = old.owner if old is not None else (
            "the initwise.theory registry" if _theory_knows(target) else None)
    elif isinstance(target, type) and issubclass(target, nn.Module):
        key, label = target, name or target.__name__
        old = _USER.get(key) or _BUILTIN.get(key)
        old_owner = old.owner if old is not None else None
    else:
        raise TypeError(f"{where}: target must be an nn.Module subclass or a name, got "
                        f"{target!r}.")
    if old_owner is not None and not overwrite:
        raise ValueError(
            f"{where}: {_describe(target)} is already registered as an activation (owner: "
            f"{old_owner}); pass overwrite=True to replace it, or unregister_activation() first.")
    read = None
    if not isinstance(target, str) and fn is None and _name_known(label):
        read = _plain(label)
    _USER[key] = _Entry(target, label, owner, read, fn, checked)
    _changed()
    return target


def unregister_activation(target: type[nn.Module] | str) -> None:
    """Remove a user registration; a built-in entry it replaced is in force again.

    Args:
        target: the class or name given to :func:`register_activation`.

    Raises:
        ValueError: ``target`` has no user registration (built-in entries cannot be removed).
    """
    key = _key(target) if isinstance(target, str) else target
    if key not in _USER:
        raise ValueError(
            f"unregister_activation: {_describe(target)} has no user registration (built-in "
            f"entries stay; register_activation(..., overwrite=True) replaces one).")
    del _USER[key]
    _changed()


def _describe(target: Any) -> str:
    return repr(target) if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


def _name_known(name: str) -> bool:
    return _key(name) in _USER or _theory_knows(name)


def _changed() -> None:
    global _function_names
    _entry_for_type.cache_clear()
    _FACTS.clear()
    user = {e.name.strip("_") for k, e in _USER.items() if isinstance(k, str)}
    _function_names = _FUNCTION_NAMES | user


@functools.lru_cache(maxsize=1024)
def _entry_for_type(cls: type) -> _Entry | None:
    for klass in cls.__mro__:
        entry = _USER.get(klass)
        if entry is not None:
            return entry
        flag = klass.__dict__.get("initwise_activation")
        if flag is not None and flag is not True and not isinstance(flag, str):
            return None  # initwise_activation = False: not an activation
        if flag is not None:
            label = flag if isinstance(flag, str) else klass.__name__
            owner = f"class attribute {klass.__qualname__}.initwise_activation"
            return _Entry(klass, label, owner, _plain(label) if _name_known(label) else None)
        entry = _BUILTIN.get(klass)
        if entry is not None:
            return entry
        known = _BUILTIN_QUALNAMES.get(f"{klass.__module__}.{klass.__qualname__}")
        if known is not None:
            return _Entry(klass, known[0], _BUILTIN_OWNER, known[1], exact=True)
    return None


def module_activation(module: Any) -> str | None:
    """The graph's activation name for an activation module instance, ``None`` for others.

    Args:
        module: any object (modules are looked up along their class's MRO).

    Returns:
        The registered name (``nn.GELU(approximate="tanh")`` -> ``"gelu_tanh"``), or ``None``
        for a module that is no activation node (``nn.Identity``, layers, containers).

    Example:
        >>> module_activation(nn.LeakyReLU(0.2)), module_activation(nn.Linear(2, 2))
        ('leaky_relu', None)
    """
    if not isinstance(module, nn.Module):
        return None
    entry = _entry_for_type(type(module))
    if entry is None or not entry.graph:
        return None
    return entry.graph_name(module)


def activation_function_names() -> frozenset[str]:
    """Normalized names of the functions the graph records as activations (``"relu"``,
    ``"gelu"``...; registered names included)."""
    return _function_names


def registered_function(name: str) -> Callable[..., Any] | None:
    """The callable registered under ``name`` with :func:`register_activation`, or ``None``."""
    entry = _USER.get(_key(name))
    return entry.fn if entry is not None and isinstance(entry.target, str) else None


def known_activations() -> list[str]:
    """Names :func:`resolve_activation` accepts: the theory's canonical names and registered
    names (aliases are also accepted)."""
    user = [e.name for k, e in _USER.items() if isinstance(k, str)]
    return sorted(set(theory_activations()) | set(user))


# ----------------------------------------------------------------------------- resolution
def _spec(act: Activation, torch_fn: Callable[..., Any] | None) -> ActivationSpec:
    return ActivationSpec(
        name=act.name, params=dict(act.params), np_fn=act.fn, torch_fn=torch_fn,
        relu_family=act.relu_family, saturating=act.saturating, nonnegative=act.nonnegative,
        np_activation=act,
    )


def _with_flags(spec: ActivationSpec, flags: tuple[tuple[str, Any], ...]) -> ActivationSpec:
    if not flags:
        return spec
    act = replace(spec.np_activation, **dict(flags))
    return replace(_spec(act, spec.torch_fn), name=spec.name, params=spec.params)


def _from_name(name: str, params: dict[str, Any]) -> ActivationSpec:
    entry = _USER.get(_key(name))
    if entry is not None and isinstance(entry.target, str):
        if params:
            raise ValueError(f"resolve_activation: parameters {sorted(params)} given with the "
                             f"registered activation {name!r}; it takes none.")
        return _from_entry_fn(entry)
    act = get_activation(name, **params)
    builder = _TORCH_BUILDERS.get(act.name)
    torch_fn = builder(**act.params) if builder is not None else None
    return _spec(act, torch_fn)


def _from_entry_fn(entry: _Entry) -> ActivationSpec:
    flags = dict(entry.flags)
    spec = _from_callable(entry.fn, entry.name, tuple(flags.get("kinks", ())))
    return _with_flags(spec, entry.flags)


def _from_module(module: nn.Module, entry: _Entry) -> ActivationSpec:
    """An instance of a registered class: by name (read), from ``fn``, or numerically."""
    if _reads(entry, module):
        known = entry.read(module)
        if known is not None:
            spec = _from_name(*known)
            spec = ActivationSpec(spec.name, spec.params, spec.np_fn, module, spec.relu_family,
                                  spec.saturating, spec.nonnegative, spec.np_activation)
            return _with_flags(spec, entry.flags)
    if entry.owner == _BUILTIN_OWNER:
        return _from_callable(module, None, ())
    if entry.fn is not None:
        spec = _from_entry_fn(entry)
        return replace(spec, torch_fn=module)
    kinks = tuple(dict(entry.flags).get("kinks", ()))
    return _with_flags(_from_callable(module, entry.name, kinks), entry.flags)


def _torch_function_name(fn: Any) -> str | None:
    """Registry name of a torch function (``F.relu``, ``torch.tanh``, ``Tensor.relu_``...)."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        return None
    base = name.rstrip("_")
    namespaces = (torch, F, torch.Tensor, torch.special, torch._C._nn)
    if not any(getattr(ns, name, None) is fn for ns in namespaces):
        return None
    aliases = {"expit": "sigmoid", "hardtanh": "hardtanh", "log_sigmoid": "logsigmoid"}
    base = aliases.get(base, base)
    return base if base in _TORCH_BUILDERS else None


def _probe_flags(fn: Callable[[np.ndarray], np.ndarray]) -> dict[str, bool]:
    """Flags of an unknown callable, probed on a grid (documented heuristics)."""
    near = np.linspace(-20.0, 20.0, 4001)
    far = np.concatenate([-np.logspace(1, 4, 50), np.logspace(1, 4, 50)])
    with np.errstate(all="ignore"):
        f_near = np.asarray(fn(near), dtype=np.float64)
        f_far = np.asarray(fn(far), dtype=np.float64)
    bound = float(np.max(np.abs(f_near)))
    half = np.logspace(0, 3, 64)
    with np.errstate(all="ignore"):
        dead = [np.all(np.asarray(fn(s * half), dtype=np.float64) == 0.0) for s in (-1.0, 1.0)]
    return {
        "saturating": bool(np.all(np.isfinite(f_far))
                           and np.max(np.abs(f_far)) <= 2 * bound + 1e-12),
        "nonnegative": bool(np.min(f_near) >= 0.0 and np.min(f_far) >= 0.0),
        "relu_family": bool(any(dead)),
    }


def _torch_numpy_twin(fn: Callable[..., Any]) -> tuple[Callable, Callable, Callable] | None:
    """(fn, deriv, deriv2) evaluating ``fn`` in float64 torch with autograd, or None."""

    def value(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        with torch.no_grad():
            out = fn(t)
        return out.detach().cpu().numpy().astype(np.float64, copy=False)

    def derivs(x: np.ndarray, order: int) -> np.ndarray:
        t = torch.from_numpy(np.array(x, dtype=np.float64)).requires_grad_(True)
        with torch.enable_grad():
            out = fn(t)
            (g,) = torch.autograd.grad(out.sum(), t, create_graph=order > 1)
            if order > 1:
                if not g.requires_grad:
                    return np.zeros_like(np.asarray(x, dtype=np.float64))
                (g,) = torch.autograd.grad(g.sum(), t, allow_unused=True)
                if g is None:
                    return np.zeros_like(np.asarray(x, dtype=np.float64))
        return g.detach().cpu().numpy()

    if isinstance(fn, np.ufunc) or str(getattr(fn, "__module__", "")).startswith("numpy"):
        return None  # a numpy function: evaluate it on arrays directly
    probe = np.linspace(-3.0, 3.0, 7)
    try:
        with warnings.catch_warnings():
            # numpy code handed a tensor converts it through __array_wrap__: treat as numpy
            warnings.filterwarnings("error", message=".*__array_wrap__.*")
            out = fn(torch.from_numpy(probe))
    except Exception:  # noqa: BLE001 - not torch-callable: the numpy path decides
        return None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != probe.shape:
        return None
    try:
        derivs(probe, 2)
    except Exception:  # noqa: BLE001 - e.g. no autograd support: finite differences instead
        return value, None, None
    return value, lambda x: derivs(x, 1), lambda x: derivs(x, 2)


def _from_callable(fn: Callable[..., Any], name: str | None,
                   kinks: tuple[float, ...]) -> ActivationSpec:
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    torch_fn: Callable[..., Any] | None = fn
    if isinstance(fn, nn.Module):
        torch_fn = copy.deepcopy(fn).double()  # float64 twin; never touches the user's module
    twin = _torch_numpy_twin(torch_fn)
    if twin is None:
        torch_fn = None
        value, d1, d2 = fn, None, None
    else:
        value, d1, d2 = twin
        torch_fn = fn
    act = from_callable(value, name=label, deriv=d1, deriv2=d2, kinks=kinks)
    flags = _probe_flags(act.fn)
    act = Activation(act.name, act.fn, act.deriv, act.deriv2, kinks=act.kinks,
                     exact_derivatives=twin is not None and twin[1] is not None, **flags)
    return _spec(act, torch_fn)


def resolve_activation(act: Any, **params: Any) -> ActivationSpec:
    """Resolve a name, module, torch function or callable to an :class:`ActivationSpec`.

    Args:
        act: a registered name or alias (``"relu"``, ``"gelu_tanh"``, ``"swish"``); an
            ``nn.Module`` instance (its parameters are read; a per-channel ``nn.PReLU`` is
            summarized by the mean of its slopes, which is its init until trained); a torch
            function (``F.gelu``);
            any elementwise callable (torch or numpy); an ``ActivationSpec`` (returned as is).
        **params: parameters of a named activation or torch function (``negative_slope=0.2``,
            ``approximate="tanh"``); for a custom callable only ``name=`` and ``kinks=``
            (points where it is not smooth, so integrals are split there).

    Returns:
        The :class:`ActivationSpec`.

    Raises:
        ValueError: unknown name (lists the known ones) or parameters that do not apply.
        TypeError: ``act`` is neither a name nor callable, or not elementwise.

    Example:
        >>> resolve_activation(nn.LeakyReLU(0.2)).params
        {'negative_slope': 0.2}
    """
    if isinstance(act, ActivationSpec):
        if params:
            raise ValueError(f"resolve_activation: parameters {sorted(params)} given with a "
                             "resolved ActivationSpec; resolve the name with them instead.")
        return act
    if isinstance(act, Activation):
        return _spec(act, _TORCH_BUILDERS[act.name](**act.params)
                     if act.name in _TORCH_BUILDERS and act.exact_derivatives else None)
    if isinstance(act, str):
        return _from_name(act, params)
    if isinstance(act, nn.Module):
        entry = _entry_for_type(type(act))
        if entry is not None and (entry.owner != _BUILTIN_OWNER or _reads(entry, act)):
            if params:
                raise ValueError(f"resolve_activation: parameters {sorted(params)} given with "
                                 f"module {act!r}; they are read from the module or its "
                                 f"registration.")
            return _from_module(act, entry)
    elif callable(act):
        name = _torch_function_name(act)
        if name is not None:
            return _from_name(name, params)
    if not callable(act):
        raise TypeError(
            f"resolve_activation: expected an activation name, nn.Module or callable, got "
            f"{type(act).__name__} ({act!r}). Known names: {', '.join(known_activations())}."
        )
    extra = sorted(set(params) - {"name", "kinks"})
    if extra:
        raise ValueError(f"resolve_activation: parameters {extra} do not apply to the custom "
                         f"callable {act!r}; only name= and kinks= do.")
    return _from_callable(act, params.get("name"), tuple(params.get("kinks", ())))


def _reads(entry: _Entry, module: nn.Module) -> bool:
    return entry.read is not None and not (entry.exact and type(module) is not entry.target)


# ----------------------------------------------------------------------------- derived facts
#: A unit is saturated where the activation's slope is below this fraction of its largest slope.
SATURATION_SLOPE = 0.1
#: z grid on which ``phi(z) - phi(-z) = c z`` and homogeneity are checked (float64)
_ODD_GRID = np.concatenate([-np.geomspace(8.0, 1e-3, 60), np.geomspace(1e-3, 8.0, 60)])
_ODD_TOL = 1e-9


def variance_gain(activation: Any) -> float:
    """``1 / sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)``, by the theory's kink-aware quadrature.

    The one computation behind :func:`initwise.gain` (``mode="variance"``) and
    :attr:`ActivationFacts.gain`.

    Args:
        activation: anything :func:`resolve_activation` accepts.

    Returns:
        The gain (float).

    Raises:
        ValueError: unresolvable, or the second moment is not finite and positive.

    Example:
        >>> round(variance_gain("relu"), 12)
        1.414213562373
    """
    spec = resolve_activation(activation)
    m2 = float(second_moment(spec.np_activation, 1.0))
    if not (m2 > 0 and math.isfinite(m2)):
        raise ValueError(
            f"gain: activation {spec.name!r} has E[phi(z)^2] = {m2}; a variance gain needs a "
            "finite, positive second moment."
        )
    return 1.0 / math.sqrt(m2)


def _sat_threshold(act: Activation) -> float | None:
    """Smallest ``z > 0`` beyond which ``|phi'(z)| < SATURATION_SLOPE * max |phi'|`` on [0, 20].

    The first grid point (step 0.005) below the bound brackets the crossing, which bisection
    on the exact derivative then locates to float precision (a declared kink in the bracket,
    where ``phi'`` jumps, is returned exactly).
    """
    z = np.linspace(0.0, 20.0, 4001)
    with np.errstate(all="ignore"):
        d = np.abs(np.asarray(act.deriv(z), dtype=np.float64))
    if not np.isfinite(d).all():
        return None
    peak = float(d.max())
    if peak <= 0:
        return None
    bound = SATURATION_SLOPE * peak
    below = np.nonzero((d < bound) & (z > 0))[0]
    if not below.size:
        return None
    hi = float(z[below[0]])
    lo = float(z[below[0] - 1])
    for k in act.kinks:
        if lo < k <= hi:
            left = abs(float(act.deriv(np.array([k - 1e-9]))[0]))
            right = abs(float(act.deriv(np.array([k + 1e-9]))[0]))
            if left >= bound > right:
                return float(k)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if abs(float(act.deriv(np.array([mid]))[0])) < bound:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _odd_slope(fn: Callable[[np.ndarray], np.ndarray]) -> float | None:
    """``c > 0`` with ``phi(z) - phi(-z) = c z`` on ``[-8, 8]`` (relative tolerance 1e-9)."""
    try:
        with np.errstate(all="ignore"):
            ratio = (np.asarray(fn(_ODD_GRID), dtype=np.float64)
                     - np.asarray(fn(-_ODD_GRID), dtype=np.float64)) / _ODD_GRID
    except (TypeError, ValueError, ArithmeticError):
        return None
    if ratio.shape != _ODD_GRID.shape or not np.isfinite(ratio).all():
        return None
    c = float(np.median(ratio))
    if c <= 1e-6 or float(np.abs(ratio - c).max()) > _ODD_TOL * c:
        return None
    return round(c, 12)


def _homogeneous(fn: Callable[[np.ndarray], np.ndarray]) -> bool:
    """``phi(a z) = a phi(z)`` for ``a`` in (0.5, 3) on ``[-8, 8]`` (relative tolerance 1e-9)."""
    try:
        with np.errstate(all="ignore"):
            base = np.asarray(fn(_ODD_GRID), dtype=np.float64)
            ok = all(np.allclose(np.asarray(fn(a * _ODD_GRID), dtype=np.float64), a * base,
                                 rtol=1e-9, atol=1e-12) for a in (0.5, 3.0))
    except (TypeError, ValueError, ArithmeticError):
        return False
    return bool(ok and np.isfinite(base).all())


@dataclass(frozen=True)
class ActivationFacts:
    """Everything initwise derives from an activation, computed in one place.

    Attributes:
        name: canonical or registered name.
        spec: the :class:`ActivationSpec`.
        relu_family: units can die (exactly 0 on a half-line).
        saturating: bounded output; units can saturate.
        nonnegative: output >= 0.
        homogeneous: positively homogeneous, ``phi(a z) = a phi(z)`` for ``a > 0``.
        sat_threshold: for a saturating activation, ``|z|`` beyond which
            ``phi'(z) < SATURATION_SLOPE * max phi'`` (tanh ``atanh(sqrt 0.9)``, sigmoid
            ``2 acosh(sqrt 10)``, softsign ``sqrt(10) - 1``, hardtanh 1, hardsigmoid 3);
            ``None`` otherwise. These five are the doctor's former table, to 1e-15. What moves
            against the two former computations (first grid point, step 0.005): the doctor's
            fallback for other saturating activations (``relu6`` 6.005 -> 6, ``sin`` 1.475 ->
            1.4706, ``erf`` 1.52 -> 1.5174, user callables by less than 0.005) and every value
            of calibration's (tanh 1.82 -> 1.8184, sigmoid 3.64 -> 3.6369, softsign 2.165 ->
            2.1623, hardtanh 1.005 -> 1, hardsigmoid 3.005 -> 3, relu6 6.005 -> 6).
        gain: the variance gain, exactly ``initwise.gain(x)``; ``None`` without a finite one.
        odd_slope: ``c`` with ``phi(z) - phi(-z) = c z`` (ReLU 1, ``LeakyReLU(a)`` ``1 + a``,
            GELU, SiLU, softplus, hard-swish 1), else ``None``.
        torch_fn: a torch callable applying it, or ``None`` (numpy-only callable).
    """

    name: str
    spec: ActivationSpec = field(repr=False)
    relu_family: bool
    saturating: bool
    nonnegative: bool
    homogeneous: bool
    sat_threshold: float | None
    gain: float | None
    odd_slope: float | None
    torch_fn: Callable[..., Any] | None = field(default=None, repr=False)


def _facts(spec: ActivationSpec) -> ActivationFacts:
    try:
        g: float | None = variance_gain(spec)
    except ValueError:
        g = None
    act = spec.np_activation
    return ActivationFacts(
        name=spec.name, spec=spec, relu_family=bool(spec.relu_family),
        saturating=bool(spec.saturating), nonnegative=bool(spec.nonnegative),
        homogeneous=bool(act.homogeneous) or _homogeneous(spec.np_fn),
        sat_threshold=_sat_threshold(act) if spec.saturating else None, gain=g,
        odd_slope=_odd_slope(spec.np_fn), torch_fn=spec.torch_fn,
    )


#: facts by (name, params) of named activations; cleared whenever the registry changes
_FACTS: dict[tuple[Any, ...], ActivationFacts] = {}
_FACTS_MAX = 1024


def _cache_key(x: Any, spec: ActivationSpec) -> tuple[Any, ...] | None:
    """A key for activations defined by name and parameters (names, torch functions, modules
    read by name, parameter-free instances of registered classes); ``None``: not cached."""
    if isinstance(x, str) or (callable(x) and not isinstance(x, nn.Module)
                              and _torch_function_name(x) is not None):
        return ("name", spec.name, tuple(sorted(spec.params.items())))
    if isinstance(x, nn.Module):
        entry = _entry_for_type(type(x))
        if entry is not None and _reads(entry, x):
            return ("name", spec.name, tuple(sorted(spec.params.items())))
        if entry is not None and not any(True for _ in x.parameters()):
            return ("module", type(x), repr(x))
    return None


def activation_facts(x: Any) -> ActivationFacts | None:
    """The facts of an activation: name, flags, saturation threshold, gain, odd slope.

    Args:
        x: a name, an activation module instance, a torch function, an elementwise callable
            or an :class:`ActivationSpec`; ``None`` gives ``None``.

    Returns:
        The :class:`ActivationFacts` (the numbers cached for named activations and their
        parameters; ``spec`` and ``torch_fn`` are always ``x``'s own: a module is its own
        ``torch_fn``), or ``None`` when ``x`` cannot be resolved.

    Example:
        >>> f = activation_facts("tanh")
        >>> f.saturating, round(f.sat_threshold, 12), f.odd_slope
        (True, 1.818446459232, None)
        >>> activation_facts(nn.LeakyReLU(0.2)).odd_slope
        1.2
    """
    if x is None:
        return None
    try:
        spec = resolve_activation(x)
    except (ValueError, TypeError):
        return None
    key = _cache_key(x, spec)
    if key is None:
        return _facts(spec)
    facts = _FACTS.get(key)
    if facts is None:
        if len(_FACTS) >= _FACTS_MAX:
            _FACTS.clear()
        facts = _FACTS[key] = _facts(spec)
    if facts.spec is not spec:  # this input's own spec and torch callable (the module itself)
        facts = replace(facts, spec=spec, torch_fn=spec.torch_fn)
    return facts
