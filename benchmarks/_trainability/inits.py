"""The initializations compared: torch default, xavier, kaiming, orthogonal, lsuv, initwise.

Baselines are applied the way a careful user applies them:

* ``default`` -- whatever the modules' constructors drew (``nn.EmbeddingBag``: N(0, 1)).
* ``xavier`` -- ``xavier_uniform_`` (gain 1) on every weight, zero biases.
* ``kaiming`` -- ``kaiming_normal_(mode="fan_in")`` with the network's nonlinearity on every
  hidden layer (``gelu`` -> ``"relu"``, which torch's table lacks; ``selu`` -> ``"linear"``, i.e.
  LeCun, as torch's documentation advises for self-normalizing nets), ``"linear"`` on the head,
  zero biases.
* ``orthogonal`` -- ``orthogonal_`` with the same matched gain, zero biases.
* ``lsuv`` -- the ``lsuv`` package (0.3.0): ``lsuv_with_singlebatch(model, inputs)`` on one
  training batch, as its README shows. It handles Linear/Conv only: an ``nn.EmbeddingBag``
  keeps torch's default.
* ``initwise`` -- ``initwise.datainit.init(model, batches)`` on the first training batches.

Embedding tables are (num_embeddings, dim) but act as a Linear(num_embeddings -> dim): the
baselines draw them on that (out=dim, in=num_embeddings) view, so fan-in is the vocabulary size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

INITS = ("default", "xavier", "kaiming", "orthogonal", "lsuv", "initwise")
_TORCH_NONLIN = {"relu": "relu", "tanh": "tanh", "gelu": "relu", "selu": "linear"}


def _fill_linear_view(weight: torch.Tensor, fill: Callable[[torch.Tensor], Any]) -> None:
    """Fill an embedding table (n, d) as the Linear weight (d, n) it stands for."""
    view = torch.empty(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    fill(view)
    weight.copy_(view.t())


def _baseline(model: nn.Module, scheme: str, act: str) -> None:
    nonlin = _TORCH_NONLIN[act]
    head = getattr(model, "head", None)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, (nn.Linear, nn.EmbeddingBag, nn.Embedding)):
                continue
            layer_nonlin = "linear" if module is head else nonlin
            gain = nn.init.calculate_gain(layer_nonlin)
            if scheme == "xavier":
                fill = nn.init.xavier_uniform_
            elif scheme == "kaiming":

                def fill(t, _n=layer_nonlin):
                    return nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity=_n)
            else:

                def fill(t, _g=gain):
                    return nn.init.orthogonal_(t, gain=_g)

            if isinstance(module, nn.Linear):
                fill(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
            else:
                _fill_linear_view(module.weight, fill)


def _lsuv(model: nn.Module, calib: list[tuple[Any, Any]]) -> str:
    from lsuv import lsuv_with_singlebatch

    inputs = calib[0][0]
    lsuv_with_singlebatch(model, inputs, verbose=False)
    skipped = [
        n for n, m in model.named_modules() if isinstance(m, (nn.EmbeddingBag, nn.Embedding))
    ]
    return f"lsuv skipped {skipped} (kept torch default)" if skipped else ""


def initwise_available() -> tuple[bool, str]:
    """Whether ``initwise.datainit.init`` exists yet (it is written concurrently)."""
    try:
        from initwise.datainit import init  # noqa: F401
    except ImportError as exc:
        return False, f"pending: {exc}"
    return True, ""


def _initwise(model: nn.Module, calib: list[tuple[Any, Any]], seed: int) -> str:
    from initwise.datainit import init

    gen = torch.Generator().manual_seed(seed)
    report = init(model, calib, batches=len(calib), generator=gen)
    loss = getattr(report, "loss", None)
    return "" if loss is None else f"report.loss={loss}"


def apply_init(
    name: str, model: nn.Module, act: str, calib: list[tuple[Any, Any]], seed: int
) -> tuple[float, str]:
    """Initialize ``model`` in place by method ``name``; return (seconds, note)."""
    start = time.perf_counter()
    note = ""
    if name == "default":
        pass
    elif name in ("xavier", "kaiming", "orthogonal"):
        _baseline(model, name, act)
    elif name == "lsuv":
        note = _lsuv(model, calib)
    elif name == "initwise":
        note = _initwise(model, calib, seed)
    else:
        raise ValueError(f"init: unknown {name!r}; valid values are {INITS}")
    return time.perf_counter() - start, note
