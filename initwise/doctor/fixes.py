"""Automatic fixes attached to findings; one shared fix runs once per ``Diagnosis.fix``."""

from __future__ import annotations

from typing import Any

__all__ = ["DATAINIT_FIX", "DataInitFix"]

DATAINIT_SNIPPET = "import initwise\ninitwise.init(model, train_batches)  # data-aware init"


class DataInitFix:
    """Re-initialize with :func:`initwise.datainit.init` on the user's data.

    Data-aware init standardizes what the first layer sees, calibrates every layer's scale on
    real batches (effective fan-in of sparse inputs included), revives dead units and sets the
    output bias to the label prior -- one call fixes all findings that carry it.
    """

    key = "initwise.datainit.init"

    def __call__(self, model: Any, data: Any) -> Any:
        if data is None:
            raise ValueError(
                "Diagnosis.fix: the data-aware init needs batches; call "
                "diagnosis.fix(model, data) with the training batch(es)."
            )
        from initwise.datainit import init

        return init(model, data)

    def __repr__(self) -> str:
        return "DataInitFix(initwise.datainit.init)"


DATAINIT_FIX = DataInitFix()


#: Hidden activations whose deep chains no initialization can make trainable: outputs with a
#: large common mode (mean 1/2) and slope <= 1/4 (mean-field trainable depth ~2-3 for any
#: sigma_w, initwise.theory.max_trainable_depth).
NOT_INIT_FIXABLE = frozenset({"sigmoid", "hardsigmoid"})
ARCH_NOTE = (" No initialization makes a deep chain of sigmoid units trainable: use tanh/ReLU "
             "hidden activations or normalization layers.")


def depth_fix(activations: set[str | None]) -> tuple[DataInitFix | None, str]:
    """The automatic fix for a depth-related finding given the chain's activations.

    For tanh-like chains the default :func:`initwise.datainit.init` is a sound depth fix: it
    zeroes the biases and calibrates every layer to unit pre-activation RMS, i.e. q* = 1,
    sigma_w ~ 1.59 for tanh, where chi_1 ~ 1.18 (just on the chaotic side of the edge of
    chaos), xi_c ~ 14 and the mean-field trainable depth is ~83 (:mod:`initwise.theory`); the
    20-layer ``sigma_b = 1`` zoo case (trainable depth ~6.5) is fixed by it. Its head is shrunk
    to the loss budget, which ``grad.vanishing`` no longer mistakes for depth decay
    (``check_grad_scale``).

    Args:
        activations: the activation names of the chain (``None`` for unknown).

    Returns:
        ``(DATAINIT_FIX, "")``, or ``(None, note)`` when the activation makes it unfixable by init.
    """
    if activations & NOT_INIT_FIXABLE:
        return None, ARCH_NOTE
    return DATAINIT_FIX, ""
