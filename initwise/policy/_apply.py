"""The one traversal that joins policies to schemes: :func:`apply`."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from initwise.initreport import InitReport, ParamRecord
from initwise.policy._common import legacy_hooks, legacy_names, registered_plan
from initwise.policy._overrides import Overrides
from initwise.policy._types import ModulePlan, ParamInit, Policy, PolicyContext
from initwise.state import rng_devices, seeded_rng

__all__ = ["ON_UNKNOWN"]

ON_UNKNOWN = ("error", "warn", "skip")


@dataclass
class _Own:
    """One parameter a module owns directly (or one parametrized tensor, via its originals)."""

    name: str
    qname: str
    tensor: torch.Tensor
    parametrized: bool = False
    legacy: Any = None  # the old-style SpectralNorm/WeightNorm hook computing ``name``
    #: other tensors set together with this one (weight_norm's magnitude, a parametrization's
    #: further originals), as (qualified name, tensor); reported with the same scheme
    extras: tuple[tuple[str, torch.Tensor], ...] = ()

    @property
    def frozen(self) -> bool:
        return not self.tensor.requires_grad


def _own_params(mname: str, module: nn.Module) -> list[_Own]:
    prefix = f"{mname}." if mname else ""
    hooks, legacy = legacy_hooks(module), legacy_names(module)
    own = []
    for k, v in module._parameters.items():
        base = legacy.get(k, k)
        if v is None or not base:  # weight_norm's weight_g is set with weight_v
            continue
        hook = hooks.get(base) if k in legacy else None
        g = module._parameters.get(f"{base}_g") if k == f"{base}_v" else None
        extras = ((prefix + f"{base}_g", g),) if g is not None else ()
        own.append(_Own(base, prefix + k, v, legacy=hook, extras=extras))
    if parametrize.is_parametrized(module):
        for key, plist in module.parametrizations.items():
            (pname, original), *more = plist.named_parameters(recurse=False)
            own.append(_Own(key, f"{prefix}parametrizations.{key}.{pname}", original, True,
                            extras=tuple((f"{prefix}parametrizations.{key}.{n}", t)
                                         for n, t in more)))
    return own


def _work_tensor(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.empty(like.shape, dtype=dtype, device=generator.device)


def _std(t: torch.Tensor) -> float | None:
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return None
    return float(t.detach().float().std(unbiased=False)) if t.numel() > 1 else 0.0


class _Walker:
    def __init__(self, model: nn.Module, policy: Policy, overrides: Overrides,
                 ctx: PolicyContext, report: InitReport, on_unknown: str,
                 include_frozen: bool) -> None:
        self.model, self.policy, self.overrides, self.ctx = model, policy, overrides, ctx
        self.report, self.on_unknown, self.include_frozen = report, on_unknown, include_frozen
        self.gen = ctx.generator
        self.devices = rng_devices(model)
        self.done: dict[int, str] = {}
        self.uncovered: list[tuple[str, str, str]] = []  # (message, what, type) per module

    def run(self) -> None:
        internals: set[int] = set()
        for mname, module in self.model.named_modules():
            if id(module) in internals:
                continue
            if parametrize.is_parametrized(module):
                internals.update(id(m) for m in module.parametrizations.modules())
            todo = []
            for own in _own_params(mname, module):
                if id(own.tensor) in self.done:
                    self._record(mname, module, own, f"tied:{self.done[id(own.tensor)]}")
                elif own.frozen and not self.include_frozen:
                    self._record(mname, module, own, "skipped:frozen",
                                 note="requires_grad=False (include_frozen=True to initialize)")
                else:
                    todo.append(own)
            if todo:
                self._execute(mname, module, self._decide(mname, module), todo)
                self.done.update((id(o.tensor), o.qname) for o in todo)
                self.done.update((id(t), o.qname) for o in todo for _, t in o.extras)
            elif _no_params(module) and self._stats_only(mname, module):
                module.reset_running_stats()  # as every policy does for an affine norm
        self._warn_uncovered()

    def _stats_only(self, mname: str, module: nn.Module) -> bool:
        """A norm without affine parameters but with running statistics (BatchNorm(affine=
        False)), not skipped by an override: its statistics are reset like an affine one's."""
        if not (callable(getattr(module, "reset_running_stats", None))
                and getattr(module, "track_running_stats", False)):
            return False
        hit = self.overrides.match(mname, module)
        return hit is None or hit[1] != "skip"

    def _decide(self, mname: str, module: nn.Module) -> Any:
        hit = self.overrides.match(mname, module)
        if hit is not None:
            return self.overrides.decide(hit, mname, module, self.ctx)
        decision = registered_plan(mname, module, self.ctx)  # initwise.register_layer(plan=)
        if decision is None:
            decision = self.policy(mname, module, self.ctx)
        if decision is not None and not isinstance(decision, (ModulePlan, str)):
            raise TypeError(
                f"policy {self.policy.name!r} returned {type(decision).__name__} for module "
                f"{mname!r}; expected a ModulePlan, 'reset_parameters', 'skip', 'keep' or None."
            )
        if isinstance(decision, str) and decision not in ("reset_parameters", "skip", "keep"):
            raise ValueError(
                f"policy {self.policy.name!r} returned {decision!r} for module {mname!r}; "
                f"valid strings are 'reset_parameters', 'skip' and 'keep'."
            )
        return decision

    def _execute(self, mname: str, module: nn.Module, decision: Any, todo: list[_Own]) -> None:
        if decision == "skip":
            for own in todo:
                self._record(mname, module, own, "skipped:policy")
            return
        if decision == "keep":
            for own in todo:
                self._record(mname, module, own, "kept",
                             note=f"the model's own init, kept (policy {self.policy.name!r})")
            return
        plan = decision if isinstance(decision, ModulePlan) else ModulePlan()
        uncovered = [o for o in todo if o.name not in plan.params]
        if uncovered and _reset_method(module) is not None:
            self._reset(module, todo)
        elif uncovered:
            self._unknown(mname, module, uncovered)
        for own in todo:  # records in parameter order
            init = plan.params.get(own.name)
            if init is not None:
                note = self._fill(module, own, init)
                self._record(mname, module, own, init.scheme, init, plan.note, note)
            elif _reset_method(module) is not None:
                self._record(mname, module, own, "reset_parameters", note=plan.note)
            else:
                self._record(mname, module, own, "skipped:unknown")
        if plan.reset_running_stats:
            module.reset_running_stats()

    def _fill(self, module: nn.Module, own: _Own, init: ParamInit) -> str:
        """Fill one parameter; returns a note for the report ("" if nothing to say)."""
        via_inverse = own.parametrized and all(
            hasattr(p, "right_inverse") for p in module.parametrizations[own.name])
        target = getattr(module, own.name) if via_inverse else own.tensor
        direct = (not via_inverse and target.device == self.gen.device
                  and target.dtype in (torch.float32, torch.float64))
        work = target if direct else _work_tensor(target, self.gen)
        init.fill(work, self.gen)
        if via_inverse:
            setattr(module, own.name, work.to(dtype=target.dtype, device=target.device))
            return "parametrized: set through right_inverse, parametrization kept"
        if own.legacy is not None:
            return _set_legacy(module, own, work)
        if not direct:
            target.copy_(work)
        if own.parametrized:
            return ("parametrized without right_inverse: the scheme filled the unconstrained "
                    "original; parametrization kept")
        return ""

    def _reset(self, module: nn.Module, todo: list[_Own]) -> None:
        """The module's own reset, seeded from the generator; everything else it touches
        (children, tied or frozen tensors not being initialized) is put back."""
        mine = {id(o.tensor) for o in todo}
        protected = [p for p in module.parameters() if id(p) not in mine]
        saved = [p.detach().clone() for p in protected]
        with seeded_rng(self.gen, self.devices):
            if any(o.parametrized or o.legacy is not None for o in todo):
                _reset_through_copy(module, todo)
            else:
                _reset_method(module)()
        for p, value in zip(protected, saved):
            p.copy_(value)

    def _unknown(self, mname: str, module: nn.Module, uncovered: list[_Own]) -> None:
        names = [o.name for o in uncovered]
        key = mname or type(module).__name__
        msg = (
            f"module {mname or '<root>'!r} ({type(module).__name__}) has parameters {names} "
            f"that policy {self.policy.name!r} does not cover and no reset_parameters(); pass "
            f"overrides={{{key!r}: fn}} with a tensor scheme fn(tensor, generator=None) (e.g. "
            f"torch.nn.init.ones_) or 'skip', give the module a reset_parameters() method, or "
            f"use on_unknown='skip' to leave them as they are."
        )
        if self.on_unknown == "error":
            raise ValueError(msg)
        if self.on_unknown == "warn":
            self.uncovered.append((msg, f"{mname or '<root>'!r} ({type(module).__name__}: "
                                        f"{names})", type(module).__name__))
            self.report.warnings.append(msg)

    def _warn_uncovered(self) -> None:
        """One warning for every uncovered module (the report keeps one line per module)."""
        if len(self.uncovered) == 1:
            warnings.warn(self.uncovered[0][0], UserWarning, stacklevel=4)
        elif self.uncovered:
            types = sorted({t for _, _, t in self.uncovered})
            shown = ", ".join(w for _, w, _ in self.uncovered[:50])
            more = ", ..." if len(self.uncovered) > 50 else ""
            warnings.warn(
                f"apply: {len(self.uncovered)} modules have parameters that policy "
                f"{self.policy.name!r} does not cover and no reset_parameters(), left as they "
                f"are: {shown}{more}; pass overrides={{{types[0]!r}: fn}} (a module type covers "
                f"every module of it) with a tensor scheme fn(tensor, generator=None) or "
                f"'skip', give the modules a reset_parameters() method, or use "
                f"on_unknown='skip' to leave them as they are.", UserWarning, stacklevel=4)

    def _record(self, mname: str, module: nn.Module, own: _Own, scheme: str,
                init: ParamInit | None = None, note: str = "", fill_note: str = "") -> None:
        value = getattr(module, own.name) if own.parametrized else own.tensor
        notes = [n for n in (note, init.note if init else "", fill_note) if n]
        self.report.params.append(ParamRecord(
            own.qname, mname, type(module).__name__, scheme,
            init.fan_in if init else None, init.fan_out if init else None,
            init.gain if init else None, _std(value), "; ".join(notes),
        ))
        for qname, tensor in own.extras:
            self.report.params.append(ParamRecord(
                qname, mname, type(module).__name__, scheme, std=_std(tensor),
                note=f"set together with {own.qname}"))


