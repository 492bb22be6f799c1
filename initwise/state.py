"""One guard for everything code may change in a model: :class:`ModelState`.

:meth:`ModelState.capture` records, for every module of a model (each once, by its first
qualified name):

* the module's tables: the ``_parameters``, ``_buffers`` and ``_modules`` dictionaries as
  objects (so a parameter or buffer re-assigned, added or deleted is put back, and tied
  parameters stay one object), its class (``parametrize`` swaps it) and its non-persistent
  buffer names;
* every distinct tensor's storage (a ``detach()`` alias: no copy, so a ``.data = ...``
  replacement is undone) and ``requires_grad`` flag, and its value by the ``values`` mode:
  ``"copy"`` (a copy on the tensor's own device, or on the host with ``host=True``),
  ``"version"`` (the in-place version counter only) or ``"none"``;
* every parameter's ``.grad`` object (and its value when values are copied);
* every module's ``training`` flag and every hook dictionary (:data:`HOOK_DICTS`, those the
  installed torch has) with ``_is_full_backward_hook``;
* the global CPU RNG state and that of the CUDA devices asked for.

:meth:`ModelState.restore` puts all of it back (the same objects, the same bits) and
:meth:`ModelState.changed` says in a few words what differs. :func:`guarded` wraps the two
around a block (``restore="on_error"``: atomic transforms such as ``init``; ``"always"``:
read-only probes such as a trace or the doctor). :func:`seeded_rng` and :func:`preserve_rng`
fork the global RNG.

Cost: ``values="copy"`` copies every tensor (``copy_limit`` bounds which parameters are copied).
The cheap mode ``capture(model, cheap=True)`` (= ``values="version", rng=False``) allocates no
tensor storage: it copies the small tables and reads version counters -- what a training monitor
can afford every N steps (about 6 us per module on one CPU core: 12 ms for a 2001-module MLP).
Writes through ``.data`` (``p.data.add_(1)``) bypass the version counter and are seen only by a
copy. Meta tensors have no values to keep; an uninitialized (lazy) parameter is kept as an object
only (its materialization cannot be undone). No global state is kept.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    >>> state = ModelState.capture(net)
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(1.0)
    >>> net.eval().register_buffer("extra", torch.zeros(1))
    >>> state.changed()
    ["module '<root>': buffer 'extra' added", "module '<root>': training True -> False", \
"module '0': training True -> False", "module '1': training True -> False", \
"tensor '0.weight': values differ"]
    >>> state.restore()
    >>> state.changed()
    []
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = [
    "COPY_LIMIT",
    "HOOK_DICTS",
    "ModelState",
    "guarded",
    "hook_counts",
    "preserve_rng",
    "rng_devices",
    "seeded_rng",
]

#: Every hook dictionary of an ``nn.Module`` (torch >= 2.1; one missing in the installed torch
#: is skipped).
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
#: The ``values`` modes of :meth:`ModelState.capture`.
VALUES = ("copy", "version", "none")
#: The ``restore`` modes of :func:`guarded`.
RESTORE = ("on_error", "always")
#: Parameters larger than this are version-checked, not copied, by read-only probes (a trace,
#: the doctor): a forward does not write parameters, and copying a 2^24 x 64 table costs more.
COPY_LIMIT = 2**20

_TABLES = ("_parameters", "_buffers", "_modules")
_KIND = {"_parameters": "parameter", "_buffers": "buffer", "_modules": "submodule"}


def hook_counts(model: nn.Module) -> dict[str, int]:
    """Number of hooks in each of :data:`HOOK_DICTS` over ``model`` and its submodules."""
    return {name: sum(len(getattr(m, name, None) or {}) for m in model.modules())
            for name in HOOK_DICTS}


def rng_devices(model: nn.Module) -> list[int]:
    """CUDA device indices the model's parameters and buffers live on."""
    return sorted({t.device.index or 0 for t in (*model.parameters(), *model.buffers())
                   if t.device.type == "cuda"})


def _cuda_devices(devices: Iterable[int | str | torch.device] | None) -> list[int]:
    if devices is None:
        ready = torch.cuda.is_available() and torch.cuda.is_initialized()
        return list(range(torch.cuda.device_count())) if ready else []
    out = []
    for d in devices:
        if isinstance(d, bool) or not isinstance(d, (int, str, torch.device)):
            raise TypeError(f"devices: expected CUDA device indices (int) or torch.device, got "
                            f"{d!r}.")
        out.append(d if isinstance(d, int) else (torch.device(d).index or 0))
    return sorted(set(out))


