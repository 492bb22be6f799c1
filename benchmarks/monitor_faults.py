"""Does ``initwise.Monitor`` catch injected faults, and stay silent on healthy runs? (issue 13)

Every run is a seeded CPU training run with the monitor at its defaults, used as a user would:
``mon = Monitor(model)``; ``mon.step(loss=loss, optimizer=opt)`` after ``opt.step()``
(``mon.epoch_end(val_loss, epoch)`` for the CTR model). A fault is injected just before a known
step ``F`` (``F = 0``: present from the start); a warning or error raised at a step ``>= F``
is a detection, its delay is (step raised - F); one raised before ``F`` is a false alarm.
A :class:`~initwise.monitor.TrainingDiverged` stop is a detection (``train.nonfinite``) and
ends the run.

Faults (model; fault; the codes that name it):

* ``dead_bias_shift`` -- ReLU MLP on digits, Adam; half the units of the 2nd hidden layer get
  their bias shifted by -20 at F=600 (``units.dying`` / ``units.dead``).
* ``dead_lr_spike`` -- ReLU MLP, SGD(0.05, momentum 0.9); lr x100 for 5 steps at F=600
  (about half the units of the 2nd and a third of the 3rd hidden layer die; the loss recovers).
* ``vanishing_sigmoid40`` -- a 40-layer sigmoid MLP (width 32), torch's default init, SGD;
  F=0 (``grad.vanishing`` / ``signal.vanishing`` / ``train.plateau``).
* ``exploding_lr100`` -- ReLU MLP, SGD(0.05); lr x100 from F=600 (``train.divergence`` /
  ``train.nonfinite``).
* ``stall_lr_div1000`` -- tanh MLP, SGD(0.05); lr / 1000 from F=600 (``train.plateau`` /
  ``update.ratio``).
* ``frozen_layer`` -- ReLU MLP, Adam; the first layer's parameter group gets lr = 0 at F=600
  (``update.ratio`` / ``update.missing``).
* ``bad_update_ratio`` -- ReLU MLP, Adam(1e-3); the 2nd layer's group lr x100 at F=600
  (``update.ratio``).
* ``sparse_misscale`` -- EmbeddingBag model on hashed CTR rows (24 ids a row) whose table is
  drawn N(0, 1) (torch's default for embeddings; the healthy twin uses N(0, 1/24)); F=0
  (``signal.exploding`` / ``units.saturated`` / ``units.dead``).
* ``embedding_collapse`` -- EmbeddingBag model; the table projected on its top singular
  direction (rank 1) at F=600. The monitor has no embedding-rank detector: expected missed.
* ``epoch2_cliff`` -- a CTR-like model (``initwise.data.builtin.ctr_synthetic``, 50,000 rows,
  EmbeddingBag 2^18 x 16 -> MLP, Adam 1e-2), 2 epochs; validation loss fed to
  ``mon.epoch_end`` 4 times an epoch; F = the first step of epoch 2 (``train.epoch_cliff``).

Healthy runs: MLP (ReLU, GELU, tanh) on digits, a small CNN on digits, a small Transformer on
a token task, an EmbeddingBag model on hashed CTR rows and an LSTM on a sequence task, Adam or
SGD, 5 seeds each (35 runs), 2,000 steps each.

Targets (issue 13): recall >= 0.95, detection within 200 steps of the fault, no warning or error
on any healthy run.

Usage::

    nice /work/main/.venv/bin/python benchmarks/monitor_faults.py            # ~8 min at load 5
    nice /work/main/.venv/bin/python benchmarks/monitor_faults.py --quick    # ~2 min, no twins

Writes ``benchmarks/out/monitor_faults.json`` (``monitor_faults_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from initwise.monitor import Monitor, TrainingDiverged

OUT = Path(__file__).resolve().parent / "out"
ALARM = ("warning", "error")


# ---- data ----------------------------------------------------------------------------------
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits, standardized per pixel: (1797, 64), labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1.0)
    return x, torch.tensor(d.target, dtype=torch.long)


def ctr_bags(n_rows: int, n_features: int, seed: int = 0) -> tuple[list, torch.Tensor]:
    """Rows of ``ctr_synthetic`` as EmbeddingBag triples (one per row) and their labels."""
    from initwise.data.builtin import ctr_synthetic

    ds = ctr_synthetic(n_rows, 24, n_features, seed=seed, max_cardinality=20_000)
    return ds.X, torch.tensor(ds.y, dtype=torch.long)


def bag_batch(x: Any, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
    """``(ids, offsets, weights)`` of CSR rows ``rows``."""
    sub = x[rows]
    return (torch.from_numpy(sub.indices.astype(np.int64)),
            torch.from_numpy(sub.indptr[:-1].astype(np.int64)),
            torch.from_numpy(sub.data.astype(np.float32)))


@dataclass
class Setup:
    """What a run trains: a model, its optimizer, and a batch source."""

    model: nn.Module
    opt: torch.optim.Optimizer
    batch: Callable[[int], tuple[tuple, torch.Tensor]]
    val: Callable[[], float] | None = None
    steps_per_epoch: int | None = None


def _sampler(x: torch.Tensor, y: torch.Tensor, bs: int, seed: int
             ) -> Callable[[int], tuple[tuple, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1000 + seed)

    def batch(step: int) -> tuple[tuple, torch.Tensor]:
        idx = torch.randint(0, len(x), (bs,), generator=gen)
        return (x[idx],), y[idx]

    return batch


# ---- models ----------------------------------------------------------------------------------
def mlp(act: type[nn.Module], widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers, nn.Linear(widths[-2], widths[-1]))


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x.view(-1, 1, 8, 8)).flatten(1))


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 32, d: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(8, d) * 0.1)
        layer = nn.TransformerEncoderLayer(d, 2, dim_feedforward=64, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 4)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(t) + self.pos).mean(1))


class BagModel(nn.Module):
    def __init__(self, n_features: int, dim: int = 16, hidden: int = 32,
                 table_std: float | None = None) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, dim, mode="sum")
        if table_std is not None:
            nn.init.normal_(self.bag.weight, std=table_std)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, w: torch.Tensor
                ) -> torch.Tensor:
        return self.mlp(self.bag(ids, offsets, per_sample_weights=w))


class SeqLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 32, batch_first=True)
        self.head = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


# ---- setups (one per architecture) ------------------------------------------------------------
_CACHE: dict[str, Any] = {}


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    if "digits" not in _CACHE:
        _CACHE["digits"] = digits()
    return _CACHE["digits"]


def _ctr(n_rows: int, n_features: int) -> tuple[Any, torch.Tensor]:
    key = f"ctr{n_rows}_{n_features}"
    if key not in _CACHE:
        _CACHE[key] = ctr_bags(n_rows, n_features)
    return _CACHE[key]


def setup_mlp(seed: int, act: type[nn.Module] = nn.ReLU, opt: str = "adam",
              lr: float | None = None, depth: int = 3, width: int = 64) -> Setup:
    torch.manual_seed(seed)
    x, y = _digits()
    model = mlp(act, [64] + [width] * depth + [10])
    if opt == "adam":
        o: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr or 1e-3)
    else:
        o = torch.optim.SGD(model.parameters(), lr=lr or 0.05, momentum=0.9)
    return Setup(model, o, _sampler(x, y, 64, seed))


def setup_mlp_groups(seed: int, lr: float = 1e-3) -> Setup:
    """ReLU MLP with one Adam parameter group per Linear (for per-layer lr faults)."""
    s = setup_mlp(seed)
    linears = [m for m in s.model if isinstance(m, nn.Linear)]
    s.opt = torch.optim.Adam([{"params": m.parameters()} for m in linears], lr=lr)
    return s


def setup_cnn(seed: int) -> Setup:
    torch.manual_seed(seed)
    x, y = _digits()
    model = DigitsCNN()
    return Setup(model, torch.optim.Adam(model.parameters(), lr=1e-3), _sampler(x, y, 64, seed))


def setup_transformer(seed: int) -> Setup:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(2000 + seed)
    model = TinyTransformer()

    def batch(step: int) -> tuple[tuple, torch.Tensor]:
        t = torch.randint(0, 32, (32, 8), generator=gen)
        return (t,), ((t == 3).sum(1).clamp(max=3)).long()  # how many 3s (0, 1, 2, 3+)

    return Setup(model, torch.optim.Adam(model.parameters(), lr=1e-3), batch)


def setup_bag(seed: int, table_std: float | None = 1 / math.sqrt(24), lr: float = 1e-3
              ) -> Setup:
    torch.manual_seed(seed)
    x, y = _ctr(20_000, 2**14)
    model = BagModel(2**14, table_std=table_std)
    rng = np.random.default_rng(3000 + seed)

    def batch(step: int) -> tuple[tuple, torch.Tensor]:
        rows = rng.integers(0, x.shape[0], 128)
        return bag_batch(x, rows), y[torch.from_numpy(rows)]

    return Setup(model, torch.optim.Adam(model.parameters(), lr=lr), batch)


def setup_lstm(seed: int) -> Setup:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(4000 + seed)
    model = SeqLSTM()

    def batch(step: int) -> tuple[tuple, torch.Tensor]:
        s = torch.randn(32, 10, 4, generator=gen)
        return (s,), (s[:, :, 0].sum(1) > 0).long()

    return Setup(model, torch.optim.Adam(model.parameters(), lr=3e-3), batch)


def setup_ctr_epochs(seed: int) -> Setup:
    """The CTR-like model trained in epochs over a fixed training set, with a validation set."""
    torch.manual_seed(seed)
    x, y = _ctr(50_000, 2**18)
    n_train, bs = 40_000, 256
    model = BagModel(2**18, dim=16, hidden=64, table_std=1 / math.sqrt(24))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(5000 + seed)
    per_epoch = n_train // bs
    order: list[np.ndarray] = []

    def batch(step: int) -> tuple[tuple, torch.Tensor]:
        i = (step - 1) % per_epoch
        if i == 0:
            order[:] = [rng.permutation(n_train)]
        rows = order[0][i * bs:(i + 1) * bs]
        return bag_batch(x, rows), y[torch.from_numpy(rows)]

    val_rows = np.arange(n_train, x.shape[0])
    val_in, val_y = bag_batch(x, val_rows), y[torch.from_numpy(val_rows)]

    def val() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(model(*val_in), val_y))

    return Setup(model, opt, batch, val=val, steps_per_epoch=per_epoch)


HEALTHY: dict[str, Callable[[int], Setup]] = {
    "mlp_relu_adam": lambda s: setup_mlp(s, nn.ReLU),
    "mlp_gelu_sgd": lambda s: setup_mlp(s, nn.GELU, "sgd", 0.02),
    "mlp_tanh_adam": lambda s: setup_mlp(s, nn.Tanh),
    "cnn_adam": setup_cnn,
    "transformer_adam": setup_transformer,
    "embbag_adam": setup_bag,
    "lstm_adam": setup_lstm,
}


# ---- what a fault did (measured without the monitor, on fixed data) ---------------------------
def dead_fractions(model: nn.Module) -> list[float]:
    """Share of each hidden ReLU layer's units that are zero on every digits row."""
    x, _ = _digits()
    out, h = [], x
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, nn.ReLU):
                out.append(round(float(((h > 0).sum(0) == 0).double().mean()), 3))
    return out


