"""Fan-based variance scaling: Keras' ``variance_scaling_``, Xavier/Glorot, Kaiming/He, LeCun.

All take a keyword-only ``fans: Fans | None``: ``None`` uses the tensor's torch-layout fans
(exactly what ``torch.nn.init`` uses, so ``xavier_*``/``kaiming_*`` are bit-identical to torch's
for the same generator); a :class:`~initwise.schemes.fans.Fans` overrides them (the policy passes
the module-aware fans of a ConvTranspose, an MHA block, an RNN gate, a SparseLinear).

``nonlinearity`` (Kaiming): for the names ``torch.nn.init.calculate_gain`` knows (``"linear"``,
``"conv*"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"selu"``) the gain is
exactly torch's (its legacy table: tanh -> 5/3, selu -> 3/4); any other name (``"gelu"``,
``"silu"``, ``"mish"``...), an ``nn.Module`` instance or a callable gets the variance-preserving
gain ``1 / sqrt(E[phi(z)^2])``, z ~ N(0, 1), of :func:`initwise.schemes.gains.gain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from initwise.schemes.basic import trunc_normal_keras_
from initwise.schemes.fans import Fans, tensor_fans
from initwise.schemes.gains import gain

__all__ = [
    "TORCH_NONLINEARITIES",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "resolve_gain",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
]

#: The nonlinearity names whose gain is taken from ``torch.nn.init.calculate_gain``.
TORCH_NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)
_DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


def resolve_gain(nonlinearity: str | Callable[..., Any], a: float = 0, *,
                 where: str = "resolve_gain") -> float:
    """The gain for ``nonlinearity``: torch's table for torch's names, the variance gain otherwise.

    Args:
        nonlinearity: a name, an ``nn.Module`` instance or a callable.
        a: the negative slope for ``"leaky_relu"`` (torch's convention); must be 0 for names
            torch does not know (pass ``nn.LeakyReLU(0.2)``-style instances for parameters).
        where: the calling function's name, for error messages.

    Returns:
        The gain (float).

    Raises:
        ValueError: unknown name (the message lists torch's names and points to initwise's
            gain catalogue), or ``a != 0`` with a non-torch nonlinearity.

    Example:
        >>> resolve_gain("relu") == math.sqrt(2.0)
        True
    """
    if isinstance(nonlinearity, str) and nonlinearity in TORCH_NONLINEARITIES:
        return torch.nn.init.calculate_gain(nonlinearity, a)
    if a not in (0, None):
        raise ValueError(
            f"{where}: a={a} is only used with nonlinearity='leaky_relu'; for another "
            f"parametrized activation pass a module instance, e.g. nn.ELU(alpha=0.5)"
        )
    try:
        return float(gain(nonlinearity, mode="variance"))
    except ValueError as exc:
        raise ValueError(
            f"{where}: unknown nonlinearity {nonlinearity!r}. Valid: torch's names "
            f"{list(TORCH_NONLINEARITIES)}, any activation initwise.schemes.gains.gain knows, "
            f"an nn.Module instance or a callable. ({exc})"
        ) from exc


def _fans_of(tensor: Tensor, fans: Fans | None, where: str) -> Fans:
    if fans is not None:
        if not isinstance(fans, Fans):
            raise TypeError(f"{where}: fans must be a Fans, got {type(fans).__name__}")
        return fans
    if tensor.dim() < 2:
        raise ValueError(
            f"{where}: needs a tensor with at least 2 dimensions (out, in, *kernel) to compute "
            f"fans, got shape {tuple(tensor.shape)}; pass fans=Fans(fan_in, fan_out) explicitly"
        )
    return tensor_fans(tensor)


def _fan(f: Fans, mode: str, where: str, valid: tuple[str, ...] = ("fan_in", "fan_out"),
         keras: bool = False) -> float:
    key = mode.lower() if isinstance(mode, str) else mode
    if key not in valid:
        raise ValueError(f"{where}: mode {mode!r} not supported, valid modes are {list(valid)}")
    fan = f.fan_in if key == "fan_in" else f.fan_out if key == "fan_out" else f.fan_avg
    if keras:  # Keras divides by max(1, fan)
        return max(1.0, fan)
    if fan <= 0:
        raise ValueError(f"{where}: {key} is {fan} for {f}; a variance scale needs fan > 0")
    return fan


def variance_scaling_(
    tensor: Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> Tensor:
    """Keras' ``VarianceScaling``: entries with variance ``scale / max(1, fan)``.

    ``fan`` is ``fan_in``, ``fan_out`` or ``fan_avg = (fan_in + fan_out) / 2`` (``mode``).
    ``distribution``:

    - ``"truncated_normal"``: normal truncated at +-2 s with ``s = sqrt(scale/fan) / 0.8796...``
      so the variance AFTER truncation is exactly ``scale / fan`` (Keras' correction);
    - ``"normal"`` (alias ``"untruncated_normal"``, Keras 3's name): N(0, scale / fan). Note that
      Keras 2 silently mapped ``"normal"`` to the truncated normal; initwise does not;
    - ``"uniform"``: U(-l, l) with ``l = sqrt(3 scale / fan)``.

    ``scale=2, mode="fan_in"`` is He; ``scale=1, mode="fan_avg"`` is Glorot; ``scale=1,
    mode="fan_in"`` is LeCun.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        scale: the variance scale, > 0. Default 1.
        mode: ``"fan_in"`` | ``"fan_out"`` | ``"fan_avg"``. Default ``"fan_in"``.
        distribution: ``"truncated_normal"`` | ``"normal"`` | ``"untruncated_normal"`` |
            ``"uniform"``. Default ``"truncated_normal"``.
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: bad ``scale``, ``mode``, ``distribution``, or a tensor with < 2 dims and no
            ``fans``.

    References:
        Keras ``VarianceScaling``; He et al. 2015 (arXiv:1502.01852); Glorot & Bengio 2010.
    """
    where = "variance_scaling_"
    if not scale > 0:
        raise ValueError(f"{where}: scale must be > 0, got {scale}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(
            f"{where}: distribution {distribution!r} not supported, valid: {list(_DISTRIBUTIONS)}"
        )
    if tensor.numel() == 0:
        return tensor
    modes = ("fan_in", "fan_out", "fan_avg")
    variance = scale / _fan(_fans_of(tensor, fans, where), mode, where, modes, keras=True)
    if tensor.is_meta:  # shapes checked above; a meta tensor has no values to fill
        return tensor
    if distribution == "truncated_normal":
        return trunc_normal_keras_(tensor, 0.0, math.sqrt(variance), generator=generator)
    with torch.no_grad():
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return tensor.uniform_(-limit, limit, generator=generator)
        return tensor.normal_(0.0, math.sqrt(variance), generator=generator)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None,
                    *, fans: Fans | None = None) -> Tensor:
    """Glorot/Xavier uniform: U(-a, a), ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Defining property: variance ``2 gain^2 / (fan_in + fan_out)``, the compromise between
    preserving forward (fan_in) and backward (fan_out) variance. Bit-identical to
    ``torch.nn.init.xavier_uniform_`` when ``fans`` is ``None``.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        gain: multiplier of the std. Default 1.
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: a tensor with < 2 dims and no ``fans``.

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010.
    """
    if tensor.numel() == 0:
        return tensor
    f = _fans_of(tensor, fans, "xavier_uniform_")
    std = gain * math.sqrt(2.0 / float(f.fan_in + f.fan_out))
    a = math.sqrt(3.0) * std
    if tensor.is_meta:  # shapes checked above; a meta tensor has no values to fill
        return tensor
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None,
                   *, fans: Fans | None = None) -> Tensor:
    """Glorot/Xavier normal: N(0, 2 gain^2 / (fan_in + fan_out)).

    Bit-identical to ``torch.nn.init.xavier_normal_`` when ``fans`` is ``None``.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        gain: multiplier of the std. Default 1.
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: a tensor with < 2 dims and no ``fans``.

    References:
        Glorot & Bengio, AISTATS 2010.
    """
    if tensor.numel() == 0:
        return tensor
    f = _fans_of(tensor, fans, "xavier_normal_")
    std = gain * math.sqrt(2.0 / float(f.fan_in + f.fan_out))
    if tensor.is_meta:  # shapes checked above; a meta tensor has no values to fill
        return tensor
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: Any, fans: Fans | None,
                 where: str) -> float:
    fan = _fan(_fans_of(tensor, fans, where), mode, where)
    return resolve_gain(nonlinearity, a, where=where) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str | Callable[..., Any] = "leaky_relu",
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> Tensor:
    """He/Kaiming uniform: U(-b, b), ``b = gain * sqrt(3 / fan)``.

    Defining property: variance ``gain^2 / fan`` so that, with ``gain`` the activation's gain,
    the second moment of the pre-activations is preserved layer to layer (``fan_in``) or that of
    the gradients (``fan_out``). Bit-identical to ``torch.nn.init.kaiming_uniform_`` for torch's
    nonlinearity names when ``fans`` is ``None``.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        a: negative slope of ``"leaky_relu"``. Default 0.
        mode: ``"fan_in"`` | ``"fan_out"``. Default ``"fan_in"``.
        nonlinearity: a name, an ``nn.Module`` or a callable (see module docstring). Default
            ``"leaky_relu"`` (with ``a=0``: ReLU's sqrt(2)).
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: bad ``mode``/``nonlinearity``, or a tensor with < 2 dims and no ``fans``.

    References:
        He et al., "Delving Deep into Rectifiers", arXiv:1502.01852.
    """
    if tensor.numel() == 0:
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity, fans, "kaiming_uniform_")
    bound = math.sqrt(3.0) * std
    if tensor.is_meta:  # shapes checked above; a meta tensor has no values to fill
        return tensor
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str | Callable[..., Any] = "leaky_relu",
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> Tensor:
    """He/Kaiming normal: N(0, gain^2 / fan).

    Bit-identical to ``torch.nn.init.kaiming_normal_`` for torch's nonlinearity names when
    ``fans`` is ``None``. See :func:`kaiming_uniform_` for the arguments.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        a: negative slope of ``"leaky_relu"``. Default 0.
        mode: ``"fan_in"`` | ``"fan_out"``. Default ``"fan_in"``.
        nonlinearity: a name, an ``nn.Module`` or a callable. Default ``"leaky_relu"``.
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: bad ``mode``/``nonlinearity``, or a tensor with < 2 dims and no ``fans``.

    References:
        He et al., "Delving Deep into Rectifiers", arXiv:1502.01852.
    """
    if tensor.numel() == 0:
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity, fans, "kaiming_normal_")
    if tensor.is_meta:  # shapes checked above; a meta tensor has no values to fill
        return tensor
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


def lecun_normal_(tensor: Tensor, generator: torch.Generator | None = None, *,
                  fans: Fans | None = None) -> Tensor:
    """LeCun normal: truncated normal with variance exactly ``1 / fan_in`` (Keras' definition).

    ``variance_scaling_(tensor, 1.0, "fan_in", "truncated_normal")``: the init SELU networks
    assume (Klambauer et al. 2017) and that keeps a linear layer's output variance equal to its
    input's.

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    References:
        LeCun et al., "Efficient BackProp", 1998; Klambauer et al., "Self-Normalizing Neural
        Networks", arXiv:1706.02515.
    """
    return variance_scaling_(tensor, 1.0, "fan_in", "truncated_normal", generator, fans=fans)


def lecun_uniform_(tensor: Tensor, generator: torch.Generator | None = None, *,
                   fans: Fans | None = None) -> Tensor:
    """LeCun uniform: U(-l, l), ``l = sqrt(3 / fan_in)`` (variance ``1 / fan_in``).

    Args:
        tensor: the tensor to fill in place (>= 2 dims unless ``fans`` is given).
        generator: the random source. Default ``None``.
        fans: overrides the tensor-layout fans. Default ``None``.

    Returns:
        ``tensor``.

    References:
        LeCun et al., "Efficient BackProp", 1998.
    """
    return variance_scaling_(tensor, 1.0, "fan_in", "uniform", generator, fans=fans)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