def _reset_method(module: nn.Module) -> Any:
    for attr in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def _reset_through_copy(module: nn.Module, todo: list[_Own]) -> None:
    """reset_parameters cannot reach a parametrization's original: reset a plain copy, then
    assign its tensors (parametrized ones through right_inverse)."""
    # an old-style hook's computed weight is a non-leaf tensor, which deepcopy refuses
    memo = {id(t): t.detach().clone() for t in (getattr(module, n, None)
                                                 for n in legacy_hooks(module))
            if isinstance(t, torch.Tensor)}
    twin = copy.deepcopy(module, memo)
    if parametrize.is_parametrized(twin):
        for key in list(twin.parametrizations.keys()):
            parametrize.remove_parametrizations(twin, key, leave_parametrized=True)
    from torch.nn.utils.spectral_norm import SpectralNorm

    for name, hook in legacy_hooks(twin).items():  # `name` becomes a plain Parameter
        if isinstance(hook, SpectralNorm):
            torch.nn.utils.remove_spectral_norm(twin, name)
        else:
            torch.nn.utils.remove_weight_norm(twin, name)
    _reset_method(twin)()
    for own in todo:
        value = getattr(twin, own.name).detach()
        if own.parametrized:
            setattr(module, own.name, value)
        elif own.legacy is not None:
            _set_legacy(module, own, value)
        else:
            own.tensor.copy_(value)