def effective_rank(w: torch.Tensor) -> float:
    """exp(entropy of the normalized singular values) (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(w.detach().double())
    p = s / s.sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def effect(setup: Setup) -> dict[str, Any]:
    """Dead fractions (ReLU MLPs) or the table's effective rank (bag models)."""
    m = setup.model
    if isinstance(m, nn.Sequential) and any(isinstance(x, nn.ReLU) for x in m):
        return {"dead_fraction": dead_fractions(m)}
    if isinstance(m, BagModel):
        return {"table_effective_rank": round(effective_rank(m.bag.weight), 2)}
    return {}


# ---- faults ----------------------------------------------------------------------------------
def _set_lr(opt: torch.optim.Optimizer, factor: float, groups: list[int] | None = None) -> None:
    for i, g in enumerate(opt.param_groups):
        if groups is None or i in groups:
            g["lr"] *= factor


def inject_bias_shift(s: Setup, step: int) -> None:
    layer = [m for m in s.model if isinstance(m, nn.Linear)][1]
    with torch.no_grad():
        layer.bias[: layer.out_features // 2] -= 20.0


def inject_rank1(s: Setup, step: int) -> None:
    w = s.model.bag.weight
    with torch.no_grad():
        _, _, vh = torch.linalg.svd(w, full_matrices=False)
        v = vh[:1]
        w.copy_(w @ v.T @ v)


@dataclass
class Fault:
    """One injected fault: how to build the run, when and what to inject, what names it."""

    name: str
    setup: Callable[[int], Setup]
    fault_step: int
    steps: int
    expected: tuple[str, ...]
    inject: Callable[[Setup, int], None] | None = None
    until: int | None = None  # the fault is undone before this step (lr spikes)
    undo: Callable[[Setup, int], None] | None = None
    twin: Callable[[int], Setup] | None = None  # the same run without the fault


FAULTS = [
    Fault("dead_bias_shift", setup_mlp, 600, 1400, ("units.dying", "units.dead"),
          inject_bias_shift),
    Fault("dead_lr_spike", lambda s: setup_mlp(s, opt="sgd"), 600, 1400,
          ("units.dying", "units.dead"), lambda st, _: _set_lr(st.opt, 100.0), 605,
          lambda st, _: _set_lr(st.opt, 1 / 100.0)),
    Fault("vanishing_sigmoid40",
          lambda s: setup_mlp(s, nn.Sigmoid, "sgd", 0.1, depth=40, width=32), 0, 1400,
          ("grad.vanishing", "signal.vanishing", "train.plateau"),
          twin=lambda s: setup_mlp(s, nn.Sigmoid, "sgd", 0.1, depth=3, width=32)),
    Fault("exploding_lr100", lambda s: setup_mlp(s, opt="sgd"), 600, 1400,
          ("train.divergence", "train.nonfinite"), lambda st, _: _set_lr(st.opt, 100.0)),
    Fault("stall_lr_div1000", lambda s: setup_mlp(s, nn.Tanh, "sgd"), 600, 2000,
          ("train.plateau", "update.ratio"), lambda st, _: _set_lr(st.opt, 1e-3)),
    Fault("frozen_layer", setup_mlp_groups, 600, 1400, ("update.ratio", "update.missing"),
          lambda st, _: _set_lr(st.opt, 0.0, [0])),
    Fault("bad_update_ratio", setup_mlp_groups, 600, 1400, ("update.ratio",),
          lambda st, _: _set_lr(st.opt, 100.0, [1])),
    Fault("sparse_misscale", lambda s: setup_bag(s, table_std=1.0), 0, 1400,
          ("data.sparse_fan_in", "signal.exploding", "units.saturated", "units.dead"),
          twin=setup_bag),
    Fault("embedding_collapse", setup_bag, 600, 1400, ("embedding.collapse",), inject_rank1),
    Fault("epoch2_cliff", setup_ctr_epochs, 157, 2 * 156, ("train.epoch_cliff",)),
]


# ---- one run ---------------------------------------------------------------------------------
def run(setup: Setup, steps: int, fault: Fault | None = None) -> dict[str, Any]:
    """Train ``steps`` steps under a default Monitor; the findings with the step they appeared."""
    model, opt = setup.model, setup.opt
    mon = Monitor(model)
    raised: list[dict[str, Any]] = []
    stopped = None
    losses = []

    def note(found: list, at: int) -> None:
        for f in found:
            raised.append({"code": f.check, "severity": f.severity, "where": f.where,
                           "raised": at, "since": f.step, "evidence": f.evidence})

    t0 = time.perf_counter()
    per_eval = setup.steps_per_epoch // 4 if setup.steps_per_epoch else None
    val_history: list[tuple[int, int, float]] = []
    effects: dict[str, Any] = {}
    try:
        for step in range(1, steps + 1):
            if fault is not None and fault.inject is not None and step == fault.fault_step:
                fault.inject(setup, step)
            if fault is not None and fault.undo is not None and step == fault.until:
                fault.undo(setup, step)
            x, y = setup.batch(step)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(*x), y)
            loss.backward()
            opt.step()
            if fault is not None and step == fault.fault_step - 1:
                # before mon.step: a forward after it could be the one its probe measures
                effects["before_fault"] = effect(setup)
            note(mon.step(loss=loss, optimizer=opt), step)
            if step % 50 == 0:
                losses.append(loss.item())
            if per_eval and step % per_eval == 0:
                epoch = (step - 1) // setup.steps_per_epoch
                v = setup.val()
                val_history.append((step, epoch, round(v, 4)))
                note(mon.epoch_end(v, epoch), step)
    except TrainingDiverged as e:
        stopped = e.step
        note([e.finding], e.step)
    finally:
        mon.close()
    effects["end"] = effect(setup)
    return {"findings": raised, "stopped_at": stopped, "seconds": time.perf_counter() - t0,
            "loss_every_50": losses, "val_history": val_history, "effect": effects}


