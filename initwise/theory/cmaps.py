"""C-map slope and curvature at c = 1, for DKS / TAT users.

Deep Kernel Shaping (Martens et al. 2021, arXiv:2110.01765) and Tailored Activation
Transformations (Zhang et al. 2022, arXiv:2203.08120) describe a layer by its "C map": the
output correlation as a function of the input correlation, for inputs of variance ``q`` (1 by
default) and a layer normalized so that ``q`` is preserved (``V(q) = q``). With
``u ~ N(0, q)``, the local C map ``C(c)`` of the normalized layer has

    C(1) = 1,
    C'(1) = sigma_w^2 q E[phi'(u)^2] / V(q),
    C''(1) = sigma_w^2 q^2 E[phi''(u)^2] / V(q),

(the Gaussian identities ``d/dc E[phi(u1) phi(u2)] = q E[phi'(u1) phi'(u2)]``, applied twice).
DKS bounds ``C'(1)`` of the whole network (the slope grows like ``C'(1)^L``), TAT bounds
``C''(1)`` (or ``C(0)`` for leaky ReLU, whose curvature is infinite). For a ReLU-family
activation ``phi'`` jumps, ``phi''`` holds a Dirac delta and ``C''(1)`` is ``inf`` -- exactly, not
a finite-difference artefact.
"""

from __future__ import annotations

import math
from typing import Any

from initwise.theory._common import check_sigmas, expect
from initwise.theory.activations import Activation, as_activation
from initwise.theory.maps import second_moment

__all__ = ["c_map_curvature", "c_map_slope", "normalizing_sigma_w"]


def normalizing_sigma_w(activation: Any, *, q: float = 1.0, sigma_b: float = 0.0) -> float:
    """The ``sigma_w`` that makes ``q`` a fixed point: ``sigma_w^2 E[phi^2] + sigma_b^2 = q``.

    At ``q = 1, sigma_b = 0`` this is the variance gain of :func:`initwise.gain`.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        q: the preserved variance. Default: 1.
        sigma_b: bias std (needs ``sigma_b^2 < q``). Default: 0.

    Returns:
        ``sigma_w``.

    Raises:
        ValueError: ``sigma_b^2 >= q`` or a zero second moment.
    """
    check_sigmas("normalizing_sigma_w", 1.0, sigma_b)
    m2 = float(second_moment(activation, q))
    if not (q > sigma_b**2 and m2 > 0):
        raise ValueError(f"initwise.theory: cannot normalize: need sigma_b^2 < q and "
                         f"E[phi^2] > 0, got q={q}, sigma_b={sigma_b}, E[phi^2]={m2}.")
    return math.sqrt((q - sigma_b**2) / m2)


def _setup(activation: Any, q: float, sigma_w: float | None,
           sigma_b: float) -> tuple[Activation, float, float]:
    act = as_activation(activation)
    if not (math.isfinite(q) and q > 0):
        raise ValueError(f"initwise.theory: q must be finite and > 0, got {q!r}.")
    sw = normalizing_sigma_w(act, q=q, sigma_b=sigma_b) if sigma_w is None else float(sigma_w)
    check_sigmas("c_map_slope", sw, sigma_b)
    v = sw**2 * float(second_moment(act, q)) + sigma_b**2
    return act, sw, v


def c_map_slope(activation: Any, *, q: float = 1.0, sigma_w: float | None = None,
                sigma_b: float = 0.0) -> float:
    """``C'(1)`` of the (normalized) layer's C map.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        q: input variance. Default: 1.
        sigma_w: weight std. Default: the one that preserves ``q``
            (:func:`normalizing_sigma_w`), i.e. the normalized activation of DKS.
        sigma_b: bias std. Default: 0.

    Returns:
        ``C'(1)`` (>= 1 for a normalized layer; 1 only for a linear one).

    Example:
        >>> round(c_map_slope("relu"), 12)
        1.0
        >>> round(c_map_slope("tanh"), 6)
        1.177807

    References:
        Martens et al. 2021, arXiv:2110.01765, Sec. 4; Zhang et al. 2022, arXiv:2203.08120.
    """
    act, sw, v = _setup(activation, q, sigma_w, sigma_b)
    return sw**2 * q * float(expect(act, lambda u: act.deriv(u) ** 2, q)) / v


def c_map_curvature(activation: Any, *, q: float = 1.0, sigma_w: float | None = None,
                    sigma_b: float = 0.0) -> float:
    """``C''(1)`` of the (normalized) layer's C map (``inf`` where ``phi'`` jumps).

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        q: input variance. Default: 1.
        sigma_w: weight std. Default: the one that preserves ``q``.
        sigma_b: bias std. Default: 0.

    Returns:
        ``C''(1)``: 0 for a linear layer, ``inf`` for ReLU, leaky ReLU, hard-tanh...

    Raises:
        ValueError: the activation has no second derivative (a custom callable without one).

    References:
        Martens et al. 2021, arXiv:2110.01765; Zhang et al. 2022, arXiv:2203.08120, Sec. 4.
    """
    act, sw, v = _setup(activation, q, sigma_w, sigma_b)
    if act.deriv_jumps:
        return math.inf
    if act.deriv2 is None:
        raise ValueError(f"c_map_curvature: activation {act.name!r} has no second derivative; "
                         "pass deriv2= to initwise.theory.from_callable.")
    return sw**2 * q * q * float(expect(act, lambda u: act.deriv2(u) ** 2, q)) / v
