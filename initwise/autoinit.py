"""``initwise.init``: :func:`initwise.datainit.init`, with ``policy="auto"`` judged by the doctor.

For a model whose modules come from a library whose authors tuned its init (Hugging Face
``transformers``, ``timm``, ``torchvision``: :func:`initwise.policy.model_library`), ``"auto"``
means ``"respect"`` -- keep the library's init, fix only what the measurement flags -- when that
init is healthy, and the generic per-layer rules when it is not. Healthy is the doctor's word
(:func:`initwise.doctor.doctor`, preset ``"quick"``: one probed forward of the first
calibration batch): no error among :data:`UNHEALTHY_PREFIXES` (a signal that vanishes,
explodes or collapses, saturated units, non-finite weights or loss). The codes ``init`` fixes
under ``"respect"`` (the output prior, dead units, input scales) do not count. The forward
preset, not ``"standard"``: the judge must be cheap (``init`` costs at most 20 training steps)
and conservative -- a library's init is tested by its authors, and leaving it for the generic
rules on a doubtful gradient ratio is the costlier mistake (issue 15: every such switch
trained worse). The report says which policy ran and why
(``InitReport.policy_reason``). Every other model and policy goes to
:func:`initwise.datainit.init` unchanged; so does a call of ``initwise.datainit.init`` itself,
whose ``"auto"`` judges by finite parameters only, as :func:`initwise.apply` does.

This module sits above both the doctor and ``datainit`` (the doctor's ``"initwise.init"`` fix
calls ``datainit``), so neither imports the other at module level.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from initwise.datainit import init as datainit_init
from initwise.doctor import doctor
from initwise.initreport import InitReport
from initwise.modelio import iter_batches
from initwise.policy import choose_auto, get_policy, model_library

__all__ = ["UNHEALTHY_PREFIXES", "init", "own_init_problem"]

#: Doctor error codes (prefixes) that make a library model's own init unhealthy for ``"auto"``.
UNHEALTHY_PREFIXES = ("signal.", "units.saturated", "model.nonfinite", "loss.nonfinite",
                      "dtype.")


def own_init_problem(model: nn.Module, batch: Any, loss: str | None = None) -> str | None:
    """The doctor's first error on ``batch`` that makes the model's own init unhealthy
    (:data:`UNHEALTHY_PREFIXES`), or ``None``. The model is not changed (the doctor never
    changes it); a batch the doctor cannot run is left to ``init``'s own checks (``None``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diag = doctor(model, batch, loss_fn=loss, checks="quick", on_unknown="skip")
    except (TypeError, ValueError, RuntimeError):
        return None
    for f in diag.findings:
        if f.severity == "error" and f.check.startswith(UNHEALTHY_PREFIXES):
            return f"doctor: {f.check} at {f.where}: {f.evidence}"
    return None


def init(
    model: nn.Module,
    data: Any,
    *,
    loss: str | None = None,
    policy: Any = "auto",
    target: str | float = "auto",
    batches: int = 4,
    generator: torch.Generator | int | None = None,
    seed: int | None = None,
    overrides: Mapping[Any, Any] | None = None,
    calibrate: Mapping[Any, bool] | None = None,
    include_frozen: bool = False,
    on_unknown: str = "warn",
    max_iters: int = 10,
    tol: float = 0.05,
    verbose: bool | None = None,
) -> InitReport:
    """Initialize ``model`` for ``data``: :func:`initwise.datainit.init` (same arguments, same
    rules, same report), except that ``policy="auto"`` on a known library's model is decided
    by the doctor: ``"respect"`` when the model's own init is healthy, the generic rules when
    it is not (module docstring; ``InitReport.policy_reason`` says which and why).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(),
        ...                           torch.nn.Linear(16, 3))
        >>> x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
        >>> init(net, (x, y), seed=0).policy  # a plain torch model: the generic rules
        'auto'
    """
    options = dict(loss=loss, target=target, batches=batches, generator=generator, seed=seed,
                   overrides=overrides, calibrate=calibrate, include_frozen=include_frozen,
                   on_unknown=on_unknown, max_iters=max_iters, tol=tol, verbose=verbose)
    if policy != "auto" or not isinstance(model, nn.Module) or model_library(model) is None \
            or get_policy("auto").name != "auto":
        return datainit_init(model, data, policy=policy, **options)
    cal = _first_batches(data, batches) if isinstance(batches, int) else []
    problem = own_init_problem(model, cal[0], loss) if cal else None
    chosen, reason = choose_auto(model, get_policy("auto"), problem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = datainit_init(model, cal if cal else data, policy=chosen.name, **options)
    for w in caught:  # at the caller of initwise.init, as datainit.init itself warns
        warnings.warn_explicit(w.message, w.category, *_caller_location())
    report.policy_reason = reason
    return report


def _caller_location() -> tuple[str, int]:
    """(file, line) of the code that called :func:`init`."""
    frame = sys._getframe(2)
    return frame.f_code.co_filename, frame.f_lineno


def _first_batches(data: Any, n: int) -> list:
    """The calibration batches as a list, so the doctor and ``init`` see the same ones (a
    one-shot iterator is read once); empty when ``data`` is not a batch source, which
    ``init`` then refuses with its own message."""
    try:
        return list(iter_batches(data, n))
    except (TypeError, ValueError):
        return []