def score_fault(fault: Fault, res: dict[str, Any]) -> dict[str, Any]:
    alarms = [f for f in res["findings"] if f["severity"] in ALARM]
    after = [f for f in alarms if f["raised"] >= fault.fault_step]
    first = min((f["raised"] for f in after), default=None)
    first_expected = min((f["raised"] for f in after if f["code"] in fault.expected),
                         default=None)
    delay = None if first is None else first - fault.fault_step
    return {"fault": fault.name, "fault_step": fault.fault_step, "expected": fault.expected,
            "detected": first is not None,
            "detected_expected_code": first_expected is not None,
            "delay": delay,
            "delay_expected_code": None if first_expected is None
            else first_expected - fault.fault_step,
            "within_200": delay is not None and delay <= 200,
            "codes": sorted({f"{f['code']}@{f['where']}" for f in after}),
            "false_alarms_before_fault": [f for f in alarms if f["raised"] < fault.fault_step],
            **res}


# ---- tables ----------------------------------------------------------------------------------
def _codes(fs: list[dict[str, Any]], limit: int = 4) -> str:
    first: dict[str, str] = {}  # code -> its first appearance
    for f in fs:
        first.setdefault(f["code"], f"{f['code']} ({f['severity'][0]}, step {f['raised']})")
    keys = list(first.values())
    more = len(keys) - limit
    return ", ".join(keys[:limit]) + (f", +{more} more" if more > 0 else "") if keys else "-"


