"""One model, one seed: build it, derive the three arms, diagnose them, train each arm.

Arms (same model bits before the arm, same batches for every arm and optimizer):

* ``own``: the library's own init, as built (``torch.manual_seed(seed)`` then the constructor).
* ``init``: ``initwise.init(model, calib_batches, seed=seed)`` on top of it.
* ``auto``: ``initwise.apply(model, policy="auto", seed=seed)``, no data.

Budgets are fixed before any run (no tuning per init or model; constant learning rate, no
warm-up; gradients clipped at norm ``CLIP`` as the Hugging Face Trainer does by default).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from _real.models import ModelSpec, loss_and_count, make_batch
from _real.tasks import Task

ARMS = ("own", "init", "auto")
OPTIMIZERS = {
    "adamw": {"lr": 1e-3, "weight_decay": 0.01},
    "sgd": {"lr": 0.05, "momentum": 0.9},
}
CLIP = 1.0
CALIB_BATCHES = 4
EVAL_CHUNK = 128
CURVE_EVERY = 10


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD+momentum with the fixed settings of :data:`OPTIMIZERS`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown {name!r}; valid values are {tuple(OPTIMIZERS)}")
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), **OPTIMIZERS[name])
    return torch.optim.SGD(model.parameters(), **OPTIMIZERS[name])


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The training batches' row indices: shuffled epochs drawn from ``seed`` only."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    idx: list[torch.Tensor] = []
    while len(idx) < steps:
        perm = torch.randperm(n, generator=gen)
        idx += [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return idx[:steps]


def calibration_rows(n: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """Row indices of the calibration batches given to ``initwise.init`` (train split)."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    perm = torch.randperm(n, generator=gen)
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(CALIB_BATCHES)]


BN_ROWS = 512


@torch.no_grad()
def precise_bn(spec: ModelSpec, model: nn.Module, task: Task) -> nn.Module:
    """A copy whose batch-norm running statistics are re-estimated on ``BN_ROWS`` train rows.

    Cumulative averages (``momentum=None``) over the first ``BN_ROWS`` train rows, in chunks of
    ``EVAL_CHUNK``: the held-out loss then measures the weights, not how far the running
    averages lag behind them (after 100 steps at torchvision MobileNetV3's momentum 0.01 they
    are still mostly the constructor's (0, 1)). A model without batch norm is returned as is.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    m = copy.deepcopy(model)
    bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None
    m.train()
    for i in range(0, min(BN_ROWS, task.n_train), EVAL_CHUNK):
        loss_and_count(spec, m, make_batch(spec, task.rows("train", slice(i, i + EVAL_CHUNK))))
    return m


@torch.no_grad()
def held_out_loss(spec: ModelSpec, model: nn.Module, task: Task) -> float:
    """Mean loss per target on the whole held-out split, in eval mode, after :func:`precise_bn`.

    Dropout is 0 everywhere, so eval mode differs from train mode only in the norms.
    """
    m = precise_bn(spec, model, task)
    m.eval()
    total, count = 0.0, 0
    n = int(task.held[0].shape[0])
    for i in range(0, n, EVAL_CHUNK):
        rows = task.rows("held", slice(i, i + EVAL_CHUNK))
        loss, k = loss_and_count(spec, m, make_batch(spec, rows))
        total += float(loss) * k
        count += k
    model.train()
    return total / count


def train(spec: ModelSpec, model: nn.Module, task: Task, order: list[torch.Tensor],
          opt_name: str, seed: int) -> dict[str, Any]:
    """Train ``model`` in place on the batches ``order``; stop at a non-finite loss."""
    torch.manual_seed(seed)
    model.train()
    opt = make_optimizer(opt_name, model)
    times: list[float] = []
    curve: list[float] = []
    diverged = False
    for step, idx in enumerate(order):
        batch = make_batch(spec, task.rows("train", idx))
        start = time.perf_counter()
        loss, _ = loss_and_count(spec, model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        times.append(time.perf_counter() - start)
        if step % CURVE_EVERY == 0 or step == len(order) - 1:
            curve.append(round(value, 5))
    final = float("nan") if diverged else held_out_loss(spec, model, task)
    return {"final_loss": final, "diverged": diverged or not math.isfinite(final),
            "train_curve": curve, "step_s": times}


def _findings(diag: Any) -> list[dict[str, str]]:
    return [{"check": f.check, "severity": f.severity, "where": f.where}
            for f in getattr(diag, "findings", [])]


def diagnose(model: nn.Module, batch: Any) -> dict[str, Any]:
    """The doctor's findings (code, severity, where) on one batch, or the error it raised."""
    import initwise

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diag = initwise.doctor(model, batch)
    except Exception as exc:  # the benchmark records a failing doctor instead of stopping
        return {"error": f"{type(exc).__name__}: {exc}"[:500], "findings": [],
                "seconds": time.perf_counter() - start}
    return {"findings": _findings(diag), "seconds": time.perf_counter() - start}


