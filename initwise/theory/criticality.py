"""The edge of chaos: the weight scale with ``chi_1 = 1`` at the fixed point, for any activation.

Instead of nesting two root finders (``sigma_w`` outside, ``q*`` inside), the critical line is
parametrized by the fixed point itself (Poole et al. 2016): at a critical fixed point ``q``,

    chi_1 = 1      =>  sigma_w^2(q) = 1 / E[phi'(sqrt(q) z)^2],
    V(q) = q       =>  sigma_b^2(q) = q - sigma_w^2(q) E[phi(sqrt(q) z)^2].

So for a target ``sigma_b`` we solve the one-dimensional equation ``sigma_b^2(q) = sigma_b^2`` in
``q``: every sign change on a log grid ``q in [1e-10, 1e6]`` is a bracket, refined by
Illinois regula falsi vectorized over all brackets of all targets at once (a 200-point critical
line costs a few vectorized quadratures; see ``benchmarks/theory_speed.py``). Each root is a
candidate critical point; it is reported with ``V'(q*)`` and kept only if the fixed point is
stable (``V'(q*) < 1``):
``chi_1 = 1`` on an unstable fixed point (SiLU at small ``sigma_b``) is not an edge of chaos a
network can sit on, because the lengths run away from that ``q*``.

Positively homogeneous activations (ReLU, leaky ReLU) are handled in closed form: ``chi_1`` does
not depend on ``q``, and a finite critical fixed point exists only at ``sigma_b = 0`` (the single
point ``(0, sqrt(2))`` for ReLU; Hayou et al. 2019, arXiv:1902.06853, Prop. 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.theory._common import expect
from initwise.theory.activations import Activation, as_activation
from initwise.theory.maps import derivative_moment, q_map_slope, second_moment

__all__ = ["CriticalLine", "CriticalPoint", "critical_line", "critical_point", "edge_of_chaos"]

_Q_GRID = np.logspace(-10.0, 6.0, 321)
_ITERATIONS = 60


@dataclass(frozen=True)
class CriticalPoint:
    """A point of the critical line.

    Attributes:
        sigma_w: the critical weight std (``nan`` when none exists).
        sigma_b: the bias std.
        q_star: the fixed point where ``chi_1 = 1``.
        v_prime: ``V'(q*)``: below 1 the fixed point attracts (a usable edge of chaos); 1 means
            marginal (``q* = 0`` for odd activations at ``sigma_b = 0``, or ReLU's neutral map).
        stable: the network can sit there (``V'(q*) < 1``, or marginal and attracting).
        candidates: every ``(sigma_w, q*, V'(q*))`` with ``chi_1 = 1``, stable or not.
    """

    sigma_w: float
    sigma_b: float
    q_star: float
    v_prime: float
    stable: bool
    candidates: tuple[tuple[float, float, float], ...] = ()


@dataclass(frozen=True)
class CriticalLine:
    """The critical line ``sigma_w(sigma_b)`` (arrays aligned with ``sigma_b``; ``nan`` = none).

    Attributes:
        sigma_b: the bias stds asked for.
        sigma_w: the critical weight stds.
        q_star: the fixed points.
        v_prime: ``V'(q*)`` at each point.
    """

    sigma_b: np.ndarray
    sigma_w: np.ndarray
    q_star: np.ndarray
    v_prime: np.ndarray


def _curve(act: Activation, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigma_w^2, sigma_b^2) of the critical point at fixed point q (vectorized)."""
    b = expect(act, lambda u: act.deriv(u) ** 2, q, on_fail="nan")
    a = expect(act, lambda u: act.fn(u) ** 2, q, on_fail="nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        sw2 = 1.0 / b
    return sw2, q - sw2 * a


def _illinois(fun: Any, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray,
              f_hi: np.ndarray, ftol: Any = 1e-11) -> np.ndarray:
    """Vectorized Illinois (modified regula falsi) on brackets [lo, hi]; always terminates.

    ``fun(x, idx)`` evaluates the residuals of brackets ``idx`` at ``x``; a bracket stops when
    its residual is below ``ftol`` or its width below 1e-15 relative, or after 60 steps.
    """
    lo, hi, f_lo, f_hi = (np.array(v, dtype=np.float64) for v in (lo, hi, f_lo, f_hi))
    side = np.zeros(lo.shape, dtype=int)
    best = np.where(np.abs(f_lo) < np.abs(f_hi), lo, hi)
    idx = np.arange(lo.size)
    for _ in range(_ITERATIONS):
        if idx.size == 0:
            break
        a, b, fa, fb = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (a * fb - b * fa) / (fb - fa)
        x = np.where((x > a) & (x < b), x, 0.5 * (a + b))
        fx = fun(x, idx)
        left = np.sign(fx) == np.sign(fa)  # root in [x, b]
        fb = np.where(left & (side[idx] == 1), 0.5 * fb, fb)
        fa = np.where(~left & (side[idx] == -1), 0.5 * fa, fa)
        lo[idx], f_lo[idx] = np.where(left, x, a), np.where(left, fx, fa)
        hi[idx], f_hi[idx] = np.where(left, b, x), np.where(left, fb, fx)
        side[idx] = np.where(left, 1, -1)
        best[idx] = x
        small = np.abs(fx) <= np.broadcast_to(ftol, lo.shape)[idx]
        done = small | (hi[idx] - lo[idx] <= 1e-15 * np.maximum(1.0, np.abs(x)))
        idx = idx[~done]
    return best


def _roots(act: Activation, targets: np.ndarray) -> list[list[float]]:
    """All q with sigma_b^2(q) = target^2, per target (bracketed on the grid, then refined)."""
    _, sb2 = _curve(act, _Q_GRID)
    t2 = targets[:, None] ** 2
    diff = sb2[None, :] - t2
    # below the noise floor the curve is 0 (e.g. hard-tanh is linear for tiny q): no sign there;
    # a crossing is a pair of consecutive non-zero signs that differ (a root may sit on the grid)
    sign = np.where(np.abs(diff) <= 1e-12 * (1.0 + _Q_GRID), 0.0, np.sign(diff))
    sign = np.nan_to_num(sign, nan=0.0)  # unresolvable quadrature (e.g. sin at huge q)
    pairs = []
    for t in range(targets.size):
        nz = np.nonzero(sign[t])[0]
        flips = nz[:-1][sign[t, nz[:-1]] != sign[t, nz[1:]]]
        nxt = nz[1:][sign[t, nz[:-1]] != sign[t, nz[1:]]]
        pairs += [(t, a, b) for a, b in zip(flips, nxt)]
    ti = np.array([p[0] for p in pairs], dtype=int)
    ga = np.array([p[1] for p in pairs], dtype=int)
    gb = np.array([p[2] for p in pairs], dtype=int)
    roots: list[list[float]] = [[] for _ in targets]
    if ti.size == 0:
        return roots

    def fun(logq: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return _curve(act, np.exp(logq))[1] - t2[ti[idx], 0]

    found = _illinois(fun, np.log(_Q_GRID[ga]), np.log(_Q_GRID[gb]), diff[ti, ga], diff[ti, gb],
                      ftol=1e-15 + 1e-13 * t2[ti, 0])
    for t, q in zip(ti, np.exp(found)):
        roots[t].append(float(q))
    return roots


def _zero_root(act: Activation) -> tuple[float, float, float, bool] | None:
    """The q* = 0 critical point at sigma_b = 0 (needs phi(0) = 0), with its stability.

    With one-sided slopes ``phi'(0+-)``, ``chi_1 -> sigma_w^2 (phi'(0+)^2 + phi'(0-)^2) / 2`` as
    ``q -> 0``; ``V'(0) = 1`` there, so the fixed point attracts iff ``V(q) <= q`` just above 0.
    """
    if float(act.fn(np.array(0.0))) != 0.0:
        return None
    ends = act.deriv(np.array([-1e-300, 1e-300]))
    k = float(np.mean(ends**2))
    if k == 0.0:
        return None
    sw2 = 1.0 / k
    qs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    gap = sw2 * np.asarray(second_moment(act, qs)) - qs
    attracting = bool(np.all(gap <= 1e-15) and np.any(gap < 0))
    return math.sqrt(sw2), 0.0, 1.0, attracting


def _points(act: Activation, sigma_b: np.ndarray) -> list[CriticalPoint]:
    if act.homogeneous:
        k = float(derivative_moment(act, 1.0))
        return [CriticalPoint(1.0 / math.sqrt(k), float(b), math.inf if b > 0 else 0.0,
                              math.nan if b > 0 else 1.0, b == 0.0,
                              () if b > 0 else ((1.0 / math.sqrt(k), 0.0, 1.0),))
                if b == 0.0 else CriticalPoint(math.nan, float(b), math.nan, math.nan, False)
                for b in sigma_b]
    roots = _roots(act, sigma_b)
    flat = np.array([q for qs in roots for q in qs])
    sw_flat = 1.0 / np.sqrt(np.asarray(derivative_moment(act, flat))) if flat.size else flat
    vp_flat = sw_flat**2 * np.asarray(q_map_slope(act, flat, 1.0)) if flat.size else flat
    out, i = [], 0
    for b, qs in zip(sigma_b, roots):
        cands = []
        if b == 0.0 and (zero := _zero_root(act)) is not None:
            cands.append(zero)
        for q in qs:
            cands.append((float(sw_flat[i]), q, float(vp_flat[i]), bool(vp_flat[i] < 1.0)))
            i += 1
        good = [c for c in cands if c[3]]
        best = min(good, key=lambda c: c[1]) if good else None
        info = tuple((c[0], c[1], c[2]) for c in cands)
        if best is None:
            out.append(CriticalPoint(math.nan, float(b), math.nan, math.nan, False, info))
        else:
            out.append(CriticalPoint(best[0], float(b), best[1], best[2], True, info))
    return out


def _check_sigma_b(where: str, sigma_b: np.ndarray) -> None:
    if np.any(~np.isfinite(sigma_b)) or np.any(sigma_b < 0):
        raise ValueError(f"initwise.theory.{where}: sigma_b must be finite stds >= 0, got "
                         f"{sigma_b!r}.")


def critical_point(activation: Any, sigma_b: float = 0.0) -> CriticalPoint:
    """The critical point at ``sigma_b`` with ``q*`` and ``V'(q*)``, and all candidates.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_b: bias std. Default: 0.

    Returns:
        A :class:`CriticalPoint` (``sigma_w = nan`` and ``stable = False`` when there is no stable
        critical point; ``candidates`` then lists the unstable ones).

    Example:
        >>> round(critical_point("relu").sigma_w, 12)
        1.414213562373
    """
    sb = np.atleast_1d(np.asarray(sigma_b, dtype=np.float64))
    _check_sigma_b("critical_point", sb)
    return _points(as_activation(activation), sb)[0]


def edge_of_chaos(activation: Any, sigma_b: float = 0.0) -> float:
    """The critical weight std ``sigma_w`` (``chi_1 = 1`` at a stable fixed point) for ``sigma_b``.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_b: bias std. Default: 0.

    Returns:
        ``sigma_w`` (float).

    Raises:
        ValueError: no stable critical point exists for this ``sigma_b`` (the message says why:
            ReLU family with ``sigma_b > 0``, or ``chi_1 = 1`` only at unstable fixed points).

    Example:
        >>> round(edge_of_chaos("relu"), 12)
        1.414213562373
        >>> round(edge_of_chaos("tanh", 0.0), 12)
        1.0

    References:
        Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232;
        Hayou et al. 2019, arXiv:1902.06853.
    """
    act = as_activation(activation)
    point = critical_point(act, sigma_b)
    if point.stable:
        return point.sigma_w
    if act.homogeneous:
        raise ValueError(
            f"edge_of_chaos: {act.name!r} is positively homogeneous, so chi_1 does not depend on "
            f"q and V(q) = a q + sigma_b^2 has no finite fixed point at chi_1 = 1 when sigma_b = "
            f"{sigma_b} > 0 (Hayou et al. 2019: ReLU's edge of chaos is the single point "
            "(sigma_b, sigma_w) = (0, sqrt(2))). Use sigma_b=0."
        )
    if point.candidates:
        listed = ", ".join(f"sigma_w={w:.6g} at q*={q:.6g} with V'(q*)={v:.6g}"
                           for w, q, v in point.candidates)
        raise ValueError(
            f"edge_of_chaos: for {act.name!r} at sigma_b={sigma_b}, chi_1 = 1 only at unstable "
            f"fixed points ({listed}); the lengths run away from them, so no network sits there. "
            "Try another sigma_b (see critical_line)."
        )
    raise ValueError(
        f"edge_of_chaos: {act.name!r} has no fixed point with chi_1 = 1 at sigma_b={sigma_b} "
        "(searched q* in [1e-10, 1e6]). Try another sigma_b (see critical_line)."
    )


def critical_line(activation: Any, sigma_b_values: Any) -> CriticalLine:
    """The critical line at many ``sigma_b`` at once (vectorized; ``nan`` where none exists).

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_b_values: bias stds (array-like).

    Returns:
        A :class:`CriticalLine`; plot ``line.sigma_b`` against ``line.sigma_w``.

    Example:
        >>> line = critical_line("tanh", [0.0, 0.1])
        >>> [round(float(w), 4) for w in line.sigma_w]
        [1.0, 1.1934]
    """
    sb = np.atleast_1d(np.asarray(sigma_b_values, dtype=np.float64)).ravel()
    _check_sigma_b("critical_line", sb)
    pts = _points(as_activation(activation), sb)
    return CriticalLine(sb, np.array([p.sigma_w for p in pts]),
                        np.array([p.q_star if p.stable else math.nan for p in pts]),
                        np.array([p.v_prime if p.stable else math.nan for p in pts]))
