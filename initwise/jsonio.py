"""One JSON rule for everything initwise writes: ``json_safe``, ``dumps`` and ``loads``.

The rule for non-finite floats (the doctor's, kept because it loses nothing that matters and
reads back): NaN becomes ``null``; +inf and -inf become the strings ``"inf"`` and ``"-inf"``
(an update ratio of a zero weight, a grad norm that overflowed). :func:`restore_nonfinite`
turns those strings back into floats, so ``loads(dumps(x))`` gives the infinities back. The JSON
schemas in :mod:`initwise.report.schema` accept both forms wherever a number may be infinite.

Everything else is made plain: dict keys become strings, tuples and sets become lists,
numpy/torch scalars become floats (anything with ``__float__``), other objects their ``str``.

Example:
    >>> from initwise.jsonio import dumps, loads
    >>> dumps({"ratio": float("inf"), "nan": float("nan"), "n": (1, 2)}, indent=None)
    '{"ratio": "inf", "nan": null, "n": [1, 2]}'
    >>> loads('{"ratio": "inf"}')
    {'ratio': inf}
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "json_safe", "loads", "restore_nonfinite"]

_INF = {"inf": math.inf, "-inf": -math.inf}


def json_safe(x: Any) -> Any:
    """``x`` as plain JSON data under the rule above (a new object; ``x`` is not changed).

    Args:
        x: any nesting of dicts, lists, tuples, sets, strings, numbers, ``None``, and scalars
            that convert with ``float()``.

    Returns:
        Data that :func:`json.dumps` writes with ``allow_nan=False``.
    """
    if isinstance(x, bool) or x is None or isinstance(x, (str, int)):
        return x
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in x]
    try:
        return json_safe(float(x))
    except (TypeError, ValueError):
        return str(x)


def restore_nonfinite(x: Any) -> Any:
    """The inverse of the infinity rule: ``"inf"`` / ``"-inf"`` strings back to floats.

    Args:
        x: parsed JSON data.

    Returns:
        A copy with every ``"inf"`` / ``"-inf"`` string (at any depth) replaced by the float.
    """
    if isinstance(x, str):
        return _INF.get(x, x)
    if isinstance(x, dict):
        return {k: restore_nonfinite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [restore_nonfinite(v) for v in x]
    return x


def dumps(x: Any, indent: int | None = 2) -> str:
    """JSON text of :func:`json_safe` ``(x)`` (strict JSON: never ``NaN`` or ``Infinity``).

    Args:
        x: the data.
        indent: as in :func:`json.dumps`. Defaults to 2.

    Returns:
        The text.
    """
    return json.dumps(json_safe(x), indent=indent, allow_nan=False)


def loads(s: str | bytes) -> Any:
    """Parse JSON text written by :func:`dumps`, infinities restored (:func:`restore_nonfinite`).

    Args:
        s: the JSON text.

    Returns:
        The data.

    Raises:
        json.JSONDecodeError: for text that is not JSON.
    """
    return restore_nonfinite(json.loads(s))