class _Rng:
    """The global CPU RNG state and the states of some CUDA devices."""

    def __init__(self, devices: list[int]) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = {d: torch.cuda.get_rng_state(d) for d in devices}

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        for d, s in self.cuda.items():
            torch.cuda.set_rng_state(s, d)

    def changed(self) -> list[str]:
        out = [] if torch.equal(torch.get_rng_state(), self.cpu) else ["global CPU RNG state"]
        return out + [f"CUDA RNG state of device {d}" for d, s in self.cuda.items()
                      if not torch.equal(torch.cuda.get_rng_state(d), s)]


def _layout(t: torch.Tensor) -> tuple:
    """Where a tensor's data lives; a different layout means ``.data`` was replaced."""
    try:
        return (t.device, t.dtype, t.shape, t.stride(), t.storage_offset(), t.data_ptr())
    except (RuntimeError, NotImplementedError):  # sparse or storage-less tensors
        return (t.device, t.dtype, t.shape)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-equal (so a tensor left unchanged is not written: its version counter stays and an
    autograd graph that saved it stays valid). -0.0 vs 0.0 differ; any NaN counts as changed."""
    if a.device.type == "meta" or a.device != b.device or a.layout != b.layout:
        return False
    if a.layout == torch.sparse_coo:
        a, b = a.coalesce(), b.coalesce()
        return _same_bits(a.indices(), b.indices()) and _same_bits(a.values(), b.values())
    if a.layout != torch.strided:  # CSR and others: written back, never compared
        return False
    if not torch.equal(a, b):
        return False
    if a.is_floating_point():
        return torch.equal(torch.signbit(a), torch.signbit(b))
    return True


def _same_table(a: dict, b: dict) -> bool:
    """Same keys, in the same order, holding the same objects."""
    if len(a) != len(b):
        return False
    return not a or all(
        ka == kb and va is vb for (ka, va), (kb, vb) in zip(a.items(), b.items()))


class _ModuleState:
    """One module's tables, class, mode and hooks (references and small dict copies only).

    Attributes are read from the module's ``__dict__`` (``getattr`` on a module is slow when it
    misses), and only non-empty hook dictionaries are copied.
    """

    __slots__ = ("cls", "full_backward", "hooks", "module", "name", "non_persistent",
                 "shadowed", "tables", "training")

    def __init__(self, module: nn.Module, name: str) -> None:
        d = module.__dict__
        self.module, self.name, self.cls = module, name or "<root>", type(module)
        self.training = d.get("training")
        self.tables = [(t, d[t], dict(d[t])) for t in _TABLES if t in d]
        self.shadowed = {k for _, _, saved in self.tables for k in saved if k in d}
        self.hooks = [(a, h, dict(h) if h else None) for a in HOOK_DICTS
                      if isinstance(h := d.get(a), dict)]
        npb = d.get("_non_persistent_buffers_set")
        self.non_persistent = None if npb is None else set(npb)
        self.full_backward = d.get("_is_full_backward_hook")

    def restore(self) -> None:
        m, d = self.module, self.module.__dict__
        if type(m) is not self.cls:
            m.__class__ = self.cls
        for table, obj, saved in self.tables:
            if d.get(table) is not obj:
                d[table] = obj
            if not _same_table(obj, saved):
                obj.clear()
                obj.update(saved)
            for key in saved:  # an attribute set meanwhile would shadow the table entry
                if key in d and key not in self.shadowed:
                    del d[key]
        if d.get("training") is not self.training:
            d["training"] = self.training
        for attr, obj, saved in self.hooks:
            if d.get(attr) is not obj:
                d[attr] = obj
            if not _same_table(obj, saved or {}):
                obj.clear()
                obj.update(saved or {})
        if d.get("_non_persistent_buffers_set") != self.non_persistent:
            d["_non_persistent_buffers_set"] = (None if self.non_persistent is None
                                                else set(self.non_persistent))
        if d.get("_is_full_backward_hook") is not self.full_backward:
            d["_is_full_backward_hook"] = self.full_backward

    def changed(self) -> list[str]:
        m, d, where = self.module, self.module.__dict__, f"module {self.name!r}"
        out = [] if type(m) is self.cls else [f"{where}: class {self.cls.__name__} -> "
                                              f"{type(m).__name__}"]
        for table, _, saved in self.tables:
            current, kind = d.get(table, {}), _KIND[table]
            out += [f"{where}: {kind} {k!r} added" for k in current if k not in saved]
            out += [f"{where}: {kind} {k!r} removed" for k in saved if k not in current]
            out += [f"{where}: {kind} {k!r} replaced" for k, v in saved.items()
                    if k in current and current[k] is not v]
            out += [f"{where}: attribute {k!r} shadows its {kind}" for k in saved
                    if k in d and k not in self.shadowed]
        if d.get("training") is not self.training:
            out.append(f"{where}: training {self.training} -> {d.get('training')}")
        for attr, obj, saved in self.hooks:
            now = d.get(attr)
            if now is not obj or not _same_table(now, saved or {}):
                out.append(f"{where}: {attr} {len(saved or {})} -> {len(now or {})} hook(s)")
        return out


class _TensorState:
    """One distinct parameter or buffer: its storage alias, flag and value (copy or version)."""

    __slots__ = ("alias", "host", "layout", "name", "requires_grad", "tensor", "tracked",
                 "value", "version")

    def __init__(self, t: torch.Tensor, name: str, mode: str, host: bool) -> None:
        self.tensor, self.name, self.requires_grad = t, name, t.requires_grad
        self.alias, self.layout, self.version = t.detach(), _layout(t), t._version
        if t.device.type == "meta":
            mode = "none"  # no values to keep
        self.value = _copy(t, host) if mode == "copy" else None
        self.tracked, self.host = mode == "version", host

    def restore_data(self) -> None:
        t, replaced = self.tensor, _layout(self.tensor) != self.layout
        if replaced:
            t.data = self.alias
        if self.value is not None and self._differs(replaced):
            t.copy_(self.value)
        if t.requires_grad != self.requires_grad and t.is_leaf:
            t.requires_grad_(self.requires_grad)

    def _differs(self, replaced: bool) -> bool:
        """Whether the values differ from the copy (a host copy: whether storage or version
        counter moved, to spare a device-to-host transfer)."""
        if self.host:
            return replaced or self.tensor._version != self.version
        t = self.tensor
        return not (t.shape == self.value.shape and _same_bits(t, self.value))

    def changed(self) -> list[str]:
        t, where = self.tensor, f"tensor {self.name!r}"
        replaced = _layout(t) != self.layout
        out = [f"{where}: storage replaced (.data)"] if replaced else []
        if self.value is not None and self._differs(replaced):
            out.append(f"{where}: values differ")
        if self.moved():
            out.append(f"{where}: written in place (version counter moved)")
        if t.requires_grad != self.requires_grad:
            out.append(f"{where}: requires_grad {self.requires_grad} -> {t.requires_grad}")
        return out

    def moved(self) -> bool:
        return self.tracked and self.tensor._version != self.version


def _grad_differs(g: torch.Tensor | None, value: torch.Tensor | None, version: int) -> bool:
    if g is None or value is None:
        return False
    if g.device != value.device:  # a host copy: only a write moves the version counter
        return g._version != version
    return not (g.shape == value.shape and _same_bits(g, value))


def _check_capture(model: Any, values: Any, copy_limit: Any, host: Any, grads: Any,
                   rng: Any, cheap: Any) -> tuple[str, bool]:
    """Validate :meth:`ModelState.capture`'s options; returns (values mode, rng flag)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"ModelState.capture: model must be a torch.nn.Module, got "
                        f"{type(model).__name__}.")
    for name, flag in (("host", host), ("grads", grads), ("cheap", cheap)):
        if not isinstance(flag, bool):
            raise TypeError(f"ModelState.capture: {name} must be a bool, got {flag!r}.")
    if rng is not None and not isinstance(rng, bool):
        raise TypeError(f"ModelState.capture: rng must be a bool or None, got {rng!r}.")
    if values is not None and values not in VALUES:
        raise ValueError(f"ModelState.capture: values={values!r}; valid values are {VALUES}.")
    if copy_limit is not None and (isinstance(copy_limit, bool) or not isinstance(
            copy_limit, int) or copy_limit < 0):
        raise ValueError(f"ModelState.capture: copy_limit={copy_limit!r}; expected None or a "
                         f"non-negative int (elements).")
    if cheap and (values == "copy" or rng):
        raise ValueError("ModelState.capture: cheap=True means values='version', rng=False; "
                         "drop cheap=True to copy values or record the RNG.")
    if cheap:
        return values or "version", False
    return values or "copy", True if rng is None else rng