def _final(res: dict[str, Any]) -> float:
    """Median training loss over the last 200 steps (the sampled values)."""
    tail = res["loss_every_50"][-4:]
    return float(np.median(tail)) if tail else math.nan


def effect_table(scores: list[dict[str, Any]]) -> str:
    """What each fault did to the run, against its fault-free twin."""
    lines = ["| fault | final loss (twin) | effect before F | effect at the end (twin) | "
             "val loss (step, epoch) |", "|---|---|---|---|---|"]
    for s in scores:
        tw = s.get("twin", {})
        eff = s["effect"]
        val = ", ".join(f"{v} ({st}, {e})" for st, e, v in s["val_history"][2:6])
        lines.append(f"| {s['fault']} | {_final(s):.3g} ({tw.get('final_loss', math.nan):.3g}) "
                     f"| {eff.get('before_fault', '-')} | {eff.get('end', '-')} "
                     f"({tw.get('effect', {}).get('end', '-')}) | {val or '-'} |")
    return "\n".join(lines)


def fault_table(scores: list[dict[str, Any]]) -> str:
    lines = ["| fault | F | detected | first alarm after F (delay) | expected code (delay) | "
             "alarms after F: code (severity, step raised) | alarms before F |",
             "|---|---|---|---|---|---|---|"]
    for s in scores:
        after = [f for f in s["findings"] if f["severity"] in ALARM
                 and f["raised"] >= s["fault_step"]]
        d = "-" if s["delay"] is None else str(s["delay"])
        de = "-" if s["delay_expected_code"] is None else str(s["delay_expected_code"])
        stop = f"; stopped at {s['stopped_at']}" if s["stopped_at"] else ""
        lines.append(f"| {s['fault']} | {s['fault_step']} | {'yes' if s['detected'] else 'NO'} "
                     f"| {d} | {'/'.join(s['expected'])}: {de} | {_codes(after)}{stop} | "
                     f"{_codes(s['false_alarms_before_fault'])} |")
    return "\n".join(lines)


