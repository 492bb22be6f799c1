"""Distribution and constant fills: uniform, normal, truncated normal, constants, scaling.

Every function fills ONE tensor in place under ``torch.no_grad()``, returns it, and draws random
numbers only from ``generator`` (never the global RNG when a generator is given). The ones that
``torch.nn.init`` also defines have its signature and give the same bits for the same generator.
"""

from __future__ import annotations

import inspect
import math
import warnings

import torch
from torch import Tensor

__all__ = [
    "KERAS_TRUNCATION_STD",
    "constant_",
    "ones_",
    "normal_",
    "scale_",
    "scale_to_std_",
    "trunc_normal_",
    "trunc_normal_keras_",
    "uniform_",
    "zeros_",
]

#: Standard deviation of a standard normal truncated to [-2, 2]: dividing the std of a normal by
#: this constant before truncating at +-2 std gives back the requested variance (Keras' rule).
KERAS_TRUNCATION_STD = 0.87962566103423978


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Fill ``tensor`` with U(a, b) draws; bit-identical to ``torch.nn.init.uniform_``.

    Defining property: mean ``(a + b) / 2``, variance ``(b - a)^2 / 12``.

    Args:
        tensor: the tensor to fill in place.
        a: lower bound. Default 0.
        b: upper bound. Default 1.
        generator: the random source. Default ``None`` (global RNG).

    Returns:
        ``tensor``.
    """
    if tensor.is_meta:  # no values: skip torch's meta path (it imports torch._dynamo)
        return tensor
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Fill ``tensor`` with N(mean, std^2) draws; bit-identical to ``torch.nn.init.normal_``.

    Args:
        tensor: the tensor to fill in place.
        mean: the mean. Default 0.
        std: the standard deviation. Default 1.
        generator: the random source. Default ``None`` (global RNG).

    Returns:
        ``tensor``.
    """
    if tensor.is_meta:  # no values: skip torch's meta path (it imports torch._dynamo)
        return tensor
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill ``tensor`` from N(mean, std^2) truncated to [a, b]: torch's semantics, torch's bits.

    This is ``torch.nn.init.trunc_normal_`` exactly (same signature, same values for the same
    generator; torch does the sampling -- on torch < 2.2, whose version takes no ``generator``,
    initwise runs torch 2.1's inverse-CDF sampling itself, with the same bits). Note the torch
    semantics: ``a``, ``b`` are ABSOLUTE
    bounds (not multiples of ``std``) and ``std`` is the std BEFORE truncation, so the result's
    std is smaller than ``std`` (by the factor 0.8796 when ``[a, b] = mean +- 2 std``).

    For a truncated normal whose variance after truncation is the one you ask for (Keras'
    ``TruncatedNormal`` inside ``VarianceScaling``), use :func:`trunc_normal_keras_` or
    ``variance_scaling_(..., distribution="truncated_normal")``.

    Args:
        tensor: the tensor to fill in place.
        mean: mean of the underlying normal. Default 0.
        std: std of the underlying normal (before truncation). Default 1.
        a: lower bound (absolute). Default -2.
        b: upper bound (absolute). Default 2.
        generator: the random source. Default ``None`` (global RNG).

    Returns:
        ``tensor``.

    Raises:
        ValueError: if ``std <= 0`` or ``a >= b``.
    """
    if not std > 0 or not a < b:
        raise ValueError(f"trunc_normal_ needs std > 0 and a < b, got std={std}, a={a}, b={b}")
    if tensor.is_meta:
        return tensor
    return _trunc_normal(tensor, mean, std, a, b, generator)


def trunc_normal_keras_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Truncated normal whose std AFTER truncation is ``std`` (Keras' variance-scaling rule).

    Draws from N(mean, s^2) truncated to ``mean +- 2 s`` with ``s = std / 0.87962566103423978``
    (:data:`KERAS_TRUNCATION_STD`, the std of a standard normal truncated to [-2, 2]), so that
    the variance of the result is ``std^2``: no draw is further than ``2 s ~ 2.27 std`` from the
    mean, and the variance is exactly the one requested.

    Args:
        tensor: the tensor to fill in place.
        mean: the mean. Default 0.
        std: the std of the RESULT. Default 1.
        generator: the random source. Default ``None`` (global RNG).

    Returns:
        ``tensor``.

    Raises:
        ValueError: if ``std <= 0``.

    References:
        Keras ``VarianceScaling`` initializer (keras.io/api/layers/initializers).
    """
    if not std > 0:
        raise ValueError(f"trunc_normal_keras_ needs std > 0, got {std}")
    if tensor.is_meta:
        return tensor
    s = std / KERAS_TRUNCATION_STD
    return _trunc_normal(tensor, mean, s, mean - 2 * s, mean + 2 * s, generator)


#: torch.nn.init took ``generator=`` from torch 2.2 on; initwise supports torch >= 2.1
_TORCH_INIT_GENERATOR = "generator" in inspect.signature(torch.nn.init.trunc_normal_).parameters


def _trunc_normal(tensor: Tensor, mean: float, std: float, a: float, b: float,
                  generator: torch.Generator | None) -> Tensor:
    """torch's truncated normal; on torch < 2.2, whose ``trunc_normal_`` has no ``generator=``,
    its inverse-CDF sampling (a uniform draw between the bounds' CDF values mapped through the
    normal quantile) written out here, so ``generator=`` works on every supported torch."""
    if _TORCH_INIT_GENERATOR:
        return torch.nn.init.trunc_normal_(tensor, mean, std, a, b, generator=generator)

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("trunc_normal_: mean is more than 2 std from [a, b]; the distribution of "
                      "values may be incorrect.", stacklevel=3)
    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    with torch.no_grad():
        tensor.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with ``val``; same as ``torch.nn.init.constant_``.

    Args:
        tensor: the tensor to fill in place.
        val: the value.

    Returns:
        ``tensor``.
    """
    with torch.no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 0; same as ``torch.nn.init.zeros_``.

    Args:
        tensor: the tensor to fill in place.

    Returns:
        ``tensor``.
    """
    with torch.no_grad():
        return tensor.zero_()


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 1; same as ``torch.nn.init.ones_``.

    Args:
        tensor: the tensor to fill in place.

    Returns:
        ``tensor``.
    """
    with torch.no_grad():
        return tensor.fill_(1.0)


def scale_(tensor: Tensor, factor: float) -> Tensor:
    """Multiply ``tensor`` by ``factor`` in place (e.g. Fixup's depth rescaling, a 0.1 head).

    Args:
        tensor: the tensor to rescale in place.
        factor: a finite number.

    Returns:
        ``tensor``.

    Raises:
        ValueError: if ``factor`` is not finite.

    Example:
        >>> scale_(torch.ones(2), 0.5)
        tensor([0.5000, 0.5000])
    """
    if not math.isfinite(factor):
        raise ValueError(f"scale_ needs a finite factor, got {factor}")
    with torch.no_grad():
        return tensor.mul_(factor)


def scale_to_std_(tensor: Tensor, std: float) -> Tensor:
    """Rescale ``tensor`` in place so that its root-mean-square equals ``std``.

    Uses the RMS about zero, ``sqrt(mean(w^2))``, which is the std of a zero-mean weight and the
    quantity that sets the output variance of a layer. Useful after a scheme with the right
    shape but the wrong scale (orthogonal, sparse, ZerO).

    Args:
        tensor: the tensor to rescale in place.
        std: the target RMS, ``>= 0``.

    Returns:
        ``tensor``.

    Raises:
        ValueError: if ``std < 0`` or the tensor is all zeros (no direction to scale).

    Example:
        >>> scale_to_std_(torch.tensor([3.0, -3.0]), 1.0)
        tensor([ 1., -1.])
    """
    if not std >= 0:
        raise ValueError(f"scale_to_std_ needs std >= 0, got {std}")
    with torch.no_grad():
        rms = float(tensor.double().pow(2).mean().sqrt()) if tensor.numel() else 0.0
        if rms == 0.0:
            raise ValueError(
                f"scale_to_std_ cannot rescale an all-zero tensor of shape "
                f"{tuple(tensor.shape)}; initialize it first"
            )
        return tensor.mul_(std / rms)
