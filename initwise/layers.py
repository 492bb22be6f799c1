"""THE layer registry: what a module type is to initwise (kind, fans, blocks, plan, calibration).

Every component that asks "what is this layer?" -- the graph tracers, :func:`initwise.fans`,
the policies of :func:`initwise.apply`, :func:`initwise.init` and the doctor -- asks
:func:`layer_type` / :func:`layer_kind`. torch's layer types (``nn.Linear``, ``ConvNd``,
``ConvTransposeNd``, ``Embedding``, ``EmbeddingBag``, ``Bilinear``, the RNNs and cells,
``MultiheadAttention``, the norms), ``initwise.nn.SparseLinear`` and, by qualified class name
(looked up without importing transformers), Hugging Face's ``Conv1D`` (GPT-2's projections:
kind ``"linear"``, weight ``(in, out)``, units along axis 1) and its RMS norms (Llama, Mistral,
Mixtral, Qwen2/3, Phi-3, T5/MT5 ``LayerNorm``: kind ``"norm"``) are its built-in entries;
:func:`register_layer` adds yours (or replaces one, ``overwrite=True``), :func:`unregister_layer`
removes it and the built-in entry is in force again.

Lookup walks the module's class MRO: the nearest registered class decides (a user entry before
a built-in one of the same class); fields an entry leaves ``None`` (``fans``, ``blocks``,
``plan``, ``unit_dim``, ``unit_axis``) are taken from the next registered class up the MRO, so
a registered ``nn.Linear`` subclass keeps Linear's fans.

Unregistered modules (:func:`layer_kind`): an activation module (see
:func:`initwise.activations.register_activation`) is no layer; a module defining
``initwise_fans`` whose own ``weight`` is a 2-D tensor is ``"linear"`` (a dense layer whose fans
it reports); any other module holding parameters directly, with no parametrized children, is
``"other"``; the rest (containers, dropout...) is no layer. The class attributes
``initwise_fans(self, name)`` and ``initwise_blocks(self, name)`` are asked before any entry's
``fans`` / ``blocks`` (:mod:`initwise.schemes.fans`).

The per-type fans rules live here too (the table is in :mod:`initwise.schemes.fans`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Scale(nn.Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.weight = nn.Parameter(torch.ones(n, n))
    ...     def forward(self, x):
    ...         return x @ self.weight.T
    >>> _ = register_layer(Scale, kind="linear", fans=lambda m, name: Fans(4, 4), calibrate=False)
    >>> layer_kind(Scale(4)), layer_type(Scale(4)).calibrate
    ('linear', False)
    >>> unregister_layer(Scale)
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.instancenorm import _InstanceNorm

from initwise.activations import module_activation

__all__ = [
    "LAYER_KINDS",
    "REMEDY",
    "Block",
    "Fans",
    "LayerType",
    "has_plans",
    "layer_kind",
    "layer_type",
    "register_layer",
    "unknown_param",
    "unregister_layer",
]

LAYER_KINDS = (
    "linear", "conv", "conv_transpose", "embedding", "embedding_bag", "bilinear", "rnn",
    "attention", "norm", "other",
)

REMEDY = (
    "pass fans=Fans(fan_in, fan_out, receptive_field) to the scheme explicitly, or define "
    "`initwise_fans(self, name) -> Fans` on the module (or initwise.register_layer(type, "
    "kind=..., fans=fn))"
)


@dataclass(frozen=True)
class Fans:
    """Fan-in, fan-out and receptive field of one weight matrix (or one block of it).

    Attributes:
        fan_in: terms summed into one output element (forward pass).
        fan_out: terms summed into one input-gradient element (backward pass).
        receptive_field: kernel taps (1 for dense layers).

    Unpacks like a tuple: ``fan_in, fan_out, rf = fans(conv)``.
    """

    fan_in: int
    fan_out: int
    receptive_field: int = 1

    def __post_init__(self) -> None:
        for field_name in ("fan_in", "fan_out", "receptive_field"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TypeError(
                    f"Fans.{field_name} must be a non-negative int, got {value!r}"
                )

    def __iter__(self) -> Iterator[int]:
        return iter((self.fan_in, self.fan_out, self.receptive_field))

    @property
    def fan_avg(self) -> float:
        """The mean ``(fan_in + fan_out) / 2`` (Glorot's and Keras' ``fan_avg``)."""
        return (self.fan_in + self.fan_out) / 2


@dataclass(frozen=True)
class Block:
    """One block of a packed weight: rows ``rows`` along dim 0, with its own fans.

    Attributes:
        label: ``"q"``, ``"k"``, ``"v"``; ``"input"``, ``"forget"``, ``"cell"``, ``"output"``
            (LSTM); ``"reset"``, ``"update"``, ``"new"`` (GRU); ``"all"`` for an unpacked weight.
        rows: the slice of dim 0 this block occupies.
        fans: the block's fans.
    """

    label: str
    rows: slice
    fans: Fans


# ------------------------------------------------------------------------------ fans rules
def unknown_param(m: nn.Module, name: str, valid: list[str]) -> ValueError:
    """The error for a parameter a fans rule does not know."""
    return ValueError(
        f"initwise does not know the fans of {type(m).__name__}.{name} (it knows {valid}); "
        f"{REMEDY}"
    )


def _avg_taps(kernel: tuple[int, ...], stride: tuple[int, ...], channels: int) -> int:
    """``channels * prod(kernel) / prod(stride)`` rounded half up, at least 1."""
    exact = channels * math.prod(kernel) / math.prod(stride)
    return max(1, math.floor(exact + 0.5))


def _linear_fans(m: nn.Linear, name: str) -> Fans:
    if name not in ("weight", "bias"):
        raise unknown_param(m, name, ["weight", "bias"])
    return Fans(m.in_features, m.out_features, 1)


def _bilinear_fans(m: nn.Bilinear, name: str) -> Fans:
    if name not in ("weight", "bias"):
        raise unknown_param(m, name, ["weight", "bias"])
    return Fans(m.in1_features * m.in2_features, m.out_features * m.in2_features, 1)


def _conv_fans(m: _ConvNd, name: str) -> Fans:
    if name not in ("weight", "bias"):
        raise unknown_param(m, name, ["weight", "bias"])
    k, s, g = tuple(m.kernel_size), tuple(m.stride), m.groups
    rf = math.prod(k)
    if m.transposed:
        return Fans(_avg_taps(k, s, m.in_channels // g), m.out_channels // g * rf, rf)
    return Fans(m.in_channels // g * rf, _avg_taps(k, s, m.out_channels // g), rf)


def _transposed_linear_fans(m: nn.Module, name: str) -> Fans:
    """A dense layer storing its weight as ``(in, out)``, ``y = x W + b`` (Hugging Face
    ``Conv1D``, GPT-2's projections): fan-in ``weight.shape[0]``, fan-out ``weight.shape[1]``."""
    if name not in ("weight", "bias"):
        raise unknown_param(m, name, ["weight", "bias"])
    w = m._parameters.get("weight")
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise ValueError(
            f"initwise: {type(m).__name__}.weight should be a 2-D (in, out) tensor; got "
            f"{None if w is None else tuple(w.shape)}. {REMEDY}")
    return Fans(int(w.shape[0]), int(w.shape[1]), 1)


def _embedding_fans(m: nn.Embedding | nn.EmbeddingBag, name: str) -> Fans:
    if name != "weight":
        raise unknown_param(m, name, ["weight"])
    return Fans(1, m.embedding_dim, 1)


def _mha_proj_fans(m: nn.MultiheadAttention, which: str) -> Fans:
    return Fans({"q": m.embed_dim, "k": m.kdim, "v": m.vdim}[which], m.embed_dim, 1)


def _mha_fans(m: nn.MultiheadAttention, name: str) -> Fans:
    if name in ("in_proj_weight", "in_proj_bias", "q_proj_weight"):
        return _mha_proj_fans(m, "q")
    if name in ("k_proj_weight", "v_proj_weight"):
        return _mha_proj_fans(m, name[0])
    if name in ("bias_k", "bias_v"):
        return Fans(1, m.embed_dim, 1)
    raise unknown_param(m, name, [
        "in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight",
        "bias_k", "bias_v", "out_proj.weight", "out_proj.bias",
    ])


def _mha_blocks(m: nn.MultiheadAttention, name: str) -> list[Block]:
    if name.startswith("in_proj_"):
        e = m.embed_dim
        return [Block(lbl, slice(i * e, (i + 1) * e), _mha_proj_fans(m, lbl))
                for i, lbl in enumerate("qkv")]
    return [_one_block(m, name, _mha_fans(m, name))]


_RNN_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)(_l\d+)?(_reverse)?$")


