"""Depth scales, the maximal trainable depth, and layer-by-layer propagation.

Schoenholz et al. 2017 (arXiv:1611.01232) linearize the length and correlation maps at their
fixed points: deviations decay like ``exp(-l / xi)`` with

    xi_q = -1 / log V'(q*),        xi_c = -1 / log chi_c,
    chi_c = sigma_w^2 E[phi'(u1) phi'(u2)]  at (q*, c*),

where ``c* = 1`` in the ordered phase (so ``chi_c = chi_1``) and, in the chaotic phase, ``c*`` is
the non-trivial stable fixed point ``c* < 1`` of the correlation map (``chi_c`` is then its slope
there, not ``chi_1``). ``xi_c`` diverges at criticality; gradients shrink on the scale
``xi_grad = -1 / log chi_1``. They found that random networks train only when
``depth <~ 6 xi_c`` (their Fig. 5-6); :func:`max_trainable_depth` returns that bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.theory._common import check_sigmas
from initwise.theory.activations import Activation, as_activation
from initwise.theory.correlation import c_map, c_map_derivative
from initwise.theory.maps import FixedPoint, chi_1, fixed_point, q_map

__all__ = ["DepthScales", "Propagation", "correlation_fixed_point", "depth_scales",
           "max_trainable_depth", "propagate"]

TRAINABLE_DEPTH_FACTOR = 6.0


@dataclass(frozen=True)
class DepthScales:
    """Schoenholz et al.'s depth scales; unpacks as ``xi_q, xi_c = depth_scales(...)``.

    Attributes:
        xi_q: length depth scale ``-1 / log V'(q*)`` (``inf`` when ``V'(q*) >= 1``; ``nan`` when
            lengths diverge and there is no fixed point to relax to).
        xi_c: correlation depth scale ``-1 / log chi_c`` (``inf`` at criticality).
        c_star: the correlation map's stable fixed point (1 in the ordered phase).
        chi_c: the correlation map's slope at ``c_star``.
        q_star: the length map's fixed point.
        v_prime: ``V'(q*)``.
        note: how degenerate cases were treated.
        xi_grad: gradient depth scale ``-1 / log chi_1`` (Schoenholz et al., Sec. 6: gradients
            shrink like ``exp(-l / xi_grad)``); ``inf`` when ``chi_1 >= 1``.
    """

    xi_q: float
    xi_c: float
    c_star: float
    chi_c: float
    q_star: float
    v_prime: float
    note: str = ""
    xi_grad: float = math.inf

    def __iter__(self):  # noqa: ANN204 - tuple-like unpacking
        return iter((self.xi_q, self.xi_c))


@dataclass(frozen=True)
class Propagation:
    """Layer-by-layer mean-field quantities (index 0 is the input layer).

    Attributes:
        q: pre-activation variance per layer, shape ``(depth + 1,)``.
        c: correlation of two inputs per layer, shape ``(depth + 1,)``.
    """

    q: np.ndarray
    c: np.ndarray


def _xi(slope: float) -> float:
    if not math.isfinite(slope):
        return math.nan
    if slope <= 0.0:
        return 0.0
    return math.inf if slope >= 1.0 else -1.0 / math.log(slope)


def _evaluation_point(act: Activation, fp: FixedPoint, sigma_b: float) -> tuple[float, float, str]:
    """(q, sigma_b) at which to study correlations, and a note for degenerate fixed points."""
    if math.isinf(fp.q_star):
        if act.homogeneous:
            return 1.0, 0.0, "lengths diverge; correlations use the scale-free q -> inf map"
        return math.nan, sigma_b, "lengths diverge and the activation is not scale free"
    if fp.q_star == 0.0:
        return 0.0, 0.0, ("q* = 0: vanishing signals see the layer's linearization at 0, which "
                          "is positively homogeneous, so the correlation map's slope at c = 1 is 1"
                          " and correlations converge only polynomially (xi_c = inf)")
    return fp.q_star, sigma_b, ""


def correlation_fixed_point(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
                            q: float | None = None) -> float:
    """The correlation map's stable fixed point ``c*`` (1 unless the phase is chaotic).

    In the chaotic phase ``c = 1`` repels, and ``c*`` is the largest root of ``c_map(c) = c``
    below 1 where the map crosses from above to below the diagonal (bracketed on a grid dense
    near 1, then Brent's method).

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        q: the variance to evaluate at. Default: ``q*``.

    Returns:
        ``c*`` in ``[-1, 1]``.
    """
    from scipy.optimize import brentq  # lazy: it would double `import initwise.theory`

    act = as_activation(activation)
    slope1 = c_map_derivative(act, 1.0, q, sigma_w, sigma_b)
    if slope1 <= 1.0 + 1e-9:
        return 1.0
    grid = np.unique(np.concatenate([np.linspace(-1.0, 0.8, 10), 1.0 - np.logspace(-1, -9, 9)]))
    resid = np.asarray(c_map(act, grid, q, sigma_w, sigma_b)) - grid
    down = np.nonzero((resid[:-1] > 0) & (resid[1:] <= 0))[0]
    if down.size == 0:
        return 1.0
    i = int(down[-1])

    def resid_at(c: float) -> float:
        return float(c_map(act, c, q, sigma_w, sigma_b)) - c

    lo, hi = float(grid[i]), float(grid[i + 1])
    f_lo, f_hi = resid_at(lo), resid_at(hi)
    if f_lo * f_hi > 0 or min(abs(f_lo), abs(f_hi)) <= 1e-14:
        return lo if abs(f_lo) < abs(f_hi) else hi  # a root on the grid (up to rounding)
    return float(brentq(resid_at, lo, hi, xtol=1e-15, rtol=1e-14))


def depth_scales(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
                 q0: float = 1.0) -> DepthScales:
    """Depth scales ``(xi_q, xi_c)`` of Schoenholz et al. 2017 at ``(sigma_w, sigma_b)``.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        q0: input variance, for :func:`~initwise.theory.fixed_point`. Default: 1.

    Returns:
        A :class:`DepthScales` (iterable as ``(xi_q, xi_c)``).

    Example:
        >>> xi_q, xi_c = depth_scales("tanh", sigma_w=1.0, sigma_b=0.3)
        >>> round(xi_c, 3)
        2.807

    References:
        Schoenholz et al. 2017, "Deep information propagation", arXiv:1611.01232, eqs. (7)-(9).
    """
    check_sigmas("depth_scales", sigma_w, sigma_b)
    act = as_activation(activation)
    fp = fixed_point(act, sigma_w, sigma_b, q0=q0)
    q, sb, note = _evaluation_point(act, fp, sigma_b)
    xi_q = _xi(fp.v_prime) if math.isfinite(fp.q_star) else math.nan
    chi1 = chi_1(act, sigma_w, sigma_b, q_star=fp.q_star)
    # at criticality chi_1 = 1 up to quadrature rounding (1 - 2e-16 gives xi_grad = 4.5e15)
    xi_grad = _xi(1.0 if abs(chi1 - 1.0) <= 1e-9 else chi1)
    if math.isnan(q):
        return DepthScales(xi_q, math.nan, math.nan, math.nan, fp.q_star, fp.v_prime, note,
                           xi_grad)
    if q == 0.0:
        return DepthScales(xi_q, math.inf, 1.0, 1.0, fp.q_star, fp.v_prime, note, xi_grad)
    c_star = correlation_fixed_point(act, sigma_w, sb, q=q)
    chi_c = float(c_map_derivative(act, c_star, q, sigma_w, sb))
    if c_star == 1.0 and abs(chi_c - 1.0) <= 1e-9:
        chi_c = 1.0
    return DepthScales(xi_q, _xi(chi_c), c_star, chi_c, fp.q_star, fp.v_prime, note, xi_grad)


def max_trainable_depth(activation: Any, sigma_w: float, sigma_b: float = 0.0, *,
                        factor: float = TRAINABLE_DEPTH_FACTOR) -> float:
    """The depth beyond which a random network stops being trainable: ``factor * xi``.

    Schoenholz et al. 2017 observed (MNIST and CIFAR-10, tanh networks, SGD and RMSProp) that
    networks train when ``L <~ 6 xi_c`` and fail beyond; the bound diverges at criticality. Here
    ``xi = min(xi_c, xi_grad)``: the two agree whenever ``q* > 0`` in the ordered phase
    (``chi_c = chi_1`` there) and ``xi_grad = inf`` in the chaotic phase; they differ only when
    signals vanish (``q* = 0``, ``xi_c = inf``) while gradients still shrink like ``chi_1^L``.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        factor: the multiple of the depth scale. Default: 6 (Schoenholz et al., Fig. 5).

    Returns:
        The depth bound (float; ``inf`` at criticality, ``nan`` where ``xi_c`` is undefined).

    References:
        Schoenholz et al. 2017, "Deep information propagation", arXiv:1611.01232, Sec. 5-6.
    """
    scales = depth_scales(activation, sigma_w, sigma_b)
    return factor * min(scales.xi_c, scales.xi_grad) if not math.isnan(scales.xi_c) else math.nan


def propagate(activation: Any, depth: int, sigma_w: float, sigma_b: float = 0.0,
              q0: float = 1.0, c0: float = 0.5) -> Propagation:
    """Iterate the length and correlation maps through ``depth`` layers.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        depth: number of layers (>= 0).
        sigma_w: weight std.
        sigma_b: bias std. Default: 0.
        q0: the two inputs' pre-activation variance at layer 0. Default: 1.
        c0: their correlation at layer 0. Default: 0.5.

    Returns:
        A :class:`Propagation` with ``q`` and ``c`` of length ``depth + 1``.

    Raises:
        ValueError: negative depth, bad sigmas, ``q0 <= 0`` or ``c0`` outside ``[-1, 1]``.

    References:
        Poole et al. 2016, arXiv:1606.05340, eqs. (3) and (5).
    """
    if not isinstance(depth, int | np.integer) or depth < 0:
        raise ValueError(f"initwise.theory.propagate: depth must be an int >= 0, got {depth!r}.")
    if not (math.isfinite(q0) and q0 > 0) or not -1.0 <= c0 <= 1.0:
        raise ValueError(f"initwise.theory.propagate: need q0 > 0 and c0 in [-1, 1], got "
                         f"q0={q0!r}, c0={c0!r}.")
    check_sigmas("propagate", sigma_w, sigma_b)
    act = as_activation(activation)
    qs, cs = [float(q0)], [float(c0)]
    for _ in range(int(depth)):
        q, c = qs[-1], cs[-1]
        if not math.isfinite(q):
            qs.append(math.inf)
            cs.append(math.nan)
            continue
        cs.append(float(c_map(act, c, q, sigma_w, sigma_b)))
        qs.append(float(q_map(act, q, sigma_w, sigma_b)))
    return Propagation(np.array(qs), np.array(cs))
