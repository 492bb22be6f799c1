"""Helpers shared by the theory modules: argument checks and the kink-aware 1-D expectation.

A private module of :mod:`initwise.theory` (not part of the public API); its names carry no
underscore because the other theory modules import them. Everything else imports the public
functions built on them (:func:`~initwise.theory.second_moment`, :func:`~initwise.theory.q_map`,
...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initwise.theory.activations import Activation
from initwise.theory.quadrature import feature_breaks, normal_expect

__all__ = ["GH_MAX_Q", "check_sigmas", "expect", "trusts_hermite"]

GH_MAX_Q = 4.0
"""Largest variance ``q`` for which Gauss-Hermite is trusted on a smooth activation."""


def check_sigmas(where: str, sigma_w: float, sigma_b: float) -> None:
    """Refuse a ``sigma_w`` or ``sigma_b`` that is not a finite standard deviation ``>= 0``.

    Args:
        where: the public function's name, for the message (``"q_map"``).
        sigma_w: weight standard deviation.
        sigma_b: bias standard deviation.

    Raises:
        ValueError: naming the function, the argument and its value.

    Example:
        >>> check_sigmas("q_map", 1.0, 0.0)
        >>> check_sigmas("q_map", -1.0, 0.0)
        Traceback (most recent call last):
        ...
        ValueError: initwise.theory.q_map: sigma_w must be a finite standard deviation >= 0, \
got -1.0 (sigma_w, sigma_b are std devs, not variances).
    """
    for key, value in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        if not (isinstance(value, int | float | np.floating) and math.isfinite(value)
                and value >= 0):
            raise ValueError(
                f"initwise.theory.{where}: {key} must be a finite standard deviation >= 0, got "
                f"{value!r} (sigma_w, sigma_b are std devs, not variances)."
            )


def trusts_hermite(act: Activation, q: np.ndarray) -> np.ndarray:
    """Rows where Gauss-Hermite is trusted: smooth activations with ``q <= GH_MAX_Q``.

    A smooth activation changes on the scale 1 in ``u = sqrt(q) z``, i.e. ``1 / sqrt(q)`` in
    ``z``; for ``q > 4`` that is finer than a low-order Gauss-Hermite rule's node spacing and two
    orders can agree on a wrong value, so those rows use the graded composite rule.

    Args:
        act: the activation.
        q: variances.

    Returns:
        A boolean array shaped like ``q``.
    """
    return np.full(q.shape, act.smooth) & (q <= GH_MAX_Q)


def expect(act: Activation, fn: Any, q: Any, on_fail: str = "warn") -> np.ndarray:
    """``E[fn(sqrt(q) z)]``, ``z ~ N(0, 1)``, for an array of ``q``, split at the kinks of ``act``.

    Args:
        act: the activation whose kinks split the integral (``fn`` is built from it).
        fn: a numpy callable of ``u = sqrt(q) z``.
        q: variance(s), finite and ``>= 0``; ``q = 0`` gives the mean of ``fn``'s one-sided
            values at 0.
        on_fail: what the quadrature does when it does not converge (``"warn"`` or ``"nan"``,
            see :func:`~initwise.theory.quadrature.normal_expect`). Default: ``"warn"``.

    Returns:
        An array shaped like ``q``.

    Raises:
        ValueError: if a ``q`` is negative or not finite.

    Example:
        >>> from initwise.theory.activations import as_activation
        >>> relu = as_activation("relu")
        >>> round(float(expect(relu, lambda u: relu.fn(u) ** 2, 2.0)), 12)
        1.0
    """
    qv = np.atleast_1d(np.asarray(q, dtype=np.float64)).ravel()
    if np.any(qv < 0) or not np.all(np.isfinite(qv)):
        raise ValueError(f"initwise.theory: variances q must be finite and >= 0, got {q!r}.")
    r = np.sqrt(qv)
    if np.any(qv == 0.0):  # q -> 0 limit: the mean of fn's one-sided values at 0
        at_zero = 0.5 * float(np.sum(fn(np.array([-1e-300, 1e-300]))))
        out = np.full(qv.shape, at_zero)
        pos = qv > 0
        if np.any(pos):
            out[pos] = expect(act, fn, qv[pos], on_fail)
        return out.reshape(np.shape(q))
    breaks = feature_breaks(act.kinks or (0.0,), r)
    out = normal_expect(lambda z, i: fn(r[i, None] * z), qv.size, breaks,
                        hermite=trusts_hermite(act, qv), on_fail=on_fail)
    return out.reshape(np.shape(q))