def _rnn_fans(m: nn.RNNBase | nn.RNNCellBase, name: str) -> Fans:
    match = _RNN_PARAM.match(name)
    if match is None:
        raise unknown_param(m, name, ["weight_ih_l{k}[_reverse]", "weight_hh_l{k}[_reverse]",
                                      "bias_ih_l{k}[_reverse]", "bias_hh_l{k}[_reverse]",
                                      "weight_hr_l{k}[_reverse]"])
    kind, suffix = match.group(2), (match.group(3) or "") + (match.group(4) or "")
    weight = getattr(m, f"weight_{kind}{suffix}")
    fan_out = int(weight.shape[0]) if kind == "hr" else m.hidden_size
    return Fans(int(weight.shape[1]), fan_out, 1)


def _gate_blocks(m: nn.Module, name: str) -> list[Block]:
    """Gate blocks of an RNN weight/bias in torch's gate order (LSTM 4, GRU 3, plain RNN 1)."""
    if isinstance(m, (nn.LSTM, nn.LSTMCell)):
        labels: tuple[str, ...] = ("input", "forget", "cell", "output")
    elif isinstance(m, (nn.GRU, nn.GRUCell)):
        labels = ("reset", "update", "new")
    else:
        labels = ()
    f, rows = _rnn_fans(m, name), _rows(m, name)
    if not labels or not _RNN_PARAM.match(name) or name.startswith("weight_hr"):
        return [_one_block(m, name, f)]
    h = rows // len(labels)
    return [Block(lbl, slice(i * h, (i + 1) * h), f) for i, lbl in enumerate(labels)]


