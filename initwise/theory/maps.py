"""Mean-field maps of a deep random network: length (q) map, fixed point, chi_1, phase, C map.

Setting (Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232): a fully
connected network ``h^{l+1} = W^{l+1} phi(h^l) + b^{l+1}`` with ``W_ij ~ N(0, sigma_w^2 / N)``
and ``b_i ~ N(0, sigma_b^2)``, in the infinite-width limit. With ``z, z1, z2`` independent
standard normals:

* length map ``V(q) = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2`` (``q^{l+1} = V(q^l)``);
* its slope ``V'(q) = sigma_w^2 E[phi'(u)^2 + phi(u) phi''(u)]``, ``u = sqrt(q) z`` (Stein's
  lemma; at a kink ``k`` where ``phi'`` jumps by ``J`` the distributional ``phi''`` adds
  ``phi(k) J p_q(k)``);
* ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]``, the mean squared singular value of one layer's
  Jacobian at the fixed point: < 1 ordered, > 1 chaotic, = 1 critical;
* correlation map (in :mod:`initwise.theory.correlation`)
  ``c^{l+1} = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / V(q)`` with
  ``u1 = sqrt(q) z1``, ``u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)``.

All expectations use :mod:`initwise.theory.quadrature` (kink-aware, float64, ~1e-12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.theory._common import check_sigmas, expect, trusts_hermite
from initwise.theory.activations import Activation, as_activation
from initwise.theory.quadrature import feature_breaks, normal_expect

__all__ = [
    "FixedPoint",
    "chi_1",
    "derivative_moment",
    "fixed_point",
    "phase",
    "q_map",
    "q_map_slope",
    "second_moment",
]

CRITICAL_TOL = 1e-6
_Q_MAX = 1e30
_Q_MIN = 1e-30


def second_moment(activation: Any, q: Any = 1.0) -> np.ndarray | float:
    """``E[phi(sqrt(q) z)^2]``, ``z ~ N(0, 1)`` (vectorized over ``q``).

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        q: variance(s). Default: 1.

    Returns:
        Float or array shaped like ``q``.

    Example:
        >>> round(float(second_moment("relu", 2.0)), 12)
        1.0
    """
    act = as_activation(activation)
    return expect(act, lambda u: act.fn(u) ** 2, q)


def derivative_moment(activation: Any, q: Any = 1.0) -> np.ndarray | float:
    """``E[phi'(sqrt(q) z)^2]`` (vectorized over ``q``; at ``q = 0`` it is ``phi'(0)^2``).

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        q: variance(s). Default: 1.

    Returns:
        Float or array shaped like ``q``.
    """
    act = as_activation(activation)
    return expect(act, lambda u: act.deriv(u) ** 2, q)


def q_map(activation: Any, q: Any, sigma_w: float, sigma_b: float = 0.0) -> np.ndarray | float:
    """The length map ``V(q) = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2``.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        q: this layer's pre-activation variance(s) (array ok).
        sigma_w: weight std (weights ``N(0, sigma_w^2 / fan_in)``).
        sigma_b: bias std. Default: 0.

    Returns:
        The next layer's pre-activation variance(s).

    Example:
        >>> round(float(q_map("relu", 3.0, sigma_w=math.sqrt(2.0))), 12)
        3.0

    References:
        Poole et al. 2016, arXiv:1606.05340, eq. (3).
    """
    check_sigmas("q_map", sigma_w, sigma_b)
    return sigma_w**2 * second_moment(activation, q) + sigma_b**2


def _kink_jumps(act: Activation) -> list[tuple[float, float]]:
    """(kink, phi(k) * jump of phi' at k) for every kink."""
    out = []
    for k in act.kinks:
        eps = 1e-12 * max(1.0, abs(k))
        jump = float(act.deriv(np.array(k + eps)) - act.deriv(np.array(k - eps)))
        out.append((k, float(act.fn(np.array(k))) * jump))
    return out


def q_map_slope(activation: Any, q: Any, sigma_w: float, sigma_b: float = 0.0) -> Any:
    """``V'(q) = sigma_w^2 E[phi'(u)^2 + phi(u) phi''(u)]``, ``u ~ N(0, q)`` (kinks exact).

    ``sigma_b`` does not enter (accepted for a uniform signature). Activations without a known
    second derivative use the derivative-free form ``E[(z^2 - 1) phi(sqrt(q) z)^2] / (2 q)``.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        q: variance(s) (array ok).
        sigma_w: weight std.
        sigma_b: bias std (unused). Default: 0.

    Returns:
        ``V'(q)``, shaped like ``q``.

    References:
        Schoenholz et al. 2017, arXiv:1611.01232, eq. (5).
    """
    check_sigmas("q_map_slope", sigma_w, sigma_b)
    act = as_activation(activation)
    qa = np.asarray(q, dtype=np.float64)
    if act.deriv2 is None or not act.exact_derivatives:
        stein = _expect_stein(act, qa)
        return sigma_w**2 * stein
    smooth = expect(act, lambda u: act.deriv(u) ** 2 + act.fn(u) * act.deriv2(u), qa)
    for k, weight in _kink_jumps(act):
        if weight == 0.0:  # phi(k) = 0 (ReLU-like kinks at 0): no delta contribution
            continue
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dens = np.where(qa > 0, np.exp(-0.5 * k * k / qa) / np.sqrt(2 * np.pi * qa),
                            np.inf if k == 0 else 0.0)
        smooth = smooth + weight * dens
    return sigma_w**2 * smooth


def _expect_stein(act: Activation, q: np.ndarray) -> np.ndarray:
    qv = np.atleast_1d(q).ravel()
    if np.any(qv <= 0):
        raise ValueError("initwise.theory.q_map_slope: q must be > 0 for an activation "
                         "without a known second derivative.")
    r = np.sqrt(qv)
    breaks = feature_breaks(act.kinks or (0.0,), r)
    val = normal_expect(lambda z, i: (z * z - 1.0) * act.fn(r[i, None] * z) ** 2, qv.size, breaks,
                        hermite=trusts_hermite(act, qv))
    return (val / (2.0 * qv)).reshape(np.shape(q))


@dataclass(frozen=True)
class FixedPoint:
    """The fixed point ``q* = V(q*)`` the length map reaches from ``q0``.

    Attributes:
        q_star: the fixed point; ``inf`` when the lengths grow without bound (no finite fixed point
            above ``q0``: ReLU family at or above criticality), ``0.0`` when they vanish.
        stable: ``|V'(q*)| < 1`` (the network can sit there); False for ``inf``.
        v_prime: ``V'(q*)`` (``nan`` for ``inf``).
        converged: the root finder met its tolerance (always True for closed forms).
        kind: ``"finite"``, ``"zero"``, ``"divergent"`` or ``"neutral"`` (``V(q) = q`` for all q:
            lengths preserved, e.g. ReLU at ``sigma_w = sqrt(2), sigma_b = 0``; then ``q* = q0``).
        q0: the starting variance.
        message: one line explaining the result.
    """

    q_star: float
    stable: bool
    v_prime: float
    converged: bool
    kind: str
    q0: float
    message: str


def _homogeneous_fixed_point(act: Activation, sigma_w: float, sigma_b: float,
                             q0: float) -> FixedPoint:
    a = sigma_w**2 * float(second_moment(act, 1.0))  # V(q) = a q + sigma_b^2
    if a < 1.0 - 1e-12:
        q = sigma_b**2 / (1.0 - a)
        kind = "finite" if q > 0 else "zero"
        return FixedPoint(q, True, a, True, kind, q0,
                          f"V(q) = {a:.6g} q + {sigma_b**2:.6g} is linear (positively homogeneous "
                          f"activation): q* = sigma_b^2 / (1 - {a:.6g}).")
    if abs(a - 1.0) <= 1e-12 and sigma_b == 0.0:
        return FixedPoint(q0, False, 1.0, True, "neutral", q0,
                          "V(q) = q for every q: lengths are preserved exactly (critical).")
    how = "linearly (by sigma_b^2 per layer)" if a <= 1.0 + 1e-12 else f"as {a:.6g}^depth"
    return FixedPoint(math.inf, False, math.nan, True, "divergent", q0,
                      f"no finite fixed point: V(q) = {a:.6g} q + {sigma_b**2:.6g} > q, lengths "
                      f"grow {how}; lower sigma_w below {1 / math.sqrt(a) * sigma_w:.6g}.")


def _bracket(residual: Any, q0: float) -> tuple[float, float] | str:
    """A bracket of the fixed point reached from q0, or "up"/"down" if the scan ran out.

    The doubling (halving) grid is scanned in chunks, stopping at the first sign change, so
    variances far beyond the fixed point are never evaluated.
    """
    f0 = float(residual(np.array([q0]))[0])
    if f0 == 0.0:
        return q0, q0
    ks = np.arange(1, 200)
    if f0 > 0:
        grid = q0 * 2.0 ** ks[q0 * 2.0**ks <= _Q_MAX]
    else:
        grid = q0 * 2.0 ** -ks[q0 * 2.0**-ks >= _Q_MIN]
    for start in range(0, grid.size, 8):
        chunk = grid[start:start + 8]
        res = residual(chunk)
        # a residual within rounding of V(q) (~1e-14 q) has no reliable sign: not a crossing
        sign = res < -1e-14 * chunk if f0 > 0 else res > 1e-14 * chunk
        if np.any(sign):
            i = start + int(np.argmax(sign))
            prev = q0 if i == 0 else float(grid[i - 1])
            return (prev, float(grid[i])) if f0 > 0 else (float(grid[i]), prev)
    return "up" if f0 > 0 else "down"


def fixed_point(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
                q0: float = 1.0) -> FixedPoint:
    """The fixed point of the length map reached by iterating ``V`` from ``q0``.

    ``V`` is nondecreasing for the usual activations, so the iteration moves monotonically from
    ``q0`` towards the nearest root of ``V(q) - q`` in the direction of ``V(q0) - q0``. That root is
    bracketed on a doubling (or halving) grid from ``q0`` up to 1e30 (down to 1e-30) and refined
    with Brent's method, so the search always terminates. Positively homogeneous activations
    (ReLU, leaky ReLU, identity) use the closed form ``V(q) = a q + sigma_b^2``.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        q0: the input's pre-activation variance. Default: 1.

    Returns:
        A :class:`FixedPoint` (``q_star = inf`` when lengths diverge, never a hang).

    Raises:
        ValueError: negative or non-finite sigmas or ``q0``.

    Example:
        >>> fixed_point("relu", sigma_w=2.0, sigma_b=0.1).q_star
        inf
        >>> round(fixed_point("relu", sigma_w=1.0, sigma_b=0.5).q_star, 12)
        0.5

    References:
        Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232.
    """
    from scipy.optimize import brentq  # lazy: it would double `import initwise.theory`

    check_sigmas("fixed_point", sigma_w, sigma_b)
    if not (math.isfinite(q0) and q0 > 0):
        raise ValueError(f"initwise.theory.fixed_point: q0 must be finite and > 0, got {q0!r}.")
    act = as_activation(activation)
    if act.homogeneous:
        return _homogeneous_fixed_point(act, sigma_w, sigma_b, q0)

    def residual(q: np.ndarray) -> np.ndarray:
        moment = expect(act, lambda u: act.fn(u) ** 2, q, on_fail="nan")
        return np.nan_to_num(sigma_w**2 * moment + sigma_b**2 - q, nan=0.0)

    found = _bracket(residual, q0)
    if found == "up":
        return FixedPoint(math.inf, False, math.nan, True, "divergent", q0,
                          f"no finite fixed point below {_Q_MAX:.0e}: V(q) > q, lengths grow "
                          "without bound; lower sigma_w.")
    if found == "down":
        slope = float(q_map_slope(act, 0.0, sigma_w, sigma_b))
        return FixedPoint(0.0, slope < 1.0, slope, True, "zero", q0,
                          "lengths shrink to 0 (V(q) < q down to 1e-30).")
    lo, hi = found
    if hi <= 1e-20 * q0:  # below rounding of V near 0: the lengths vanish
        slope = float(q_map_slope(act, 0.0, sigma_w, sigma_b))
        return FixedPoint(0.0, slope <= 1.0, slope, True, "zero", q0,
                          "lengths shrink to 0 (V(q) < q down to rounding).")
    if lo == hi:
        q_star, ok = lo, True
    else:
        q_star, info = brentq(lambda q: float(residual(np.array([q]))[0]), lo, hi,
                              xtol=1e-300, rtol=1e-15, maxiter=200, full_output=True)
        ok = bool(info.converged)
    slope = float(q_map_slope(act, q_star, sigma_w, sigma_b))
    return FixedPoint(float(q_star), abs(slope) < 1.0, slope, ok, "finite", q0,
                      f"q* = {q_star:.6g}, V'(q*) = {slope:.6g} "
                      f"({'stable' if abs(slope) < 1 else 'unstable'}).")


def chi_1(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
          q_star: float | None = None) -> float:
    """``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]`` at the length map's fixed point.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        q_star: the variance to evaluate at. Default: :func:`fixed_point` from ``q0 = 1``; when
            lengths diverge, the ``q -> inf`` limit ``sigma_w^2 (phi'(+inf)^2 + phi'(-inf)^2) / 2``.

    Returns:
        ``chi_1`` (float): < 1 ordered, > 1 chaotic, 1 critical.

    Example:
        >>> round(chi_1("relu", sigma_w=1.2), 12)
        0.72

    References:
        Poole et al. 2016, arXiv:1606.05340, eq. (7); Schoenholz et al. 2017, arXiv:1611.01232.
    """
    check_sigmas("chi_1", sigma_w, sigma_b)
    act = as_activation(activation)
    q = fixed_point(act, sigma_w, sigma_b).q_star if q_star is None else q_star
    if math.isinf(q):
        if act.homogeneous:
            return sigma_w**2 * float(derivative_moment(act, 1.0))
        ends = act.deriv(np.array([-1e9, 1e9]))
        return float(sigma_w**2 * np.mean(ends**2))
    return float(sigma_w**2 * derivative_moment(act, q))


def phase(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
          tol: float = CRITICAL_TOL) -> str:
    """The phase: ``"ordered"`` (chi_1 < 1), ``"chaotic"`` (> 1) or ``"critical"`` (within tol).

    Use :func:`initwise.theory.critical_point` to see ``V'(q*)`` at a critical point: chi_1 = 1
    on an unstable fixed point is not an edge of chaos a network can sit on.

    Args:
        activation: name, :class:`Activation`, spec or numpy callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        tol: band around 1 called critical. Default: 1e-6.

    Returns:
        The phase name.

    Example:
        >>> phase("tanh", sigma_w=2.0, sigma_b=0.05)
        'chaotic'
    """
    value = chi_1(activation, sigma_w, sigma_b)
    if abs(value - 1.0) <= tol:
        return "critical"
    return "ordered" if value < 1.0 else "chaotic"
