"""Gains for any activation: variance-preserving (exact quadrature) or torch's legacy table.

The variance gain of an activation ``phi`` is

    gain = 1 / sqrt(E[phi(z)^2]),   z ~ N(0, 1),

the factor that keeps the second moment of a zero-bias layer's pre-activations at its input's
(``Var(W) = gain^2 / fan_in`` maps ``E[h^2] = 1`` to ``E[h'^2] = 1``; He et al. 2015,
arXiv:1502.01852, derive ``sqrt(2)`` for ReLU this way). It is computed in float64 by the theory
engine's quadrature (:mod:`initwise.theory.quadrature`): Gauss-Hermite for smooth activations and
a Gauss-Legendre rule split at the kinks for kinked ones, to 1e-12 relative, so 1e-8 holds
with a wide margin.

torch's ``calculate_gain`` table is a different thing for some entries: its ``tanh`` is 5/3 and
its ``selu`` is 3/4 (chosen for other reasons: Klambauer et al.'s self-normalization wants gain 1
with LeCun init), and it knows only ``linear``/conv names, ``sigmoid``, ``tanh``, ``relu``,
``leaky_relu`` and ``selu``. ``mode="torch"`` reproduces it; ``mode="variance"`` works for all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from initwise.activations import known_activations, resolve_activation, variance_gain
from initwise.theory import maps as theory_maps

__all__ = ["GAIN_MODES", "gain", "gain_table", "format_gain_table", "second_moment"]

GAIN_MODES = ("variance", "torch")
_TORCH_NAMES = {"identity": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "selu": "selu"}


def second_moment(activation: Any, q: float = 1.0, **params: Any) -> float:
    """``E[phi(sqrt(q) z)^2]`` for ``z ~ N(0, 1)``, by kink-aware quadrature in float64.

    Args:
        activation: name, ``nn.Module``, torch function, callable or ``ActivationSpec``.
        q: the pre-activation variance. Default: 1.
        **params: parameters of a named activation.

    Returns:
        The second moment (float).
    """
    spec = resolve_activation(activation, **params)
    return float(theory_maps.second_moment(spec.np_activation, q))


def gain(activation: Any, mode: str = "variance", **params: Any) -> float:
    """The gain of ``activation``: variance-preserving, or torch's legacy value.

    Args:
        activation: a registered name (``"relu"``, ``"gelu"``, ``"swish"``...), an ``nn.Module``
            instance (``nn.LeakyReLU(0.2)``: its parameters are read), a torch function
            (``F.silu``) or any elementwise callable.
        mode: ``"variance"`` (default): ``1 / sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)``, to 1e-8
            relative or better; ``"torch"``: ``torch.nn.init.calculate_gain``'s value, for the
            activations torch's table defines.
        **params: parameters of a named activation (``negative_slope=0.2``, ``alpha=0.5``...).

    Returns:
        The gain (float).

    Raises:
        ValueError: unknown mode, unknown activation, or ``mode="torch"`` for an activation
            torch has no gain for (use ``mode="variance"``).

    Example:
        >>> round(gain("relu"), 12)
        1.414213562373
        >>> gain("tanh", mode="torch")
        1.6666666666666667

    References:
        He et al. 2015, "Delving deep into rectifiers", arXiv:1502.01852.
    """
    if mode not in GAIN_MODES:
        raise ValueError(f"gain: unknown mode {mode!r}; valid: {list(GAIN_MODES)}.")
    spec = resolve_activation(activation, **params)
    if mode == "torch":
        return _torch_gain(spec)
    return variance_gain(spec)  # the one computation (ActivationFacts.gain is this number)


def _torch_gain(spec: Any) -> float:
    torch_name = _TORCH_NAMES.get(spec.name)
    if torch_name is None:
        raise ValueError(
            f"gain: torch.nn.init.calculate_gain has no gain for {spec.name!r} (it knows "
            f"{sorted(set(_TORCH_NAMES.values()))}); use mode='variance' for initwise's exact "
            "variance-preserving gain."
        )
    param = spec.params.get("negative_slope") if torch_name == "leaky_relu" else None
    return float(torch.nn.init.calculate_gain(torch_name, param))


def gain_table() -> list[dict[str, Any]]:
    """One row per known activation (default parameters): variance gain next to torch's.

    Returns:
        Rows ``{"name", "params", "variance_gain", "second_moment", "torch_gain", "note"}``;
        ``torch_gain`` is ``None`` with note ``"unsupported"`` where torch raises.
    """
    rows = []
    for name in known_activations():
        spec = resolve_activation(name)
        g = gain(spec)
        try:
            torch_name = _TORCH_NAMES.get(spec.name, spec.name)
            tg: float | None = float(torch.nn.init.calculate_gain(
                torch_name, spec.params.get("negative_slope")))
            note = "" if np.isclose(tg, g, rtol=1e-6) else "differs"
        except ValueError:
            tg, note = None, "unsupported"
        rows.append({"name": name, "params": dict(spec.params), "variance_gain": g,
                     "second_moment": 1.0 / (g * g), "torch_gain": tg, "note": note})
    return rows


def format_gain_table(table: list[dict[str, Any]] | None = None) -> str:
    """The gain table as aligned text (``initwise gains``).

    Args:
        table: rows from :func:`gain_table`. Default: computed.

    Returns:
        A multi-line string.
    """
    rows = gain_table() if table is None else table
    labels = [r["name"] + ("(" + ", ".join(f"{k}={v}" for k, v in r["params"].items()) + ")"
                           if r["params"] else "") for r in rows]
    width = max([len("activation"), *map(len, labels)])
    head = (f"{'activation':<{width}} {'variance gain':>14} {'E[phi(z)^2]':>12} "
            f"{'torch gain':>12}  note")
    lines = [head, "-" * len(head)]
    for label, r in zip(labels, rows):
        tg = "unsupported" if r["torch_gain"] is None else f"{r['torch_gain']:.6f}"
        note = "" if r["note"] == "unsupported" else r["note"]
        lines.append(f"{label:<{width}} {r['variance_gain']:>14.10f} {r['second_moment']:>12.8f} "
                     f"{tg:>12}  {note}".rstrip())
    lines.append("variance gain = 1/sqrt(E[phi(z)^2]), z ~ N(0,1) (keeps a zero-bias layer's "
                 "second moment); torch gain = torch.nn.init.calculate_gain.")
    return "\n".join(lines)