def _rows(m: nn.Module, name: str) -> int:
    t = getattr(m, name)
    return int(t.shape[0]) if t.dim() else 1


def _one_block(m: nn.Module, name: str, f: Fans) -> Block:
    return Block("all", slice(0, _rows(m, name)), f)


def _conv_transpose_axis(m: nn.Module) -> int | None:
    return 1 if m.groups == 1 else None


# ------------------------------------------------------------------------------ the registry
Plan = Callable[[str, nn.Module, Any], Any]


@dataclass(frozen=True)
class LayerType:
    """What initwise knows about one module type.

    The ``kind`` chooses the policy rule, which reads what that rule needs: ``"linear"``,
    ``"conv"``, ``"conv_transpose"``, ``"bilinear"``: a ``weight`` (and optional ``bias``) with
    fans (``N(0, g^2 / fan_in)``; the orthogonal and looks-linear draws are for ``nn.Linear``
    only); ``"embedding"``/``"embedding_bag"``: ``nn.Embedding``'s attributes
    (``num_embeddings``, ``embedding_dim``, ``padding_idx``); ``"norm"``: weight 1, bias 0;
    ``"other"``: the module's ``reset_parameters``, else bias-named parameters 0 and the rest
    to ``on_unknown`` -- or whatever ``plan`` says.

    Attributes:
        cls: the registered class (instances of subclasses match too).
        kind: one of :data:`LAYER_KINDS`.
        fans: ``fans(module, param_name) -> Fans``, or ``None`` (the module's ``initwise_fans``).
        blocks: ``blocks(module, param_name) -> list[Block]`` for packed weights, or ``None``
            (one block).
        plan: ``plan(qualified_name, module, ctx) -> decision | None`` consulted by
            :func:`initwise.apply` for this type AND every module inside it, before the
            policy: a ``ModulePlan``, ``"reset_parameters"``, ``"keep"``/``"skip"`` (leave the
            module's own values), or ``None`` (the policy's rule). Overrides still win.
        calibrate: whether :func:`initwise.init` may calibrate the type: a bool, or
            ``{parameter name relative to the module: bool}`` (``{"A_log": False,
            "dt_proj.bias": False}``), unnamed parameters calibrated.
        unit_dim: the output dimension indexing units (-1 dense, 1 convolutions), or ``None``.
        unit_axis: the weight axis indexing output units, an int, ``fn(module) -> int | None``,
            or ``None`` (unknown).
        owner: who registered it (``"initwise (built-in)"`` or the registering module).
    """

    cls: type
    kind: str
    fans: Callable[[nn.Module, str], Fans] | None = None
    blocks: Callable[[nn.Module, str], list[Block]] | None = None
    plan: Plan | None = None
    calibrate: bool | Mapping[str, bool] = True
    unit_dim: int | None = None
    unit_axis: int | Callable[[nn.Module], int | None] | None = None
    owner: str = ""

    def axis(self, module: nn.Module) -> int | None:
        """The weight axis of ``module`` indexing its output units (``unit_axis`` resolved)."""
        return self.unit_axis(module) if callable(self.unit_axis) else self.unit_axis

    def calibrates(self, param: str) -> bool:
        """Whether ``init`` may calibrate parameter ``param`` (relative name) of this type."""
        if isinstance(self.calibrate, Mapping):
            return bool(self.calibrate.get(param, True))
        return bool(self.calibrate)


