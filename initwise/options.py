"""Options shared by every public entry point: one rule for randomness, one for the unknown.

* :func:`resolve_generator` -- ``generator=`` / ``seed=`` as :func:`initwise.apply`,
  :func:`initwise.init` and :func:`initwise.doctor` all take them: a ``torch.Generator``, or an
  int seed in ``[0, 2**64)`` (``generator=7`` and ``seed=7`` are the same), or neither: a seed is
  derived from the caller's global RNG *without advancing it*, so ``torch.manual_seed(s)`` before
  the call makes it reproducible. The seed used is returned, for reports.
* :func:`check_on_unknown` -- what to do with a module a component does not know:
  ``"warn"`` (default), ``"error"``, ``"skip"``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ON_UNKNOWN", "check_on_unknown", "check_seed", "resolve_generator"]

#: Valid values of every ``on_unknown=`` argument.
ON_UNKNOWN = ("warn", "error", "skip")
_SEED_LIMIT = 2**64


def check_on_unknown(value: Any, where: str) -> str:
    """Validate an ``on_unknown=`` argument of ``where`` (e.g. ``"init"``); return it.

    Raises:
        ValueError: naming ``where``, the value and the valid values.

    Example:
        >>> check_on_unknown("skip", "doctor")
        'skip'
    """
    if not isinstance(value, str) or value not in ON_UNKNOWN:
        raise ValueError(f"{where}: on_unknown={value!r}; valid values are {list(ON_UNKNOWN)}.")
    return value


def check_seed(seed: Any, where: str, arg: str = "seed") -> int:
    """Validate an int seed (not a bool, in ``[0, 2**64)``); return it as an int.

    Raises:
        TypeError: not an int (a bool is refused: ``True`` is not a seed).
        ValueError: out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{where}: {arg} must be a torch.Generator, an int seed or None; got "
                        f"{type(seed).__name__} ({seed!r}).")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"{where}: {arg}={seed} is outside [0, 2**64); pass a smaller "
                         f"non-negative seed.")
    return int(seed)


def derived_seed() -> int:
    """A seed drawn from a copy of the caller's global CPU RNG (the RNG is not advanced)."""
    peek = torch.Generator()
    peek.set_state(torch.get_rng_state())
    return int(torch.randint(2**62, (1,), generator=peek))


def resolve_generator(generator: Any = None, seed: Any = None, *,
                      where: str = "initwise") -> tuple[torch.Generator, int | None]:
    """The CPU generator for one call, and the seed it was made from.

    Args:
        generator: a ``torch.Generator`` (used as it is), an int seed, or None.
        seed: an int seed (exclusive with ``generator``), or None.
        where: the calling function, for error messages.

    Returns:
        ``(generator, seed)``; ``seed`` is ``None`` when the caller's own generator is used.

    Raises:
        ValueError: both given, or a seed out of range. TypeError: a value of another type.

    Example:
        >>> g, s = resolve_generator(seed=3)
        >>> h, _ = resolve_generator(3)  # an int generator= is a seed
        >>> s, torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=h))
        (3, True)
    """
    if generator is not None and seed is not None:
        raise ValueError(f"{where}: pass generator= or seed=, not both.")
    if isinstance(generator, torch.Generator):
        return generator, None
    if generator is not None:
        seed = check_seed(generator, where, "generator")
    elif seed is not None:
        seed = check_seed(seed, where)
    else:
        seed = derived_seed()
    return torch.Generator().manual_seed(seed), seed