def _copy(t: torch.Tensor, host: bool) -> torch.Tensor:
    t = t.detach()
    if host and t.device.type != "meta":
        return t.to("cpu", copy=True)
    return t.clone()


class ModelState:
    """What code may change in a model, captured by :meth:`capture` and put back by
    :meth:`restore`; see the module docstring for the full list and the costs.

    Attributes:
        values: the values mode it was captured with (``"copy"``, ``"version"``, ``"none"``).
    """

    def __init__(self, modules: list[_ModuleState], tensors: list[_TensorState],
                 grads: list[tuple[torch.Tensor, Any, Any, int]], rng: _Rng | None,
                 values: str) -> None:
        self._modules, self._tensors, self._grads, self._rng = modules, tensors, grads, rng
        self.values = values

    @classmethod
    def capture(cls, model: nn.Module, *, values: str | None = None,
                copy_limit: int | None = None, host: bool = False, grads: bool = True,
                rng: bool | None = None, devices: Iterable[int] | None = None,
                cheap: bool = False) -> ModelState:
        """Record ``model``'s state (tables, values, flags, grads, modes, hooks, RNG).

        Args:
            model: the model.
            values: ``"copy"`` (default) copies every tensor, ``"version"`` records only the
                in-place version counters (:meth:`restore` then raises if one moved),
                ``"none"`` records neither (objects, flags, modes and hooks only).
            copy_limit: with ``values="copy"``, parameters (and their ``.grad``) with more
                elements are version-checked instead of copied. Buffers are always copied: a
                forward legitimately updates them in place (BatchNorm statistics, a queue).
                Default ``None``: no limit.
            host: keep copies on the host instead of on each tensor's device (default
                ``False``: device copies are fast; ``True`` spares device memory, and a
                host-copied tensor is restored only if its storage or version counter moved).
            grads: record each parameter's ``.grad`` object, and its value when values are
                copied (default ``True``).
            rng: record the global RNG states (default ``True``, ``False`` in cheap mode).
            devices: CUDA device indices whose RNG state is recorded; ``None`` (default): every
                CUDA device if CUDA is initialized, none otherwise.
            cheap: shorthand for ``values="version", rng=False`` (allocates no tensor storage;
                what a monitor can afford every N steps).

        Returns:
            The :class:`ModelState`.

        Raises:
            TypeError: ``model`` is not an ``nn.Module``, or a flag has the wrong type.
            ValueError: an unknown ``values`` mode, a negative ``copy_limit``, or ``cheap=True``
                with ``values="copy"`` or ``rng=True``.
        """
        mode, rng = _check_capture(model, values, copy_limit, host, grads, rng, cheap)
        modules = [_ModuleState(m, n) for n, m in model.named_modules()]
        tensors: dict[int, _TensorState] = {}
        params: dict[int, torch.Tensor] = {}
        for ms in modules:
            prefix = "" if ms.name == "<root>" else f"{ms.name}."
            for table, _, saved in ms.tables:
                for key, t in saved.items():
                    if table == "_modules" or t is None or id(t) in tensors or isinstance(
                            t, nn.parameter.UninitializedTensorMixin):
                        continue  # a lazy parameter has no data: its object is kept
                    is_param = table == "_parameters"
                    big = is_param and copy_limit is not None and t.numel() > copy_limit
                    tmode = "version" if mode == "copy" and big else mode
                    tensors[id(t)] = _TensorState(t, prefix + key, tmode, host)
                    if is_param:
                        params[id(t)] = t
        grad_list = []
        if grads:
            for p in params.values():
                g, copied = p.grad, None
                if g is not None and tensors[id(p)].value is not None:
                    copied = _copy(g, host)
                grad_list.append((p, g, copied, -1 if g is None else g._version))
        state = _Rng(_cuda_devices(devices)) if rng else None
        return cls(modules, list(tensors.values()), grad_list, state, mode)

    def restore(self) -> None:
        """Put the model (and the RNG, if captured) back exactly as captured.

        Raises:
            RuntimeError: a tensor tracked by version counter only was written in place (named;
                everything else has been restored).
        """
        for ms in self._modules:
            ms.restore()
        with torch.no_grad():
            for ts in self._tensors:
                ts.restore_data()
            for p, g, value, version in self._grads:
                if p.grad is not g:
                    p.grad = g
                if _grad_differs(g, value, version):
                    g.copy_(value)
        if self._rng is not None:
            self._rng.restore()
        moved = [ts.name for ts in self._tensors if ts.moved()]
        if moved:
            raise RuntimeError(
                f"tensor(s) {moved} were written in place while only their version counter was "
                f"recorded (values='version' or copy_limit), so they cannot be restored. Do not "
                f"modify parameters inside forward(), or capture with values='copy' and "
                f"copy_limit=None.")

    def changed(self) -> list[str]:
        """What differs from the captured state, in short phrases (``[]``: nothing)."""
        out = [line for ms in self._modules for line in ms.changed()]
        out += [line for ts in self._tensors for line in ts.changed()]
        names = {id(ts.tensor): ts.name for ts in self._tensors}
        for p, g, value, version in self._grads:
            if p.grad is not g:
                out.append(f"tensor {names[id(p)]!r}: .grad replaced")
            elif _grad_differs(g, value, version):
                out.append(f"tensor {names[id(p)]!r}: .grad values differ")
        return out + (self._rng.changed() if self._rng is not None else [])

    def __repr__(self) -> str:
        return (f"ModelState({len(self._modules)} modules, {len(self._tensors)} tensors, "
                f"values={self.values!r}, rng={self._rng is not None})")


