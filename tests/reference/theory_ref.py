"""Slow, obviously-correct twins for initwise.theory (numpy/scipy only).

* ``quad_expect``: ``E[f(sqrt(q) z)]`` by scipy's adaptive QUADPACK, split at given kinks.
* ``quad_expect2``: ``E[f(u1) g(u2)]`` by nested adaptive quadrature over the Cholesky factors.
* closed forms: the ReLU arc-cosine kernel (Cho & Saul 2009) and the erf kernel (Williams 1997).
* ``simulate_network``: a wide random network in plain numpy (seeded), measuring q_l and c_l.
* ``iterate_fixed_point``: plain fixed-point iteration of the length map.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import integrate

_L = 12.0


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def quad_expect(f, q: float, kinks=()) -> float:
    """E[f(sqrt(q) z)], z ~ N(0, 1), by QUADPACK on [-12, 12] split at the kinks."""
    r = math.sqrt(q)
    pts = sorted(k / r for k in kinks if abs(k / r) < _L)
    edges = [-_L, *pts, _L]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)  # asked for near-eps
        for a, b in zip(edges[:-1], edges[1:]):
            val, _ = integrate.quad(lambda z: float(f(np.array(r * z))) * _pdf(z), a, b,
                                    epsabs=1e-15, epsrel=1e-14, limit=400)
            total += val
    return total


def quad_expect2(f, g, q: float, c: float, kinks=()) -> float:
    """E[f(u1) g(u2)], (u1, u2) ~ N(0, q [[1, c], [c, 1]]), by nested QUADPACK."""
    r, s = math.sqrt(q), math.sqrt(max(1.0 - c * c, 0.0))

    def inner(z1: float) -> float:
        centre = c * r * z1
        if s == 0.0:
            return float(g(np.array(centre)))
        pts = sorted((k - centre) / (r * s) for k in kinks)
        pts = [p for p in pts if abs(p) < _L]
        edges = [-_L, *pts, _L]
        return sum(integrate.quad(lambda z2: float(g(np.array(centre + r * s * z2))) * _pdf(z2),
                                  a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
                   for a, b in zip(edges[:-1], edges[1:]))

    pts = sorted({k / r for k in kinks} | {k / (c * r) for k in kinks if c != 0})
    edges = [-_L, *[p for p in pts if abs(p) < _L], _L]
    return sum(integrate.quad(lambda z1: float(f(np.array(r * z1))) * inner(z1) * _pdf(z1),
                              a, b, epsabs=1e-12, epsrel=1e-11, limit=200)[0]
               for a, b in zip(edges[:-1], edges[1:]))


def relu_kernel(c, q: float = 1.0):
    """E[relu(u1) relu(u2)] = q (sin t + (pi - t) cos t) / (2 pi), t = arccos c (Cho & Saul)."""
    c = np.asarray(c, dtype=np.float64)
    t = np.arccos(np.clip(c, -1.0, 1.0))
    return q * (np.sin(t) + (np.pi - t) * np.cos(t)) / (2.0 * np.pi)


def erf_kernel(c, q: float = 1.0):
    """E[erf(u1) erf(u2)] = (2 / pi) arcsin(2 c q / (1 + 2 q)) (Williams 1997)."""
    return 2.0 / np.pi * np.arcsin(2.0 * np.asarray(c) * q / (1.0 + 2.0 * q))


def iterate_fixed_point(phi_second_moment, sigma_w: float, sigma_b: float, q0: float = 1.0,
                        steps: int = 5000) -> float:
    """Iterate q <- sigma_w^2 E[phi^2](q) + sigma_b^2 (slow, obviously correct)."""
    q = q0
    for _ in range(steps):
        q = sigma_w**2 * phi_second_moment(q) + sigma_b**2
    return q


def simulate_network(phi, depth: int, width: int, sigma_w: float, sigma_b: float, q0: float,
                     c0: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """q_l and c_l (l = 0..depth) of two inputs through one random network (plain numpy)."""
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal(width), rng.standard_normal(width)
    ha = math.sqrt(q0) * z1
    hb = math.sqrt(q0) * (c0 * z1 + math.sqrt(1.0 - c0 * c0) * z2)
    qs, cs = [q0], [c0]
    for _ in range(depth):
        w = rng.standard_normal((width, width)) * (sigma_w / math.sqrt(width))
        b = sigma_b * rng.standard_normal(width)
        ha, hb = w @ phi(ha) + b, w @ phi(hb) + b
        qa, qb = float(np.mean(ha * ha)), float(np.mean(hb * hb))
        qs.append(0.5 * (qa + qb))
        cs.append(float(np.mean(ha * hb)) / math.sqrt(qa * qb))
    return np.array(qs), np.array(cs)
