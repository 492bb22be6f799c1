"""Singular values of a deep random network's input-output Jacobian at initialization.

For ``h^l = W^l x^{l-1} + b^l``, ``x^l = phi(h^l)``, the Jacobian is ``J = D^L W^L ... D^1 W^1``
with ``D^l = diag(phi'(h^l))``. At the length map's fixed point every ``D^l`` has the same
(asymptotic) spectrum, that of ``phi'(sqrt(q*) z)``, and in the infinite-width limit the factors
are asymptotically free (Pennington, Schoenholz & Ganguli 2017, arXiv:1711.04735). Free
multiplicative convolution then gives the first two moments of the squared singular values of
``J`` exactly, for any activation:

* per layer, ``Y = sigma_w^2 W W^T D^2`` has ``y1 = sigma_w^2 mu1`` and
  ``y2 = sigma_w^4 (w2 mu1^2 + mu2 - mu1^2)``, with ``mu_k = E[phi'(sqrt(q*) z)^(2k)]`` and
  ``w2 = 2`` for Gaussian weights (Marchenko-Pastur, aspect ratio 1) or ``1`` for orthogonal;
* across layers, ``m1 <- m1 y1`` and ``m2 <- m2 y1^2 + m1^2 (y2 - y1^2)`` (the free product rule
  ``phi(abab) = phi(a^2) phi(b)^2 + phi(a)^2 phi(b^2) - phi(a)^2 phi(b)^2``).

So the mean squared singular value is ``chi_1^L`` exactly, and at criticality (``chi_1 = 1``) the
variance is ``L (mu2 / mu1^2 + w2 - 2)``: ``L mu2/mu1^2`` for Gaussian weights and
``L (mu2/mu1^2 - 1)`` for orthogonal ones (their eq. (17)). ReLU has ``mu2/mu1^2 = 2``, so its
spread grows linearly with depth even with orthogonal weights; for tanh ``mu2/mu1^2 -> 1`` as
``q* -> 0``: orthogonal tanh networks approach dynamical isometry. The full spectrum (its edge,
quantiles) has no closed form in general; ``method="sample"`` draws seeded random networks.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from initwise.theory._common import check_sigmas, expect
from initwise.theory.activations import as_activation
from initwise.theory.maps import fixed_point

__all__ = ["JacobianSpectrum", "jacobian_spectrum"]

WEIGHTS = ("gaussian", "orthogonal")
METHODS = ("free", "sample")


@dataclass(frozen=True)
class JacobianSpectrum:
    """Moments (free probability) and, if sampled, the spectrum of ``J J^T``.

    Attributes:
        depth: number of layers.
        weights: ``"gaussian"`` or ``"orthogonal"``.
        q: the pre-activation variance used (``q*``).
        chi_1: ``sigma_w^2 mu1``.
        mu1: ``E[phi'(sqrt(q) z)^2]``.
        mu2: ``E[phi'(sqrt(q) z)^4]``.
        mean: mean squared singular value, ``chi_1 ** depth`` (exact in the wide limit).
        second_moment: mean of the squared singular values squared.
        variance: ``second_moment - mean^2`` (the spread; 0 = dynamical isometry).
        samples: squared singular values of the sampled networks (``None`` unless sampled).
        sampled_mean: their mean (``None`` unless sampled).
        sampled_variance: their variance (``None`` unless sampled).
        max_squared: their maximum (``None`` unless sampled).
    """

    depth: int
    weights: str
    q: float
    chi_1: float
    mu1: float
    mu2: float
    mean: float
    second_moment: float
    variance: float
    samples: np.ndarray | None = None
    sampled_mean: float | None = None
    sampled_variance: float | None = None
    max_squared: float | None = None


def _free_moments(y1: float, y2: float, depth: int) -> tuple[float, float]:
    m1, m2 = 1.0, 1.0
    for _ in range(depth):
        m1, m2 = m1 * y1, m2 * y1 * y1 + m1 * m1 * (y2 - y1 * y1)
    return m1, m2


def _haar(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((n, n))
    qmat, r = np.linalg.qr(a)
    return qmat * np.sign(np.diag(r))


def _one_blas_thread() -> Any:
    """Single-threaded BLAS for small matrices (much faster on shared or small machines)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _sample(act: Any, depth: int, sigma_w: float, sigma_b: float, q: float, weights: str,
            width: int, n_samples: int, seed: int) -> np.ndarray:
    """Squared singular values of ``n_samples`` random networks' Jacobians (seeded)."""
    with _one_blas_thread():
        return _sample_unlimited(act, depth, sigma_w, sigma_b, q, weights, width, n_samples, seed)


def _sample_unlimited(act: Any, depth: int, sigma_w: float, sigma_b: float, q: float,
                      weights: str, width: int, n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_samples):
        h = math.sqrt(q) * rng.standard_normal(width)
        jac = np.eye(width)
        for _ in range(depth):
            if weights == "gaussian":
                w = rng.standard_normal((width, width)) * (sigma_w / math.sqrt(width))
            else:
                w = sigma_w * _haar(width, rng)
            h = w @ act.fn(h) + sigma_b * rng.standard_normal(width)
            jac = act.deriv(h)[:, None] * (w @ jac)
        out.append(np.linalg.svd(jac, compute_uv=False) ** 2)
    return np.concatenate(out)


def jacobian_spectrum(
    activation: Any,
    depth: int,
    sigma_w: float,
    sigma_b: float = 0.0,
    *,
    weights: str = "gaussian",
    method: str = "free",
    q: float | None = None,
    width: int = 256,
    n_samples: int = 4,
    seed: int = 0,
) -> JacobianSpectrum:
    """Mean and spread of the squared singular values of the input-output Jacobian.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        depth: number of layers (>= 1).
        sigma_w: weight std (orthogonal weights are ``sigma_w`` times a Haar matrix).
        sigma_b: bias std. Default: 0.
        weights: ``"gaussian"`` (default) or ``"orthogonal"``.
        method: ``"free"`` (default): exact wide-limit moments by free probability;
            ``"sample"``: also sample ``n_samples`` seeded networks of ``width`` units and return
            their squared singular values (spectral edge, quantiles).
        q: the pre-activation variance. Default: ``q*`` (scale-free ``q = 1`` for the ReLU
            family when lengths diverge).
        width: sampled width. Default: 256.
        n_samples: sampled networks. Default: 4.
        seed: numpy seed for sampling. Default: 0.

    Returns:
        A :class:`JacobianSpectrum`.

    Raises:
        ValueError: bad ``weights``/``method``/``depth``, or no usable fixed point.

    Example:
        >>> s = jacobian_spectrum("relu", 10, sigma_w=math.sqrt(2.0), weights="orthogonal")
        >>> round(s.mean, 12), round(s.variance, 9)
        (1.0, 10.0)

    References:
        Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning
        through dynamical isometry", arXiv:1711.04735, eqs. (13)-(17).
    """
    if weights not in WEIGHTS:
        raise ValueError(f"jacobian_spectrum: weights={weights!r}; valid: {list(WEIGHTS)}.")
    if method not in METHODS:
        raise ValueError(f"jacobian_spectrum: method={method!r}; valid: {list(METHODS)}.")
    if not isinstance(depth, int | np.integer) or depth < 1:
        raise ValueError(f"jacobian_spectrum: depth must be an int >= 1, got {depth!r}.")
    check_sigmas("jacobian_spectrum", sigma_w, sigma_b)
    act = as_activation(activation)
    if q is None:
        fp = fixed_point(act, sigma_w, sigma_b)
        q = fp.q_star
        if math.isinf(q):
            if not act.homogeneous:
                raise ValueError(f"jacobian_spectrum: no finite fixed point ({fp.message}); "
                                 "pass q explicitly.")
            q = 1.0
    mu1 = float(expect(act, lambda u: act.deriv(u) ** 2, q))
    mu2 = float(expect(act, lambda u: act.deriv(u) ** 4, q))
    w2 = 2.0 if weights == "gaussian" else 1.0
    y1 = sigma_w**2 * mu1
    y2 = sigma_w**4 * (w2 * mu1**2 + mu2 - mu1**2)
    m1, m2 = _free_moments(y1, y2, int(depth))
    result = dict(depth=int(depth), weights=weights, q=float(q), chi_1=y1, mu1=mu1, mu2=mu2,
                  mean=m1, second_moment=m2, variance=m2 - m1 * m1)
    if method == "sample":
        s = _sample(act, int(depth), sigma_w, sigma_b, float(q), weights, width, n_samples, seed)
        result.update(samples=s, sampled_mean=float(s.mean()), sampled_variance=float(s.var()),
                      max_squared=float(s.max()))
    return JacobianSpectrum(**result)