_BUILTIN_OWNER = "initwise (built-in)"
_INHERITED = ("fans", "blocks", "plan", "unit_dim", "unit_axis")


def _builtin(cls: type, kind: str, fans: Any = None, blocks: Any = None, unit_dim: Any = None,
             unit_axis: Any = None) -> LayerType:
    return LayerType(cls, kind, fans, blocks, None, True, unit_dim, unit_axis, _BUILTIN_OWNER)


_NORMS = tuple(t for t in (_BatchNorm, nn.SyncBatchNorm, _InstanceNorm, nn.LayerNorm,
                           nn.GroupNorm, getattr(nn, "RMSNorm", None)) if t is not None)
_BUILTIN: dict[type, LayerType] = {t.cls: t for t in (
    _builtin(nn.Linear, "linear", _linear_fans, None, -1, 0),
    _builtin(nn.Bilinear, "bilinear", _bilinear_fans, None, -1, 0),
    _builtin(_ConvNd, "conv", _conv_fans, None, 1, 0),
    _builtin(_ConvTransposeNd, "conv_transpose", _conv_fans, None, 1, _conv_transpose_axis),
    _builtin(nn.Embedding, "embedding", _embedding_fans, None, -1, 1),
    _builtin(nn.EmbeddingBag, "embedding_bag", _embedding_fans, None, -1, 1),
    _builtin(nn.MultiheadAttention, "attention", _mha_fans, _mha_blocks),
    _builtin(nn.RNNBase, "rnn", _rnn_fans, _gate_blocks),
    _builtin(nn.RNNCellBase, "rnn", _rnn_fans, _gate_blocks),
    *(_builtin(t, "norm") for t in _NORMS),
)}
#: Hugging Face RMS norms (``weight`` initialized to ones, no bias, ``y = weight * x / rms(x)``),
#: checked in transformers 5.x. Not Gemma's: its ``weight`` is an offset (``1 + weight``, zeros).
_HF_RMS_NORMS = (
    "llama.modeling_llama.LlamaRMSNorm", "mistral.modeling_mistral.MistralRMSNorm",
    "mixtral.modeling_mixtral.MixtralRMSNorm", "qwen2.modeling_qwen2.Qwen2RMSNorm",
    "qwen3.modeling_qwen3.Qwen3RMSNorm", "phi3.modeling_phi3.Phi3RMSNorm",
    "t5.modeling_t5.T5LayerNorm", "mt5.modeling_mt5.MT5LayerNorm",
)
#: Layer types by qualified class name, so that their modules are never imported here (the entry
#: gets its cls on lookup): initwise's own (initwise.nn imports the schemes, which import this
#: registry) and other libraries' (``import initwise`` must not import transformers).
_BUILTIN_BY_NAME: dict[str, LayerType] = {
    "initwise.nn.sparse_linear.SparseLinear": _builtin(nn.Module, "linear", None, None, -1, 1),
    "transformers.pytorch_utils.Conv1D": _builtin(nn.Module, "linear", _transposed_linear_fans,
                                                  None, -1, 1),
    **{f"transformers.models.{name}": _builtin(nn.Module, "norm") for name in _HF_RMS_NORMS},
}
_USER: dict[type, LayerType] = {}