@contextmanager
def guarded(model: nn.Module, *, restore: str = "on_error",
            **capture_kw: Any) -> Iterator[ModelState]:
    """Run a block on ``model`` with its state captured, and restore it on error or always.

    Args:
        model: the model to protect.
        restore: ``"on_error"`` (default; atomic transforms: a block that raises leaves the
            model as it was) or ``"always"`` (read-only probes: a trace, the doctor).
        **capture_kw: options of :meth:`ModelState.capture` (``values``, ``copy_limit``,
            ``host``, ``grads``, ``rng``, ``devices``, ``cheap``).

    Yields:
        The :class:`ModelState` captured on entry.

    Raises:
        ValueError: an unknown ``restore`` mode (or a capture option, see
            :meth:`ModelState.capture`).
        RuntimeError: from :meth:`ModelState.restore`, if a version-tracked tensor moved.
    """
    if restore not in RESTORE:
        raise ValueError(f"guarded: restore={restore!r}; valid values are {RESTORE}.")
    state = ModelState.capture(model, **capture_kw)
    try:
        yield state
    except BaseException:
        state.restore()
        raise
    if restore == "always":
        state.restore()


@contextmanager
def preserve_rng(devices: Iterable[int | str | torch.device] | None = None) -> Iterator[None]:
    """Restore the global CPU (and CUDA) RNG states on exit, whatever the block drew.

    Args:
        devices: CUDA device indices whose state is restored too; ``None`` (default): every
            CUDA device if CUDA is initialized.
    """
    saved = _Rng(_cuda_devices(devices))
    try:
        yield
    finally:
        saved.restore()


