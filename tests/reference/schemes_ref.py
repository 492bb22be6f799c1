"""Slow, obviously-correct twins for initwise.schemes.

``counted_fans(module)``: fan-in and fan-out of a (transposed) convolution or linear layer
COUNTED by brute force: with every weight 1 and every input 1, each output element equals the
number of terms summed into it (its fan-in); the gradient of ``sum(output)`` with respect to
each input element is the number of terms its gradient sums (its fan-out). Averaged over one
period of the stride, away from the borders.
"""

import copy

import torch
from torch import nn


def counted_fans(module: nn.Module) -> tuple[float, float]:
    """(fan_in, fan_out) of ``module`` counted on all-ones weights and inputs (float64)."""
    m = copy.deepcopy(module).double()
    with torch.no_grad():
        m.weight.fill_(1.0)
        if getattr(m, "bias", None) is not None:
            m.bias.zero_()
    if isinstance(m, nn.Linear):
        x = torch.ones(1, m.in_features, dtype=torch.float64, requires_grad=True)
        y = m(x)
        y.sum().backward()
        return y.mean().item(), x.grad.mean().item()
    kernel, stride, dilation = m.kernel_size, m.stride, m.dilation
    span = max((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    period = max(stride)
    size = period * (2 * span + period + 1) + span  # strided outputs still reach the region
    x = torch.ones((1, m.in_channels, *(size for _ in kernel)), dtype=torch.float64,
                   requires_grad=True)
    y = m(x)
    y.sum().backward()
    out_region = (slice(None), slice(None)) + tuple(slice(2 * span, 2 * span + s) for s in stride)
    in_region = (slice(None), slice(None)) + tuple(slice(2 * span, 2 * span + s) for s in stride)
    return y[out_region].mean().item(), x.grad[in_region].mean().item()
