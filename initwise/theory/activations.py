"""Numpy activation registry for the theory engine (float64, no torch).

Every activation is an :class:`Activation`: the function, its first and second derivatives (exact
almost everywhere; at a kink the derivative is the one-sided value, which is all a Gaussian integral
ever sees), and the list of points where the function or its derivative is not smooth (``kinks``).
The quadrature rules split their integrals at those points, so kinked activations (ReLU, hard-tanh,
leaky ReLU, ReLU6, hard-swish...) are integrated exactly, never blurred by finite differences.

Names are matched case-insensitively, ignoring ``_`` and ``-`` (``"LeakyReLU"``, ``"leaky_relu"``
and ``"leaky-relu"`` are one name). Parametrized activations take their torch keyword names
(``negative_slope``, ``alpha``, ``approximate``, ``beta``, ``threshold``, ``min_val``/``max_val``)
and their torch defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initwise.theory._functions import (
    SELU_ALPHA,
    SELU_SCALE,
    clip,
    elu,
    gelu_tanh,
    hardsigmoid,
    hardswish,
    mish,
    relu_like,
    smooth,
    softplus_torch,
    softsign,
)

__all__ = [
    "Activation",
    "as_activation",
    "from_callable",
    "get_activation",
    "known_activations",
    "register_activation",
]

Array = np.ndarray
Fn = Callable[[Array], Array]



@dataclass(frozen=True)
class Activation:
    """A float64 numpy activation with exact derivatives and declared kinks.

    Attributes:
        name: canonical name (``"relu"``) or a user label.
        fn: the activation, elementwise on float64 arrays.
        deriv: first derivative (exact almost everywhere).
        deriv2: second derivative (a.e.), ``None`` when unknown.
        kinks: points where ``fn`` or one of its first two derivatives is not smooth; integrals
            are split there.
        deriv_jumps: True when ``deriv`` is discontinuous (then ``phi''`` contains a Dirac delta
            and the C-map curvature at c=1 is infinite).
        homogeneous: positively homogeneous of degree 1 (``phi(a x) = a phi(x)`` for a > 0):
            identity and the ReLU/leaky-ReLU family. The q-map is then linear in q.
        relu_family: zero on a half-line (units can die).
        saturating: bounded output.
        nonnegative: output >= 0 everywhere.
        exact_derivatives: False when derivatives come from finite differences (user callables).
        params: the parameters used to build it.
    """

    name: str
    fn: Fn
    deriv: Fn
    deriv2: Fn | None = None
    kinks: tuple[float, ...] = ()
    deriv_jumps: bool = False
    homogeneous: bool = False
    relu_family: bool = False
    saturating: bool = False
    nonnegative: bool = False
    exact_derivatives: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: Array) -> Array:
        """Evaluate the activation on ``x`` (converted to float64)."""
        return self.fn(np.asarray(x, dtype=np.float64))

    @property
    def smooth(self) -> bool:
        """True when the activation has no kinks (Gauss-Hermite applies directly)."""
        return not self.kinks


# ----------------------------------------------------------------------------- the registry
Factory = Callable[..., Activation]
_REGISTRY: dict[str, tuple[Factory, dict[str, Any]]] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def register_activation(
    name: str,
    factory: Factory,
    *,
    defaults: dict[str, Any] | None = None,
    aliases: tuple[str, ...] = (),
    overwrite: bool = False,
) -> None:
    """Register a named activation for the whole library.

    Args:
        name: canonical name.
        factory: ``factory(**params) -> Activation``.
        defaults: default parameters (the keyword names ``factory`` accepts). Default: none.
        aliases: other names that resolve to this one. Default: none.
        overwrite: replace an existing registration. Default: False.

    Raises:
        ValueError: if the name or an alias is taken and ``overwrite`` is False.
    """
    keys = [_key(name), *(_key(a) for a in aliases)]
    taken = [k for k in keys if k in _ALIASES and _ALIASES[k] != name]
    if (taken or name in _REGISTRY) and not overwrite:
        raise ValueError(
            f"initwise.theory.register_activation: {name!r} (or alias {taken}) is already "
            "registered; pass overwrite=True to replace it."
        )
    _REGISTRY[name] = (factory, dict(defaults or {}))
    for k in keys:
        _ALIASES[k] = name


def known_activations() -> list[str]:
    """Canonical names of all registered activations, sorted."""
    return sorted(_REGISTRY)


def get_activation(name: str, **params: Any) -> Activation:
    """Build a registered activation by name.

    Args:
        name: canonical name or alias, case-insensitive (``"relu"``, ``"LeakyReLU"``, ``"swish"``).
        **params: the activation's parameters (torch keyword names), e.g. ``negative_slope=0.2``.

    Returns:
        The :class:`Activation`.

    Raises:
        ValueError: unknown name (the message lists the known ones) or unknown parameter.

    Example:
        >>> float(get_activation("leaky_relu", negative_slope=0.2)(np.array(-1.0)))
        -0.2
    """
    canonical = _ALIASES.get(_key(name))
    if canonical is None:
        raise ValueError(
            f"initwise: unknown activation {name!r}. Known: {', '.join(known_activations())}. "
            "Pass a callable (or register it with initwise.theory.register_activation) for others."
        )
    factory, defaults = _REGISTRY[canonical]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(
            f"initwise: activation {canonical!r} got unknown parameter(s) {unknown}; valid: "
            f"{sorted(defaults) or 'none'}."
        )
    merged = {**defaults, **params}
    return factory(**merged)


def _make(name: str, fns: tuple[Fn, Fn, Fn], params: dict[str, Any], **flags: Any) -> Activation:
    return Activation(name, fns[0], fns[1], fns[2], params=params, **flags)


def _check_positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"initwise: activation {name!r} needs {key} > 0, got {value!r}.")


def _leaky(negative_slope: float) -> Activation:
    a = float(negative_slope)
    return _make("leaky_relu", relu_like(a), {"negative_slope": a}, kinks=(0.0,),
                 deriv_jumps=a != 1.0, homogeneous=True, relu_family=a == 0.0,
                 nonnegative=a == 0.0)


def _prelu(init: float) -> Activation:
    a = float(init)
    return _make("prelu", relu_like(a), {"init": a}, kinks=(0.0,), deriv_jumps=a != 1.0,
                 homogeneous=True, relu_family=a == 0.0, nonnegative=a == 0.0)


def _elu_family(name: str, alpha: float) -> Activation:
    _check_positive(name, alpha=alpha)
    fns = elu(float(alpha), celu=name == "celu")
    jump = name == "elu" and alpha != 1.0
    return _make(name, fns, {"alpha": float(alpha)}, kinks=(0.0,), deriv_jumps=jump)


def _gelu(approximate: str) -> Activation:
    if approximate not in ("none", "tanh"):
        raise ValueError(
            f"initwise: gelu approximate={approximate!r}; valid: 'none' (exact), 'tanh'."
        )
    fns = smooth("gelu") if approximate == "none" else gelu_tanh()
    name = "gelu" if approximate == "none" else "gelu_tanh"
    return _make(name, fns, {"approximate": approximate})


def _softplus_act(beta: float, threshold: float) -> Activation:
    _check_positive("softplus", beta=beta, threshold=threshold)
    fns = softplus_torch(float(beta), float(threshold))
    return _make("softplus", fns, {"beta": float(beta), "threshold": float(threshold)},
                 kinks=(threshold / beta,), nonnegative=True)


def _hardtanh(min_val: float, max_val: float) -> Activation:
    if not max_val > min_val:
        raise ValueError(f"initwise: hardtanh needs min_val < max_val, got {min_val}, {max_val}.")
    return _make("hardtanh", clip(float(min_val), float(max_val)),
                 {"min_val": float(min_val), "max_val": float(max_val)},
                 kinks=(float(min_val), float(max_val)), deriv_jumps=True, saturating=True,
                 relu_family=min_val == 0.0, nonnegative=min_val >= 0.0)


def _register_builtins() -> None:
    reg = register_activation
    reg("relu", lambda: _make("relu", relu_like(0.0), {}, kinks=(0.0,), deriv_jumps=True,
                              homogeneous=True, relu_family=True, nonnegative=True))
    reg("leaky_relu", _leaky, defaults={"negative_slope": 0.01}, aliases=("lrelu",))
    reg("prelu", _prelu, defaults={"init": 0.25})
    reg("elu", lambda alpha: _elu_family("elu", alpha), defaults={"alpha": 1.0})
    reg("celu", lambda alpha: _elu_family("celu", alpha), defaults={"alpha": 1.0})
    reg("selu", lambda: Activation(
        "selu", *elu(SELU_ALPHA, SELU_SCALE), kinks=(0.0,), deriv_jumps=True))
    reg("gelu", _gelu, defaults={"approximate": "none"}, aliases=("gelu_exact", "gelu_erf"))
    reg("gelu_tanh", lambda: _gelu("tanh"), aliases=("gelu_approx", "approx_gelu"))
    reg("silu", lambda: _make("silu", smooth("silu"), {}), aliases=("swish", "swish1"))
    reg("mish", lambda: _make("mish", mish(), {}))
    reg("softplus", _softplus_act, defaults={"beta": 1.0, "threshold": 20.0})
    reg("sigmoid", lambda: _make("sigmoid", smooth("sigmoid"), {}, saturating=True,
                                 nonnegative=True), aliases=("logistic",))
    reg("tanh", lambda: _make("tanh", smooth("tanh"), {}, saturating=True))
    reg("hardtanh", _hardtanh, defaults={"min_val": -1.0, "max_val": 1.0})
    reg("relu6", lambda: _make("relu6", clip(0.0, 6.0), {}, kinks=(0.0, 6.0), deriv_jumps=True,
                               relu_family=True, saturating=True, nonnegative=True))
    reg("hardswish", lambda: _make("hardswish", hardswish(), {}, kinks=(-3.0, 3.0),
                                   deriv_jumps=True, relu_family=True))
    reg("hardsigmoid", lambda: _make("hardsigmoid", hardsigmoid(), {}, kinks=(-3.0, 3.0),
                                     deriv_jumps=True, relu_family=True, saturating=True,
                                     nonnegative=True))
    reg("softsign", lambda: _make("softsign", softsign(), {}, kinks=(0.0,), saturating=True))
    reg("logsigmoid", lambda: _make("logsigmoid", smooth("logsigmoid"), {}))
    reg("sin", lambda: _make("sin", smooth("sin"), {}, saturating=True), aliases=("sine",))
    reg("erf", lambda: _make("erf", smooth("erf"), {}, saturating=True))
    reg("identity", lambda: _make("identity", smooth("identity"), {}, homogeneous=True),
        aliases=("linear", "none"))


_register_builtins()


# ----------------------------------------------------------------------------- user callables
def _finite_difference(fn: Fn) -> Fn:
    """Fourth-order central difference (step ~ eps**(1/5) * max(1, |x|)), error ~1e-11."""

    def d1(x: Array) -> Array:
        h = 1e-3 * np.maximum(1.0, np.abs(x))
        f = [np.asarray(fn(x + k * h), dtype=np.float64) for k in (-2.0, -1.0, 1.0, 2.0)]
        return (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h)

    return d1


def from_callable(
    fn: Fn,
    *,
    name: str | None = None,
    deriv: Fn | None = None,
    deriv2: Fn | None = None,
    kinks: tuple[float, ...] = (),
    **flags: Any,
) -> Activation:
    """Wrap a float64 numpy callable as an :class:`Activation`.

    Args:
        fn: elementwise function accepting and returning float64 arrays.
        name: label. Default: ``fn.__name__``.
        deriv: exact derivative. Default: a fourth-order central difference (absolute error
            about 1e-11 on smooth functions; at a kink it blurs over 2e-3, so declare ``kinks``
            and pass ``deriv`` for kinked functions).
        deriv2: exact second derivative. Default: the difference quotient of ``deriv``.
        kinks: points where ``fn`` is not smooth (integrals are split there). Default: none.
        **flags: :class:`Activation` flags (``relu_family``, ``saturating``...).

    Returns:
        The :class:`Activation`.

    Raises:
        TypeError: ``fn`` is not callable or does not return a float array of the input's shape.
    """
    if not callable(fn):
        raise TypeError(f"initwise.theory: activation must be callable, got {type(fn).__name__}.")
    probe = np.linspace(-3.0, 3.0, 7)
    try:
        out = np.asarray(fn(probe), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise TypeError(
            f"initwise.theory: activation {fn!r} failed on a float64 numpy array ({exc}); it must "
            "be elementwise on numpy arrays (wrap torch code with initwise.resolve_activation)."
        ) from exc
    if out.shape != probe.shape:
        raise TypeError(
            f"initwise.theory: activation {fn!r} returned shape {out.shape} for input shape "
            f"{probe.shape}; it must be elementwise."
        )
    exact = deriv is not None
    d1 = deriv if deriv is not None else _finite_difference(fn)
    d2 = deriv2 if deriv2 is not None else _finite_difference(d1)
    label = name or getattr(fn, "__name__", "custom")
    return Activation(label, fn, d1, d2, kinks=tuple(float(k) for k in kinks),
                      exact_derivatives=exact, **flags)


def as_activation(activation: Any, **params: Any) -> Activation:
    """Coerce a name, an :class:`Activation`, a resolved torch spec, or a numpy callable.

    Objects exposing an ``np_activation`` attribute (``initwise.activations.ActivationSpec``) are
    unwrapped, so torch-side specs pass through without importing torch here.

    Args:
        activation: what to coerce.
        **params: parameters for a named activation.

    Returns:
        The :class:`Activation`.

    Raises:
        ValueError: unknown name or parameters given with a non-name.
        TypeError: not a name or callable.
    """
    if isinstance(activation, str):
        return get_activation(activation, **params)
    if params:
        raise ValueError(
            f"initwise.theory: parameters {sorted(params)} apply only to a named activation, "
            f"not to {activation!r}."
        )
    if isinstance(activation, Activation):
        return activation
    inner = getattr(activation, "np_activation", None)
    if isinstance(inner, Activation):
        return inner
    return from_callable(activation)
