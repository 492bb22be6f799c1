"""The correlation map of two inputs through a random layer, and its slope.

With ``(u1, u2)`` centred Gaussian, variance ``q`` each and correlation ``c``, the next layer's
correlation is ``(sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / V(q)`` (Poole et al. 2016,
arXiv:1606.05340, eq. (5)); its slope ``sigma_w^2 q E[phi'(u1) phi'(u2)] / V(q)`` is ``chi_1`` at
``c = 1, q = q*`` and Schoenholz et al.'s ``chi_c`` at the chaotic fixed point ``c* < 1``. The
2-D expectations use the Cholesky-rotated rules of :mod:`initwise.theory.quadrature`, split at
the activation's kinks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initwise.theory._common import GH_MAX_Q, check_sigmas
from initwise.theory.activations import Activation, as_activation
from initwise.theory.maps import fixed_point, q_map
from initwise.theory.quadrature import bivariate_expect

__all__ = ["c_map", "c_map_derivative"]


def _resolve_q(act: Activation, q: float | None, sigma_w: float, sigma_b: float,
               where: str) -> tuple[float, float]:
    """(q, sigma_b) to evaluate at: q* when q is None (homogeneous q* = inf -> limit map)."""
    if q is not None:
        return float(q), sigma_b
    fp = fixed_point(act, sigma_w, sigma_b)
    if math.isfinite(fp.q_star):
        return fp.q_star, sigma_b
    if act.homogeneous:
        return 1.0, 0.0  # q -> inf: sigma_b^2 / q -> 0 and the map is scale free
    raise ValueError(
        f"initwise.theory.{where}: no finite fixed point ({fp.message}); pass q explicitly."
    )


def _pair_expect(act: Activation, fn: Any, c: Any, q: float) -> np.ndarray:
    hermite = act.smooth and q <= GH_MAX_Q
    return bivariate_expect(fn, fn, q, q, c, act.kinks, act.kinks, hermite=hermite)


def c_map(activation: Any, c: Any, q: float | None = None, sigma_w: float | None = None,
          sigma_b: float = 0.0) -> Any:
    """The correlation map ``c -> (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / V(q)``.

    ``(u1, u2)`` are centred Gaussian with variance ``q`` each and correlation ``c``; the
    expectation uses Cholesky-rotated quadrature split at the kinks, and ``c = 1`` maps to 1
    exactly.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        c: correlation(s) in ``[-1, 1]`` (array ok).
        q: the two inputs' variance. Default: ``q*`` (for the ReLU family without a finite
            ``q*``, the scale-free ``q -> inf`` map).
        sigma_w: weight std (required).
        sigma_b: bias std. Default: 0.

    Returns:
        Next layer's correlation(s), shaped like ``c``.

    Raises:
        ValueError: ``sigma_w`` missing, ``c`` outside ``[-1, 1]``.

    Example:
        >>> round(float(c_map("relu", 0.0, q=1.0, sigma_w=math.sqrt(2.0))), 12)  # 1 / pi
        0.318309886184

    References:
        Poole et al. 2016, arXiv:1606.05340, eq. (5); Cho & Saul 2009 (ReLU closed form).
    """
    act, ca, q, sb = _c_setup("c_map", activation, c, q, sigma_w, sigma_b)
    num = sigma_w**2 * _pair_expect(act, act.fn, ca, q) + sb**2
    den = float(q_map(act, q, sigma_w, sb))
    out = np.where(ca == 1.0, 1.0, num / den)
    return float(out) if np.ndim(c) == 0 else out


def c_map_derivative(activation: Any, c: Any, q: float | None = None,
                     sigma_w: float | None = None, sigma_b: float = 0.0) -> Any:
    """Slope of the correlation map, ``sigma_w^2 q E[phi'(u1) phi'(u2)] / V(q)``.

    At ``c = 1`` and ``q = q*`` it equals ``chi_1``; at the chaotic phase's fixed point ``c* < 1``
    it is Schoenholz et al.'s ``chi_c``. Same arguments as :func:`c_map`.

    Returns:
        The slope(s), shaped like ``c``.

    References:
        Schoenholz et al. 2017, arXiv:1611.01232, eq. (9).
    """
    act, ca, q, sb = _c_setup("c_map_derivative", activation, c, q, sigma_w, sigma_b)
    num = sigma_w**2 * q * _pair_expect(act, act.deriv, ca, q)
    out = num / float(q_map(act, q, sigma_w, sb))
    return float(out) if np.ndim(c) == 0 else out


def _c_setup(where: str, activation: Any, c: Any, q: float | None, sigma_w: float | None,
             sigma_b: float) -> tuple[Activation, np.ndarray, float, float]:
    if sigma_w is None:
        raise ValueError(f"initwise.theory.{where}: sigma_w is required (the weight std).")
    check_sigmas(where, sigma_w, sigma_b)
    ca = np.asarray(c, dtype=np.float64)
    if np.any(np.abs(ca) > 1.0) or not np.all(np.isfinite(ca)):
        raise ValueError(f"initwise.theory.{where}: correlations must lie in [-1, 1], got {c!r}.")
    act = as_activation(activation)
    qv, sb = _resolve_q(act, q, sigma_w, sigma_b, where)
    if not (math.isfinite(qv) and qv >= 0):
        raise ValueError(f"initwise.theory.{where}: q must be finite and >= 0, got {q!r}.")
    return act, ca, qv, sb