#: Power iterations run after refilling a spectral_norm'd weight, so the stored singular
#: vectors (and the sigma the next forward divides by) belong to the NEW weight.
_POWER_ITERATIONS = 30


def _set_legacy(module: nn.Module, own: _Own, value: torch.Tensor) -> str:
    """Set the weight an old-style hook computes: spectral_norm's ``weight_orig`` (then power
    iterations), or weight_norm's ``weight_v = w``, ``weight_g = ||w||`` (so the weight is w)."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    hook, name = own.legacy, own.name
    own.tensor.copy_(value)
    if isinstance(hook, SpectralNorm):
        for _ in range(_POWER_ITERATIONS):
            hook.compute_weight(module, do_power_iteration=True)
        setattr(module, name, hook.compute_weight(module, do_power_iteration=False))
        return (f"spectral_norm: the scheme filled {name}_orig; the weight used is "
                f"{name}_orig / sigma_max")
    g = getattr(module, f"{name}_g")
    g.copy_(torch.norm_except_dim(own.tensor, 2, hook.dim).to(g.dtype))
    setattr(module, name, hook.compute_weight(module))
    return f"weight_norm: {name}_v = w and {name}_g = ||w|| (so the weight is w)"


def _no_params(module: nn.Module) -> bool:
    """No parameter of its own (``BatchNorm(affine=False)`` registers ``weight = None``)."""
    return all(v is None for v in module._parameters.values()) and not (
        parametrize.is_parametrized(module))