def _builtin_of(klass: type) -> LayerType | None:
    entry = _BUILTIN.get(klass)
    if entry is None:
        named = _BUILTIN_BY_NAME.get(f"{klass.__module__}.{klass.__qualname__}")
        entry = replace(named, cls=klass) if named is not None else None
    return entry


def register_layer(cls: type[nn.Module], *, kind: str,
                   fans: Callable[[nn.Module, str], Fans] | None = None,
                   blocks: Callable[[nn.Module, str], list[Block]] | None = None,
                   plan: Plan | None = None, calibrate: bool | Mapping[str, bool] = True,
                   unit_dim: int | None = None,
                   unit_axis: int | Callable[[nn.Module], int | None] | None = None,
                   overwrite: bool = False) -> type[nn.Module]:
    """Register a module type as a layer for the graph, fans, ``apply``, ``init`` and doctor.

    Args:
        cls: an ``nn.Module`` subclass (its subclasses match too, unless registered themselves).
        kind: the layer kind, one of :data:`LAYER_KINDS` (``"linear"`` gets the dense rules).
        fans: ``fans(module, param_name) -> Fans``. Default ``None``: the module's
            ``initwise_fans``, else the nearest registered base class's rule.
        blocks: ``blocks(module, param_name) -> list[Block]`` for packed weights. Default
            ``None``: inherited, else one block.
        plan: ``plan(qualified_name, module, ctx) -> decision | None``, consulted by ``apply``
            for this type and every module inside it (see :class:`LayerType`). Default ``None``.
        calibrate: ``False`` keeps :func:`initwise.init` from calibrating the type, or a
            ``{relative parameter name: bool}`` dict. Default ``True``.
        unit_dim: output dimension indexing units. Default ``None`` (inherited).
        unit_axis: weight axis indexing output units (int or ``fn(module)``). Default ``None``.
        overwrite: replace an existing registration of ``cls`` (a built-in one too;
            :func:`unregister_layer` then restores it). Default ``False``.

    Returns:
        ``cls``.

    Raises:
        ValueError: ``cls`` is registered already (the message names the owner) and
            ``overwrite`` is False; an unknown ``kind``.
        TypeError: ``cls`` is not an ``nn.Module`` subclass, or a field has the wrong type.

    Example:
        >>> class Gate(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.A_log = nn.Parameter(torch.zeros(4))
        >>> _ = register_layer(Gate, kind="other", plan=lambda name, m, ctx: "keep",
        ...                    calibrate={"A_log": False})
        >>> layer_type(Gate()).calibrates("A_log")
        False
        >>> unregister_layer(Gate)
    """
    where = "register_layer"
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{where}: cls must be an nn.Module subclass, got {cls!r}.")
    if kind not in LAYER_KINDS:
        raise ValueError(f"{where}({cls.__name__}): unknown kind {kind!r}; valid: "
                         f"{list(LAYER_KINDS)}.")
    for label, fn in (("fans", fans), ("blocks", blocks), ("plan", plan)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{where}({cls.__name__}): {label}= must be callable or None, got "
                            f"{type(fn).__name__}.")
    _check_calibrate(cls, calibrate)
    old = _USER.get(cls) or _builtin_of(cls)
    if old is not None and not overwrite:
        raise ValueError(
            f"{where}: {cls.__module__}.{cls.__qualname__} is already registered as a "
            f"{old.kind!r} layer (owner: {old.owner}); pass overwrite=True to replace it, or "
            f"unregister_layer() first.")
    owner = str(sys._getframe(1).f_globals.get("__name__", "<unknown>"))
    cal = MappingProxyType(dict(calibrate)) if isinstance(calibrate, Mapping) else calibrate
    _USER[cls] = LayerType(cls, kind, fans, blocks, plan, cal, unit_dim, unit_axis, owner)
    _lookup.cache_clear()
    return cls


