"""Selecting modules by qualified-name glob or by type: ``{key: value}`` rules over a model.

One rule for every option that targets parts of a model (``overrides=`` of
:func:`initwise.apply` and :func:`initwise.init`, ``calibrate=`` of :func:`initwise.init`): a key
is a glob over qualified module names (``"encoder.*"``, ``"*.dt_proj"``) or an ``nn.Module``
type; a key covers the matched module's whole subtree; the first matching entry, in the order
given, wins. Keys that match nothing are refused, so a typo never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

__all__ = ["ModuleRules", "glob_match"]


def glob_match(name: str, pattern: str) -> bool:
    """``pattern`` matches the module ``name`` or one of its ancestors (a key covers a subtree).

    Example:
        >>> glob_match("blocks.0.dt_proj", "*.dt_proj"), glob_match("enc.0.fc", "enc"), \\
        ...     glob_match("dec.fc", "enc")
        (True, True, False)
    """
    parts = name.split(".") if name else []
    return any(fnmatchcase(".".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)) or (
        fnmatchcase(name, pattern)
    )


class ModuleRules:
    """Validated ``{name glob | module type: value}`` rules over one model.

    Args:
        rules: the mapping (``None`` for no rules).
        model: the model whose module names and types the keys must match.
        option: the option's name, for error messages (``"overrides"``, ``"calibrate"``).
        check_value: ``fn(key, value)`` raising ``TypeError``/``ValueError`` for a bad value.

    Raises:
        TypeError: ``rules`` is not a mapping, or a key is neither a str nor an ``nn.Module``
            type. ValueError: a key that matches no module of ``model``.
    """

    def __init__(self, rules: Mapping[Any, Any] | None, model: nn.Module, *, option: str,
                 check_value: Callable[[Any, Any], None] | None = None) -> None:
        self.option = option
        self.items: list[tuple[Any, Any]] = []
        self._modules = dict(model.named_modules())
        if rules is None:
            return
        if not isinstance(rules, Mapping):
            raise TypeError(f"{option}: expected a dict {{name glob or module type: value}}, "
                            f"got {type(rules).__name__}.")
        for key, value in rules.items():
            self._check_key(key)
            if check_value is not None:
                check_value(key, value)
            self.items.append((key, value))

    def _check_key(self, key: Any) -> None:
        names = list(self._modules)
        if isinstance(key, str):
            if not any(glob_match(n, key) for n in names):
                shown = ", ".join(repr(n) for n in names[1:8])
                raise ValueError(
                    f"{self.option}: {key!r} matches no module name (names look like {shown}); "
                    f"use a qualified module name or a glob such as 'encoder.*'."
                )
        elif isinstance(key, type) and issubclass(key, nn.Module):
            if not any(isinstance(m, key) for m in self._modules.values()):
                raise ValueError(f"{self.option}: the model contains no {key.__name__} module.")
        else:
            raise TypeError(
                f"{self.option}: keys must be module-name globs (str) or nn.Module types, got "
                f"{key!r}."
            )

    def __bool__(self) -> bool:
        return bool(self.items)

    def match(self, name: str, module: nn.Module) -> tuple[Any, Any] | None:
        """The first ``(key, value)`` whose glob matches ``name`` or one of its ancestors, or
        whose type ``module`` or one of its ancestors is; ``None`` if no key covers it."""
        for key, value in self.items:
            hit = glob_match(name, key) if isinstance(key, str) else self._is_in(name, module, key)
            if hit:
                return key, value
        return None

    def _is_in(self, name: str, module: nn.Module, key: type) -> bool:
        if isinstance(module, key):
            return True
        parts = name.split(".") if name else []
        return any(isinstance(self._modules.get(".".join(parts[:i])), key)
                   for i in range(len(parts)))