def healthy_table(healthy: list[dict[str, Any]]) -> str:
    lines = ["| architecture | runs | steps | runs with an alarm | alarms (code: runs) | "
             "final loss (median) |", "|---|---|---|---|---|---|"]
    by: dict[str, list[dict[str, Any]]] = {}
    for h in healthy:
        by.setdefault(h["arch"], []).append(h)
    for arch, hs in by.items():
        bad = [h for h in hs if any(f["severity"] in ALARM for f in h["findings"])]
        codes: dict[str, int] = {}
        for h in hs:
            for c in {f["code"] for f in h["findings"] if f["severity"] in ALARM}:
                codes[c] = codes.get(c, 0) + 1
        final = float(np.median([h["loss_every_50"][-1] for h in hs if h["loss_every_50"]]))
        lines.append(f"| {arch} | {len(hs)} | {hs[0]['steps']} | {len(bad)} | "
                     + (", ".join(f"{c}: {n}" for c, n in sorted(codes.items())) or "-")
                     + f" | {final:.3g} |")
    return "\n".join(lines)


def summary(scores: list[dict[str, Any]], healthy: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(scores)
    noisy = [h for h in healthy if any(f["severity"] in ALARM for f in h["findings"])]
    return {"faults": n,
            "recall": sum(s["detected"] for s in scores) / n,
            "recall_expected_code": sum(s["detected_expected_code"] for s in scores) / n,
            "recall_within_200": sum(s["within_200"] for s in scores) / n,
            "faults_with_false_alarm_before_fault":
                sum(bool(s["false_alarms_before_fault"]) for s in scores),
            "healthy_runs": len(healthy), "healthy_runs_with_alarm": len(noisy),
            "healthy_architectures": len({h["arch"] for h in healthy})}


def iter_healthy(seeds: int) -> Iterator[tuple[str, int]]:
    for arch in HEALTHY:
        for seed in range(seeds):
            yield arch, seed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="~2 min: no twins, 1 seed per healthy architecture, 1,000 steps")
    p.add_argument("--seeds", type=int, default=None, help="healthy seeds per architecture")
    p.add_argument("--steps", type=int, default=2000, help="steps of a healthy run")
    p.add_argument("--only", nargs="*", default=None, help="run only these faults")
    p.add_argument("--no-healthy", action="store_true")
    p.add_argument("--no-twins", action="store_true", help="skip the fault-free twin runs")
    a = p.parse_args()
    torch.set_num_threads(1)
    seeds = a.seeds or (1 if a.quick else 5)
    steps = 1000 if a.quick and a.steps == 2000 else a.steps
    load, t0 = os.getloadavg(), time.perf_counter()
    scores = []
    for fault in FAULTS:
        if a.only is not None and fault.name not in a.only:
            continue
        scores.append(score_fault(fault, run(fault.setup(0), fault.steps, fault)))
        if not (a.no_twins or a.quick) and (fault.inject is not None or fault.twin is not None):
            twin = run((fault.twin or fault.setup)(0), fault.steps)
            scores[-1]["twin"] = {k: twin[k] for k in ("findings", "effect", "val_history")}
            scores[-1]["twin"]["final_loss"] = _final(twin)
        print(f"[{fault.name}: {scores[-1]['seconds']:.0f} s]", flush=True)
    healthy = []
    if not a.no_healthy:
        for arch, seed in iter_healthy(seeds):
            r = run(HEALTHY[arch](seed), steps)
            healthy.append({"arch": arch, "seed": seed, "steps": steps, **r})
            print(f"[{arch} seed {seed}: {r['seconds']:.0f} s, "
                  f"{len(r['findings'])} finding(s)]", flush=True)
    summ = summary(scores, healthy) if scores else {}
    load_end = os.getloadavg()
    print(f"\nLoad average (1/5/15 min) at start {load}, at end {load_end}; torch threads 1; "
          f"{time.perf_counter() - t0:.0f} s.\n")
    if scores:
        print(fault_table(scores))
        print("\nWhat the faults did (the twin: the same seed without the fault):\n")
        print(effect_table(scores))
    if healthy:
        print("\nHealthy runs (any warning or error is a false alarm):\n")
        print(healthy_table(healthy))
    print("\nSummary:", json.dumps(summ))
    OUT.mkdir(exist_ok=True)
    name = "monitor_faults_quick.json" if a.quick else "monitor_faults.json"
    if a.only is None and not a.no_healthy:
        (OUT / name).write_text(json.dumps(
            {"load_start": load, "load_end": load_end, "summary": summ, "faults": scores,
             "healthy": healthy}, indent=1, default=str))


if __name__ == "__main__":
    main()
