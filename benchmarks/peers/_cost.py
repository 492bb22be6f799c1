"""What an initializer costs: the result every peer initializer returns, and its counter.

Every peer initializer of this package has the signature ``init_fn(model, batches, *, loss_fn,
seed, **budget) -> PeerResult``; structural ones ignore ``batches`` and ``loss_fn`` and report
zero passes, so a benchmark can put every method's init cost (wall time, forward and backward
passes through the model) next to its quality.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

#: ``loss_fn(output, target) -> scalar tensor``
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: one batch: ``(input, target)``
Batch = tuple[Any, torch.Tensor]


@dataclass
class PeerResult:
    """The cost of one initializer run.

    Attributes:
        name: the peer's name (``"gradinit"``, ``"fixup"``, ...).
        forward_passes: forward passes through the model.
        backward_passes: reverse-mode passes through the model's graph; a double backward (a
            Hessian-vector product, a gradient of a gradient norm) counts as one more.
        wall_s: wall time of the whole init, seconds.
        notes: free-form facts about the run (final objective, clamped scales, ...).
    """

    name: str
    forward_passes: int = 0
    backward_passes: int = 0
    wall_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


class Cost:
    """Counts passes and wall time of one init run; :meth:`result` turns it into a PeerResult."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.forward = 0
        self.backward = 0
        self._t0 = time.perf_counter()

    def result(self, **notes: Any) -> PeerResult:
        """The PeerResult with the wall time since construction."""
        return PeerResult(self.name, self.forward, self.backward,
                          time.perf_counter() - self._t0, dict(notes))


def cycle_batches(batches: Iterable[Batch] | None, who: str) -> Iterator[Batch]:
    """Cycle over ``batches`` (a list or any re-iterable), refusing ``None`` or an empty one."""
    if batches is None:
        raise ValueError(f"{who} needs batches: pass a list of (input, target) tuples.")
    data = list(batches)
    if not data:
        raise ValueError(f"{who} got no batches: pass at least one (input, target) tuple.")
    return itertools.cycle(data)


def check_positive(who: str, **values: float) -> None:
    """Raise ValueError naming the first argument of ``values`` that is not > 0."""
    for key, val in values.items():
        if not val > 0:
            raise ValueError(f"{who}: {key} must be > 0, got {val!r}.")


def double_backward_attention() -> object:
    """Context: attention on PyTorch's math kernel, the one with a double backward.

    GradInit and MetaInit differentiate through gradients; the fused CPU flash-attention kernel
    of ``scaled_dot_product_attention`` has no derivative of its backward, the math kernel (same
    function) has.
    """
    return sdpa_kernel([SDPBackend.MATH])
