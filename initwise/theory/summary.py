"""One activation's mean-field facts in one place (``initwise theory ACTIVATION``)."""

from __future__ import annotations

import math
from typing import Any

from initwise.theory.activations import as_activation
from initwise.theory.criticality import critical_point
from initwise.theory.depth import TRAINABLE_DEPTH_FACTOR, depth_scales
from initwise.theory.maps import CRITICAL_TOL, chi_1, fixed_point, second_moment

__all__ = ["format_theory_summary", "theory_summary"]

_SOURCE = ("Schoenholz et al. 2017, arXiv:1611.01232: random networks train when "
           "depth <~ 6 xi_c (xi_grad = -1/log chi_1 where signals vanish, q* = 0)")


def _edge(act: Any, sigma_b: float) -> dict[str, Any]:
    point = critical_point(act, sigma_b)
    if point.stable:
        return {"edge_of_chaos_sigma_w": point.sigma_w, "edge_of_chaos_q_star": point.q_star,
                "edge_of_chaos_v_prime": point.v_prime, "edge_of_chaos_note": ""}
    if act.homogeneous:
        note = ("none for sigma_b > 0: positively homogeneous activation, chi_1 does not depend "
                "on q (edge of chaos only at sigma_b = 0)")
    elif point.candidates:
        note = "chi_1 = 1 only at unstable fixed points: " + ", ".join(
            f"sigma_w={w:.4g} (q*={q:.4g}, V'(q*)={v:.4g})" for w, q, v in point.candidates)
    else:
        note = "no fixed point with chi_1 = 1 at this sigma_b"
    return {"edge_of_chaos_sigma_w": None, "edge_of_chaos_q_star": None,
            "edge_of_chaos_v_prime": None, "edge_of_chaos_note": note}


def theory_summary(activation: Any, *, sigma_b: float = 0.0, sigma_w: float | None = None,
                   depth: int | None = None) -> dict[str, Any]:
    """q*, chi_1, V'(q*), phase, depth scales, edge of chaos and trainable depth, as a dict.

    Args:
        activation: name, :class:`~initwise.theory.activations.Activation`, spec or callable.
        sigma_b: bias std. Default: 0.
        sigma_w: weight std. Default: the edge of chaos for ``sigma_b`` when it exists, else the
            variance gain ``1 / sqrt(E[phi(z)^2])`` (reported in ``sigma_w_source``).
        depth: the user's depth, compared with the maximal trainable depth. Default: none.

    Returns:
        A JSON-friendly dict (floats may be ``inf``/``nan``; ``None`` where not defined).

    Raises:
        ValueError: bad activation, negative sigmas or depth.

    Example:
        >>> s = theory_summary("relu")
        >>> s["sigma_w"] == s["edge_of_chaos_sigma_w"], s["phase"]
        (True, 'critical')
    """
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"theory_summary: depth must be a positive int, got {depth!r}.")
    act = as_activation(activation)
    out: dict[str, Any] = {"activation": act.name, "params": dict(act.params),
                           "sigma_b": float(sigma_b)}
    out.update(_edge(act, sigma_b))
    if sigma_w is not None:
        sw, source = float(sigma_w), "given"
    elif out["edge_of_chaos_sigma_w"] is not None:
        sw, source = out["edge_of_chaos_sigma_w"], "edge_of_chaos"
    else:
        sw, source = 1.0 / math.sqrt(float(second_moment(act, 1.0))), "variance_gain"
    fp = fixed_point(act, sw, sigma_b)
    c1 = chi_1(act, sw, sigma_b)
    ph = "critical" if abs(c1 - 1) <= CRITICAL_TOL else ("ordered" if c1 < 1 else "chaotic")
    scales = depth_scales(act, sw, sigma_b)
    xi = min(scales.xi_c, scales.xi_grad) if not math.isnan(scales.xi_c) else math.nan
    max_depth = TRAINABLE_DEPTH_FACTOR * xi
    out.update({
        "sigma_w": sw, "sigma_w_source": source, "q_star": fp.q_star,
        "fixed_point_kind": fp.kind, "fixed_point_stable": fp.stable, "v_prime": fp.v_prime,
        "fixed_point_note": fp.message, "chi_1": c1, "phase": ph,
        "xi_q": scales.xi_q, "xi_c": scales.xi_c, "xi_grad": scales.xi_grad,
        "c_star": scales.c_star,
        "chi_c": scales.chi_c, "depth_scales_note": scales.note,
        "max_trainable_depth": max_depth, "max_trainable_depth_source": _SOURCE,
        "depth": depth,
        "depth_exceeds": None if depth is None or math.isnan(max_depth) else depth > max_depth,
    })
    return out


def _num(x: Any, digits: int = 6) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isinf(x):
            return "inf"
        if math.isnan(x):
            return "undefined"
        return f"{x:.{digits}g}"
    return str(x)


def format_theory_summary(summary: dict[str, Any]) -> str:
    """Render :func:`theory_summary`'s dict as aligned text.

    Args:
        summary: the dict.

    Returns:
        A multi-line string.
    """
    s = summary
    params = ", ".join(f"{k}={v}" for k, v in s["params"].items())
    title = f"{s['activation']}({params})" if params else s["activation"]
    stable = "stable" if s["fixed_point_stable"] else "not stable"
    eoc = (f"sigma_w = {_num(s['edge_of_chaos_sigma_w'])} (q* = {_num(s['edge_of_chaos_q_star'])}"
           f", V'(q*) = {_num(s['edge_of_chaos_v_prime'])})"
           if s["edge_of_chaos_sigma_w"] is not None else s["edge_of_chaos_note"])
    rows = [
        ("activation", title),
        ("sigma_w", f"{_num(s['sigma_w'])} ({s['sigma_w_source'].replace('_', ' ')})"),
        ("sigma_b", _num(s["sigma_b"])),
        ("q*", f"{_num(s['q_star'])} ({s['fixed_point_kind']}, {stable})"),
        ("V'(q*)", _num(s["v_prime"])),
        ("chi_1", _num(s["chi_1"])),
        ("phase", s["phase"]),
        ("xi_q", _num(s["xi_q"], 4)),
        ("xi_c", _num(s["xi_c"], 4) + (f" (c* = {_num(s['c_star'], 4)})"
                                       if s["c_star"] not in (1.0, None) else "")),
        ("xi_grad", _num(s["xi_grad"], 4)),
        ("edge of chaos", eoc),
        ("max trainable depth", f"{_num(s['max_trainable_depth'], 4)} (~6 min(xi_c, xi_grad);"
                                " Schoenholz et al. 2017, arXiv:1611.01232)"),
    ]
    if s["depth"] is not None:
        verdict = {True: "EXCEEDS the trainable depth: move sigma_w towards the edge of chaos",
                   False: "within the trainable depth", None: "not determined"}
        rows.append(("your depth", f"{s['depth']}: {verdict[s['depth_exceeds']]}"))
    notes = [n for n in (s["depth_scales_note"],) if n]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
