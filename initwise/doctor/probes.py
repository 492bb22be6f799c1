"""Probes: forward hooks that reduce each layer's output to per-unit running sums.

No activation tensor outlives its hook: each call adds to O(#units) accumulators (sum, sum of
squares, min, max, saturated count per unit), so memory is O(#units), not O(batch x units).
A "unit" is a channel for convolutions and channel-first norms, the last dimension otherwise;
rows are samples times positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initwise.doctor.plan import ActInfo, LayerPlan

__all__ = ["UnitAcc", "first_tensor", "probed", "tensor_leaves"]

_CHANNEL_FIRST_NORMS = ("batchnorm", "instancenorm", "groupnorm")


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a module output (tensor, tuple/list, dict, object with .logits)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for item in obj:
            t = first_tensor(item)
            if t is not None:
                return t
    if isinstance(obj, Mapping):
        for item in obj.values():
            t = first_tensor(item)
            if t is not None:
                return t
    return None


def tensor_leaves(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside nested tuples/lists/dicts."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from tensor_leaves(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from tensor_leaves(item)


@dataclass
class UnitAcc:
    """Running per-unit statistics of one module's output (the pre-activation).

    Attributes:
        rows: number of rows seen (samples x positions).
        s, ss: per-unit sums of z and z^2 (float64).
        zmin, zmax: per-unit minimum and maximum.
        sat: per-unit count of saturated rows (saturating activations), or None.
        elems: number of finite elements seen; positive: how many were > 0.
        nonfinite: number of NaN/Inf elements.
        post_s, post_ss: sums of phi(z) and phi(z)^2 over elements (when phi is known).
        calls: how many times the module ran.
        dtype: the output dtype.
    """

    rows: int = 0
    s: torch.Tensor | None = None
    ss: torch.Tensor | None = None
    zmin: torch.Tensor | None = None
    zmax: torch.Tensor | None = None
    sat: torch.Tensor | None = None
    elems: int = 0
    positive: int = 0
    nonfinite: int = 0
    post_s: float = 0.0
    post_ss: float = 0.0
    post_n: int = 0
    calls: int = 0
    dtype: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return 0 if self.s is None else int(self.s.numel())

    def update(self, y: torch.Tensor, unit_dim: int, act: ActInfo | None) -> None:
        """Fold one output tensor into the sums (no reference to ``y`` is kept)."""
        self.calls += 1
        self.dtype = str(y.dtype).replace("torch.", "")
        if y.dim() == 0:
            y = y.reshape(1, 1)
        elif y.dim() == 1:
            y = y.reshape(-1, 1) if unit_dim == 0 else y.reshape(1, -1)
        z = y.detach().movedim(unit_dim, -1).reshape(-1, y.shape[unit_dim]).double()
        finite = torch.isfinite(z)
        self.nonfinite += int((~finite).sum())
        z = z.masked_fill(~finite, 0.0)
        self._add_moments(z, finite)
        if act is not None and act.saturating and act.sat_threshold is not None:
            cnt = (z.abs() > act.sat_threshold).sum(0)
            self.sat = cnt if self.sat is None else self.sat + cnt
        if act is not None and act.fn is not None:
            try:
                post = act.fn(z)
            except Exception:  # noqa: BLE001 - post stats are optional
                post = None
            if isinstance(post, torch.Tensor) and post.shape == z.shape:
                self.post_s += float(post.sum())
                self.post_ss += float((post * post).sum())
                self.post_n += post.numel()

    def _add_moments(self, z: torch.Tensor, finite: torch.Tensor) -> None:
        s, ss = z.sum(0), (z * z).sum(0)
        big = torch.finfo(z.dtype).max
        zmax = z.masked_fill(~finite, -big).amax(0)
        zmin = z.masked_fill(~finite, big).amin(0)
        if self.s is None or self.s.shape != s.shape:
            if self.s is not None:  # unit count changed between calls: keep the first shape
                return
            self.s, self.ss, self.zmin, self.zmax = s, ss, zmin, zmax
        else:
            self.s, self.ss = self.s + s, self.ss + ss
            self.zmin, self.zmax = torch.minimum(self.zmin, zmin), torch.maximum(self.zmax, zmax)
        self.rows += z.shape[0]
        self.elems += int(finite.sum())
        self.positive += int((z > 0).sum())

    # ---- derived statistics ---------------------------------------------------------------
    def unit_var(self) -> torch.Tensor:
        mean = self.s / max(self.rows, 1)
        return (self.ss / max(self.rows, 1) - mean * mean).clamp_min(0.0)

    def pre_std(self) -> float:
        """sqrt of the mean over units of the across-rows variance (bias-invariant signal)."""
        return math.sqrt(float(self.unit_var().mean())) if self.units else float("nan")

    def rms(self) -> float:
        return math.sqrt(float(self.ss.sum()) / max(self.rows * self.units, 1))

    def signal_fraction(self) -> float:
        """Sum of per-unit variances over sum of per-unit second moments (1 - mean correlation)."""
        total = float(self.ss.sum()) / max(self.rows, 1)
        return float(self.unit_var().sum()) / total if total > 0 else float("nan")

    def dead_units(self) -> int:
        """Units never > 0 on any row (ReLU family: never active on any sample)."""
        return int((self.zmax <= 0).sum()) if self.zmax is not None else 0

    def saturated_units(self) -> int:
        """Units saturated on every row."""
        return int((self.sat >= self.rows).sum()) if self.sat is not None else 0

    def saturated_fraction(self) -> float | None:
        if self.sat is None:
            return None
        return float(self.sat.sum()) / max(self.rows * self.units, 1)

    def post_std(self) -> float | None:
        if self.post_n == 0:
            return None
        m = self.post_s / self.post_n
        return math.sqrt(max(self.post_ss / self.post_n - m * m, 0.0))


def _unit_dim(plan: LayerPlan, y: torch.Tensor) -> int:
    if y.dim() <= 1:
        return 0 if y.dim() == 1 else -1
    if plan.kind in ("conv", "conv_transpose"):
        return 1
    if plan.kind == "norm" and y.dim() > 2:
        from initwise.graph._kinds import norm_name

        if norm_name(plan.module) in _CHANNEL_FIRST_NORMS:
            return 1
    return -1


@contextmanager
def probed(
    plans: dict[str, LayerPlan], inputs: Any
) -> Iterator[tuple[dict[str, UnitAcc], list[str]]]:
    """Register the probes for the body; always remove them.

    Yields:
        ``(accs, order)``: ``{name: UnitAcc}`` filled as the model runs, and module names in
        the order of their first call. A module whose positional/keyword inputs include one of
        ``inputs``' tensors gets ``accs[name].extra["reads_input"] = True``.
    """
    accs: dict[str, UnitAcc] = {name: UnitAcc() for name in plans}
    order: list[str] = []
    input_ids = {id(t) for t in tensor_leaves(inputs)}
    handles: list[Any] = []

    def make_hooks(name: str, plan: LayerPlan) -> tuple[Any, Any]:
        def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if any(id(t) in input_ids for t in tensor_leaves((args, kwargs))):
                accs[name].extra["reads_input"] = True

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if name not in order:
                order.append(name)
            y = first_tensor(output)
            if y is None or not y.is_floating_point() or y.layout != torch.strided:
                return
            with torch.no_grad():
                accs[name].update(y, _unit_dim(plan, y), plan.act)

        return pre_hook, hook

    try:
        for name, plan in plans.items():
            pre_hook, hook = make_hooks(name, plan)
            # prepend: see the model's own inputs before any input hook of the layer rewrites
            # them (initwise.nn.add_input_standardization)
            handles.append(plan.module.register_forward_pre_hook(pre_hook, with_kwargs=True,
                                                                 prepend=True))
            handles.append(plan.module.register_forward_hook(hook))
        yield accs, order
    finally:
        for h in handles:
            h.remove()
