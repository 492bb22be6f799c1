"""Float64 numpy implementations of the built-in activations and their exact derivatives.

Each builder returns ``(fn, deriv, deriv2)``; derivatives are exact almost everywhere (at a kink
the one-sided value, which is all a Gaussian integral sees). Registered in
:mod:`initwise.theory.activations`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

Array = np.ndarray
Fn = Callable[[Array], Array]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_K = 0.044715


def sigmoid(x: Array) -> Array:
    return special.expit(x)


def softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def relu_like(slope: float) -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        return np.where(x > 0, x, slope * x)

    def d1(x: Array) -> Array:
        return np.where(x > 0, 1.0, slope)

    def d2(x: Array) -> Array:
        return np.zeros_like(x)

    return fn, d1, d2


def elu(alpha: float, scale: float = 1.0, celu: bool = False) -> tuple[Fn, Fn, Fn]:
    inner = 1.0 / alpha if celu else 1.0
    outer = alpha

    def fn(x: Array) -> Array:
        neg = outer * np.expm1(np.minimum(x, 0.0) * inner)
        return scale * np.where(x > 0, x, neg)

    def d1(x: Array) -> Array:
        return scale * np.where(x > 0, 1.0, outer * inner * np.exp(np.minimum(x, 0.0) * inner))

    def d2(x: Array) -> Array:
        neg = outer * inner * inner * np.exp(np.minimum(x, 0.0) * inner)
        return scale * np.where(x > 0, 0.0, neg)

    return fn, d1, d2


def gelu_tanh() -> tuple[Fn, Fn, Fn]:
    s, k = _SQRT_2_OVER_PI, _GELU_TANH_K

    def parts(x: Array) -> tuple[Array, Array, Array]:
        t = np.tanh(s * (x + k * x**3))
        return t, s * (1.0 + 3.0 * k * x**2), 6.0 * s * k * x

    def fn(x: Array) -> Array:
        return 0.5 * x * (1.0 + np.tanh(s * (x + k * x**3)))

    def d1(x: Array) -> Array:
        t, g1, _ = parts(x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * g1

    def d2(x: Array) -> Array:
        t, g1, g2 = parts(x)
        return (1.0 - t * t) * (g1 + 0.5 * x * (g2 - 2.0 * t * g1 * g1))

    return fn, d1, d2


def mish() -> tuple[Fn, Fn, Fn]:
    def parts(x: Array) -> tuple[Array, Array]:
        return np.tanh(softplus(x)), sigmoid(x)

    def fn(x: Array) -> Array:
        return x * np.tanh(softplus(x))

    def d1(x: Array) -> Array:
        t, s = parts(x)
        return t + x * (1.0 - t * t) * s

    def d2(x: Array) -> Array:
        t, s = parts(x)
        return (1.0 - t * t) * (2.0 * s + x * s * (1.0 - s - 2.0 * t * s))

    return fn, d1, d2


def softplus_torch(beta: float, threshold: float) -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        bx = beta * x
        return np.where(bx > threshold, x, softplus(np.minimum(bx, threshold)) / beta)

    def d1(x: Array) -> Array:
        bx = beta * x
        return np.where(bx > threshold, 1.0, sigmoid(bx))

    def d2(x: Array) -> Array:
        bx = beta * x
        s = sigmoid(bx)
        return np.where(bx > threshold, 0.0, beta * s * (1.0 - s))

    return fn, d1, d2


def clip(lo: float, hi: float) -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        return np.clip(x, lo, hi)

    def d1(x: Array) -> Array:
        return np.where((x > lo) & (x < hi), 1.0, 0.0)

    def d2(x: Array) -> Array:
        return np.zeros_like(x)

    return fn, d1, d2


def hardswish() -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0

    def d1(x: Array) -> Array:
        return np.where(x <= -3.0, 0.0, np.where(x >= 3.0, 1.0, (2.0 * x + 3.0) / 6.0))

    def d2(x: Array) -> Array:
        return np.where((x > -3.0) & (x < 3.0), 1.0 / 3.0, 0.0)

    return fn, d1, d2


def hardsigmoid() -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        return np.clip(x + 3.0, 0.0, 6.0) / 6.0

    def d1(x: Array) -> Array:
        return np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)

    def d2(x: Array) -> Array:
        return np.zeros_like(x)

    return fn, d1, d2


def softsign() -> tuple[Fn, Fn, Fn]:
    def fn(x: Array) -> Array:
        return x / (1.0 + np.abs(x))

    def d1(x: Array) -> Array:
        return 1.0 / (1.0 + np.abs(x)) ** 2

    def d2(x: Array) -> Array:
        return -2.0 * np.sign(x) / (1.0 + np.abs(x)) ** 3

    return fn, d1, d2


def smooth(name: str) -> tuple[Fn, Fn, Fn]:
    if name == "tanh":
        return (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2,
                lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2))
    if name == "sigmoid":
        return (sigmoid, lambda x: sigmoid(x) * sigmoid(-x),
                lambda x: sigmoid(x) * sigmoid(-x) * (1.0 - 2.0 * sigmoid(x)))
    if name == "logsigmoid":
        return (lambda x: -softplus(-x), lambda x: sigmoid(-x),
                lambda x: -sigmoid(x) * sigmoid(-x))
    if name == "silu":
        return (lambda x: x * sigmoid(x), lambda x: sigmoid(x) * (1.0 + x * sigmoid(-x)),
                lambda x: sigmoid(x) * sigmoid(-x) * (2.0 + x * (1.0 - 2.0 * sigmoid(x))))
    if name == "gelu":
        pdf = special.ndtr, lambda x: np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return (lambda x: x * pdf[0](x), lambda x: pdf[0](x) + x * pdf[1](x),
                lambda x: (2.0 - x * x) * pdf[1](x))
    if name == "sin":
        return np.sin, np.cos, lambda x: -np.sin(x)
    if name == "erf":
        c = 2.0 / math.sqrt(math.pi)
        return special.erf, lambda x: c * np.exp(-x * x), lambda x: -2.0 * c * x * np.exp(-x * x)
    if name == "identity":
        return (lambda x: np.array(x, dtype=np.float64, copy=True), np.ones_like, np.zeros_like)
    raise KeyError(name)