def _check_calibrate(cls: type, calibrate: Any) -> None:
    ok = isinstance(calibrate, bool) or (
        isinstance(calibrate, Mapping)
        and all(isinstance(k, str) and isinstance(v, bool) for k, v in calibrate.items()))
    if not ok:
        raise TypeError(f"register_layer({cls.__name__}): calibrate= must be a bool or a "
                        f"{{parameter name: bool}} dict, got {calibrate!r}.")


def unregister_layer(cls: type[nn.Module]) -> None:
    """Remove a user registration; a built-in entry it replaced is in force again.

    Args:
        cls: the class given to :func:`register_layer`.

    Raises:
        ValueError: ``cls`` has no user registration (built-in entries cannot be removed).
    """
    if cls not in _USER:
        name = getattr(cls, "__qualname__", repr(cls))
        raise ValueError(f"unregister_layer: {name} has no user registration (built-in entries "
                         f"stay; register_layer(..., overwrite=True) replaces one).")
    del _USER[cls]
    _lookup.cache_clear()


@functools.lru_cache(maxsize=1024)
def _lookup(cls: type) -> LayerType | None:
    chain = [e for klass in cls.__mro__
             for e in (_USER.get(klass), _builtin_of(klass)) if e is not None]
    if not chain:
        return None
    first = chain[0]
    missing = {f: next((getattr(e, f) for e in chain[1:] if getattr(e, f) is not None), None)
               for f in _INHERITED if getattr(first, f) is None}
    missing = {f: v for f, v in missing.items() if v is not None}
    return replace(first, **missing) if missing else first


def layer_type(module: nn.Module) -> LayerType | None:
    """The registry's record for ``module``'s type, or ``None`` for an unregistered type.

    Args:
        module: any module.

    Returns:
        The nearest registered :class:`LayerType` along the class MRO (fields it leaves
        ``None`` inherited from registered base classes), or ``None``.

    Example:
        >>> t = layer_type(nn.ConvTranspose2d(2, 4, 3))
        >>> t.kind, t.unit_dim, t.axis(nn.ConvTranspose2d(2, 4, 3))
        ('conv_transpose', 1, 1)
    """
    return _lookup(type(module)) if isinstance(module, nn.Module) else None


def has_plans() -> bool:
    """Whether some registration defines a ``plan`` (``apply`` consults plans only then)."""
    return any(t.plan is not None for t in _USER.values())


def layer_kind(module: nn.Module) -> str | None:
    """The layer kind of a module, or ``None`` (container, activation, dropout...).

    The registered kind (:func:`layer_type`); else (rules in the module docstring) ``None`` for
    an activation module, ``"linear"`` for a module with ``initwise_fans`` and a 2-D own
    ``weight``, ``"other"`` for one holding parameters directly without parametrized children.

    Args:
        module: any module.

    Returns:
        One of :data:`LAYER_KINDS`, or ``None``.

    Example:
        >>> layer_kind(nn.ConvTranspose2d(2, 2, 3)), layer_kind(nn.ReLU())
        ('conv_transpose', None)
    """
    registered = layer_type(module)
    if registered is not None:
        return registered.kind
    if module_activation(module) is not None:
        return None
    weight = module._parameters.get("weight")
    if hasattr(module, "initwise_fans") and isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return "linear"
    own = any(p is not None for p in module._parameters.values())
    if own and not any(any(True for _ in c.parameters()) for c in module.children()):
        return "other"
    return None
