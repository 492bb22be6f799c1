"""Torch bridge: resolve any activation (name, module, torch function, callable) to a numpy twin.

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
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initwise.theory.activations import Activation, from_callable, get_activation

__all__ = ["ActivationSpec", "known_activations", "resolve_activation"]


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


def known_activations() -> list[str]:
    """Canonical names :func:`resolve_activation` accepts (aliases are also accepted)."""
    from initwise.theory.activations import known_activations as names

    return names()


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


def _spec(act: Activation, torch_fn: Callable[..., Any] | None) -> ActivationSpec:
    return ActivationSpec(
        name=act.name, params=dict(act.params), np_fn=act.fn, torch_fn=torch_fn,
        relu_family=act.relu_family, saturating=act.saturating, nonnegative=act.nonnegative,
        np_activation=act,
    )


def _from_name(name: str, params: dict[str, Any]) -> ActivationSpec:
    act = get_activation(name, **params)
    builder = _TORCH_BUILDERS.get(act.name)
    torch_fn = builder(**act.params) if builder is not None else None
    return _spec(act, torch_fn)


def _module_params(module: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """(name, params) for torch's built-in activation modules; None for others."""
    m = module
    if isinstance(m, nn.ReLU6):  # subclass of Hardtanh: test first
        return "relu6", {}
    if isinstance(m, nn.Hardtanh):
        return "hardtanh", {"min_val": float(m.min_val), "max_val": float(m.max_val)}
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu", {"negative_slope": float(m.negative_slope)}
    if isinstance(m, nn.PReLU):
        w = m.weight.detach().to(torch.float64)
        return "prelu", {"init": float(w.mean())} if w.numel() else {}
    if isinstance(m, nn.ELU | nn.CELU):
        return type(m).__name__.lower(), {"alpha": float(m.alpha)}
    if isinstance(m, nn.GELU):
        return "gelu", {"approximate": m.approximate}
    if isinstance(m, nn.Softplus):
        return "softplus", {"beta": float(m.beta), "threshold": float(m.threshold)}
    simple = {nn.ReLU: "relu", nn.SELU: "selu", nn.SiLU: "silu", nn.Mish: "mish",
              nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish",
              nn.Hardsigmoid: "hardsigmoid", nn.Softsign: "softsign",
              nn.LogSigmoid: "logsigmoid", nn.Identity: "identity"}
    for cls, name in simple.items():
        if type(m) is cls:
            return name, {}
    return None


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
        import copy

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
        known = _module_params(act)
        if known is not None:
            if params:
                raise ValueError(f"resolve_activation: parameters {sorted(params)} given with "
                                 f"module {act!r}; they are read from the module.")
            spec = _from_name(*known)
            return ActivationSpec(spec.name, spec.params, spec.np_fn, act, spec.relu_family,
                                  spec.saturating, spec.nonnegative, spec.np_activation)
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


# ---- temporary facts shim (replaced by the activation registry at merge) --------------------
SATURATION_SLOPE = 0.1
_SAT = {"tanh": 1.8184464592320668, "sigmoid": 3.6368929184641337, "hardtanh": 1.0,
        "softsign": 2.1622776601683795, "hardsigmoid": 3.0}


@dataclass(frozen=True)
class ActivationFacts:
    """Interim facts record (see the registry at merge)."""

    name: str
    spec: ActivationSpec = field(repr=False)
    relu_family: bool
    saturating: bool
    nonnegative: bool
    sat_threshold: float | None
    gain: float
    torch_fn: Callable[..., Any] | None = field(default=None, repr=False)


def activation_facts(act: Any) -> ActivationFacts | None:
    """Interim: facts for a name / module / function / callable (None when unresolvable)."""
    from initwise.schemes.gains import gain

    if act is None:
        return None
    try:
        spec = resolve_activation(act)
    except (TypeError, ValueError):
        return None
    thr = _SAT.get(spec.name) if spec.saturating else None
    if spec.saturating and thr is None:
        z = np.linspace(0.0, 20.0, 4001)
        d = np.gradient(np.asarray(spec.np_fn(z), dtype=np.float64), z)
        small = np.nonzero(np.abs(d) < SATURATION_SLOPE * float(np.max(np.abs(d))))[0]
        small = small[z[small] > 0]
        thr = float(z[small[0]]) if small.size else None
    return ActivationFacts(spec.name, spec, bool(spec.relu_family), bool(spec.saturating),
                           bool(spec.nonnegative), thr, float(gain(spec)),
                           spec.torch_fn or (act if callable(act) else None))