def _timed(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run ``fn``, recording its wall time, its warnings and any exception it raised."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
            error = None
        except Exception as exc:  # recorded: an arm that cannot be built is a result
            error = f"{type(exc).__name__}: {exc}"[:500]
    seconds = time.perf_counter() - start
    msgs = sorted({str(w.message)[:300] for w in caught})
    return {"seconds": seconds, "error": error, "n_warnings": len(caught), "warnings": msgs[:8]}


def build_arms(spec: ModelSpec, seed: int, calib: list[Any]) -> tuple[dict, dict]:
    """The three arms' models and how each was made (time, warnings, error)."""
    import initwise

    torch.manual_seed(seed)
    own = spec.build()
    own.train()
    models = {"own": own, "init": copy.deepcopy(own), "auto": copy.deepcopy(own)}
    made = {"own": {"seconds": 0.0, "error": None, "n_warnings": 0, "warnings": []}}
    made["init"] = _timed(lambda: initwise.init(models["init"], calib, seed=seed))
    made["auto"] = _timed(lambda: initwise.apply(models["auto"], policy="auto", seed=seed))
    for arm in ("init", "auto"):
        models[arm].train()
    return models, made


def warm_up() -> None:
    """One untimed init, apply and doctor on a tiny model: initwise's lazy imports and first-call
    costs are paid here once, not by the first model's timed init."""
    import initwise

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    batch = (torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        initwise.init(net, [batch], seed=0)
        initwise.apply(net, policy="auto", seed=0)
        initwise.doctor(net, batch)


def run_seed(spec: ModelSpec, task: Task, seed: int, steps: int, opts: list[str],
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Everything measured for one (model, seed): arms, doctor, initial and final losses."""
    calib = [make_batch(spec, task.rows("train", idx))
             for idx in calibration_rows(task.n_train, spec.batch_size, seed)]
    models, made = build_arms(spec, seed, calib)
    order = batch_order(task.n_train, spec.batch_size, steps, seed)
    arms: dict[str, dict[str, Any]] = {}
    for arm in ARMS:
        rec: dict[str, Any] = dict(made[arm])
        if rec["error"] is None:
            rec["initial_loss"] = held_out_loss(spec, models[arm], task)
            rec["doctor"] = diagnose(models[arm], calib[0])
        rec["runs"] = {}
        arms[arm] = rec
    for opt in opts:  # optimizer outer, arm inner: machine load hits the arms alike
        for arm in ARMS:
            if arms[arm]["error"] is not None:
                continue
            model = copy.deepcopy(models[arm])
            arms[arm]["runs"][opt] = train(spec, model, task, order, opt, seed)
    step_s = [t for a in arms.values() for r in a["runs"].values() for t in r["step_s"][1:]]
    mean_step = sum(step_s) / len(step_s) if step_s else float("nan")
    for a in arms.values():
        a["init_steps"] = a["seconds"] / mean_step if mean_step > 0 else float("nan")
        for r in a["runs"].values():
            r["mean_step_s"] = sum(r["step_s"][1:]) / max(len(r["step_s"]) - 1, 1)
            del r["step_s"]
    log(_progress(spec.name, seed, arms, mean_step))
    return {"seed": seed, "mean_step_s": mean_step, "arms": arms}


def _progress(name: str, seed: int, arms: dict, mean_step: float) -> str:
    parts = []
    for arm, a in arms.items():
        if a["error"] is not None:
            parts.append(f"{arm}: ERROR")
            continue
        finals = " ".join(f"{o}={r['final_loss']:.3f}" for o, r in a["runs"].items())
        t = f" {a['seconds']:.1f}s" if arm != "own" else ""
        parts.append(f"{arm}: L0={a['initial_loss']:.3f} {finals}{t}")
    return f"  {name} seed {seed} (step {1000 * mean_step:.0f} ms) | " + " | ".join(parts)