@contextmanager
def seeded_rng(generator_or_seed: torch.Generator | int,
               devices: Iterable[int | str | torch.device] | None = None) -> Iterator[None]:
    """Run code that draws from the GLOBAL RNG reproducibly, leaving the caller's state intact.

    The global CPU RNG and the CUDA devices' RNGs are forked (restored on exit) and seeded: with
    ``generator_or_seed`` itself if it is an int, else with one draw of the generator.

    Args:
        generator_or_seed: a ``torch.Generator`` (one draw is consumed) or a non-negative int.
        devices: CUDA device indices forked and seeded too; ``None`` (default): every CUDA
            device if CUDA is initialized.

    Yields:
        Nothing; the block runs with the seeded global RNG.

    Raises:
        TypeError: ``generator_or_seed`` is neither a generator nor an int.
        ValueError: a negative seed.

    Example:
        >>> with seeded_rng(0):
        ...     a = torch.rand(2)
        >>> with seeded_rng(0):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b) and torch.equal(a, torch.rand(2, generator=torch.Generator(
        ...     ).manual_seed(0)))
        True
    """
    g = generator_or_seed
    if isinstance(g, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    elif isinstance(g, int) and not isinstance(g, bool):
        if g < 0:
            raise ValueError(f"seeded_rng: seed={g!r}; expected a non-negative int.")
        seed = g
    else:
        raise TypeError(f"seeded_rng: expected a torch.Generator or an int seed, got "
                        f"{type(g).__name__}.")
    cuda = _cuda_devices(devices)
    saved = _Rng(cuda)
    try:
        torch.default_generator.manual_seed(seed)
        for d in cuda:
            torch.cuda.default_generators[d].manual_seed(seed)
        yield
    finally:
        saved.restore()
