"""What ``initwise.Monitor`` costs per training step (issue 13's overhead benchmark).

Three CPU models, ``torch.set_num_threads(1)``, Adam, a fixed pool of seeded batches:

* ``sparse_mlp``: ``EmbeddingBag(2**14, 32, mode="sum")`` over hashed sparse rows (24 ids a row,
  batch 256) -> ReLU -> 2x[Linear(256), ReLU] -> Linear(2); 0.6 M parameters, dense gradients.
* ``cnn``: 3 conv layers (1 -> 16 -> 32 -> 32 channels, 3x3) with ReLU and max-pooling on random
  16x16 images (batch 64) -> Linear(10).
* ``transformer``: ``nn.TransformerEncoder`` (2 layers, d=64, 4 heads, feed-forward 128) over an
  embedding of 1,000 tokens (sequence 32, batch 32), mean-pooled -> Linear(10).

Each configuration trains its own copy of the model (same weights, same batches), so monitors
never share an optimizer. The baseline (no monitor) and every configuration are trained
interleaved step by step in a rotating order (A/B/C/.../A/B/C..., FINDINGS.md section 3), in
rounds of ``--steps`` steps each (256: one scheduled step even at ``every=256``; 300 for the
default's ``every=100``); per round, a configuration's time per step is divided by the
baseline's, and the table gives the median over rounds, with the inter-quartile range. CPU time
of the thread (``time.thread_time``) is the main figure -- other processes on a shared machine
inflate wall time, not it; wall-time ratios are given beside it.

Tiers (the Cockpit-style table): ``cheap`` = ``Monitor(every=10**9, sync_every=k)`` (loss ring
buffer every step; at each synchronization the loss read, global gradient norm and update/weight
ratios); ``cheap+sched`` = ``Monitor(every=k, sync_every=k)`` (plus the probe on the user's
forward and the doctor's training checks every k steps). The default (``every=100,
sync_every=16``) and the worst case (``every=1, sync_every=1``) are timed the same way.

The per-statistic table times the monitor's internal steps one by one (median of repeated calls
on a monitor that has run a few hundred steps); these are private methods, called only to split
the cost (thread CPU time), and their sum need not equal the end-to-end difference:

* ``loss buffer write`` (every step), ``sync read`` (the buffer read, EMA and detectors; per
  synchronization), ``grad norms`` (per synchronization), ``update copy`` (the pre-step copy of
  the parameters) and ``update compare`` (ratio per tensor), both per synchronization;
* ``scheduled probe`` (one forward + backward with the probe's hooks armed, minus a plain one)
  and ``scheduled checks`` (the measurements and checks of that step).

Usage::

    nice /work/main/.venv/bin/python benchmarks/monitor_overhead.py            # ~20 min*
    nice /work/main/.venv/bin/python benchmarks/monitor_overhead.py --quick    # ~1.5 min*
    nice /work/main/.venv/bin/python benchmarks/monitor_overhead.py --only-default  # ~3 min

(* on the shared 2-core machine at load ~5-6; about a third of that when it is idle.)

Writes ``benchmarks/out/monitor_overhead.json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from initwise.monitor import Monitor

OUT = Path(__file__).resolve().parent / "out"
SCHEDULES = (1, 4, 16, 64, 256)
NEVER = 10**9

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


# ---- models and data ----------------------------------------------------------------------
class SparseMLP(nn.Module):
    """EmbeddingBag over hashed ids -> ReLU MLP (a CTR / bag-of-words shape)."""

    def __init__(self, n_features: int = 2**14, dim: int = 32, hidden: int = 256,
                 n_out: int = 2) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, dim, mode="sum")
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.bag(ids, offsets))


class SmallCNN(nn.Module):
    """3 conv layers with ReLU and pooling, then a linear head."""

    def __init__(self, n_out: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(32 * 4 * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class SmallTransformer(nn.Module):
    """Token embedding -> 2-layer TransformerEncoder (d=64) -> mean pool -> linear head."""

    def __init__(self, vocab: int = 1000, d: int = 64, n_out: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, 4, dim_feedforward=128, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, n_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(1))


def hashed_rows(n_rows: int, nnz: int, n_features: int, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, offsets)`` of ``n_rows`` bags with ``nnz`` hashed ids each (Zipf-like skew)."""
    u = torch.rand(n_rows * nnz, generator=gen)
    ids = (n_features * u**3).long().clamp_(max=n_features - 1)  # frequent ids near 0
    return ids, torch.arange(0, n_rows * nnz, nnz)


def make_task(name: str, n_batches: int, seed: int = 0
              ) -> tuple[Callable[[], nn.Module], list[Batch]]:
    """A model factory and a pool of seeded batches for ``name``."""
    gen = torch.Generator().manual_seed(seed)
    batches: list[Batch] = []
    if name == "sparse_mlp":
        for _ in range(n_batches):
            ids, off = hashed_rows(256, 24, 2**14, gen)
            y = (ids.view(256, 24)[:, :3].sum(1) % 2).long()  # a learnable parity of ids
            batches.append(((ids, off), y))
        return SparseMLP, batches
    if name == "cnn":
        for _ in range(n_batches):
            x = torch.randn(64, 1, 16, 16, generator=gen)
            y = (x[:, 0, :8].mean((1, 2)) > 0).long() + 2 * (x[:, 0, :, :8].mean((1, 2)) > 0)
            batches.append(((x,), y.long()))
        return SmallCNN, batches
    if name == "transformer":
        for _ in range(n_batches):
            t = torch.randint(0, 1000, (32, 32), generator=gen)
            batches.append(((t,), (t[:, 0] % 10).long()))
        return SmallTransformer, batches
    raise ValueError(f"make_task: unknown model {name!r}; valid: sparse_mlp, cnn, transformer.")


MODELS = ("sparse_mlp", "cnn", "transformer")


# ---- one configuration = one model copy, its optimizer and (maybe) a monitor --------------
class Run:
    """A model copy trained in blocks; ``monitor`` is the Monitor's kwargs or None."""

    def __init__(self, base: nn.Module, batches: list[Batch],
                 monitor: dict[str, int] | None) -> None:
        self.model = copy.deepcopy(base)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.batches, self.i = batches, 0
        self.mon = Monitor(self.model, **monitor) if monitor is not None else None

    def step(self) -> None:
        """One training step (and the monitor's, when there is one)."""
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(*x), y)
        loss.backward()
        self.opt.step()
        if self.mon is not None:
            self.mon.step(loss=loss, optimizer=self.opt)

    def block(self, steps: int) -> None:
        """``steps`` untimed steps (warm-up)."""
        for _ in range(steps):
            self.step()


def interleaved_round(runs: list[Run], steps: list[int]) -> tuple[list[float], list[float]]:
    """Train every run ``steps[i]`` steps, interleaved step by step in a rotating order.

    Step ``j`` runs each run that still has steps left, starting with run ``j mod n``, so every
    run sees the same machine load and the same cache pollution from the others.

    Returns:
        ``(wall, cpu)`` seconds per run, summed over its steps; CPU time is the thread's
        (``time.thread_time``), which other processes on the machine do not inflate.
    """
    n = len(runs)
    wall, cpu = [0.0] * n, [0.0] * n
    for j in range(max(steps)):
        for r in range(n):
            i = (j + r) % n
            if j >= steps[i]:
                continue
            w0, c0 = time.perf_counter(), time.thread_time()
            runs[i].step()
            cpu[i] += time.thread_time() - c0
            wall[i] += time.perf_counter() - w0
    return wall, cpu


def configs(schedules: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """Name -> Monitor kwargs of every timed configuration."""
    out = {"default (every=100, sync=16)": {"every": 100, "sync_every": 16}}
    for k in schedules:
        out[f"cheap k={k}"] = {"every": NEVER, "sync_every": k}
    for k in schedules:
        out[f"cheap+sched k={k}"] = {"every": k, "sync_every": k}
    return out


def _block_steps(kw: dict[str, int], steps: int) -> int:
    """Steps per timed block: a multiple of the config's schedule, so each block holds the
    same number of synchronizations and scheduled steps (the default's every=100 -> 100s)."""
    k = max(v for v in kw.values() if v < NEVER)
    return steps if steps % k == 0 else k * max(1, round(steps / k))


def _summary(rs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(rs, n=4) if len(rs) >= 2 else [rs[0]] * 3
    return {"median": statistics.median(rs), "q1": q[0], "q3": q[2], "n": len(rs)}


def time_configs(name: str, cfgs: dict[str, dict[str, int]], rounds: int, steps: int
                 ) -> dict[str, Any]:
    """Per configuration, the median (and IQR) over rounds of t(config) / t(baseline).

    Each round trains the baseline and every configuration interleaved step by step
    (:func:`interleaved_round`); per-step times are compared within the round (CPU and wall).
    """
    factory, batches = make_task(name, 64)
    torch.manual_seed(0)
    base = factory()
    names = ["baseline", *cfgs]
    runs = [Run(base, batches, None)] + [Run(base, batches, kw) for kw in cfgs.values()]
    n_steps = [steps] + [_block_steps(kw, steps) for kw in cfgs.values()]
    interleaved_round(runs, n_steps)  # warm-up: allocator, Adam state, the first trace
    cpu: dict[str, list[float]] = {c: [] for c in cfgs}
    wall: dict[str, list[float]] = {c: [] for c in cfgs}
    base_cpu, base_wall = [], []
    for _ in range(rounds):
        w, c = interleaved_round(runs, n_steps)
        per_w = [t / k for t, k in zip(w, n_steps, strict=True)]
        per_c = [t / k for t, k in zip(c, n_steps, strict=True)]
        base_wall.append(per_w[0])
        base_cpu.append(per_c[0])
        for i, cfg in enumerate(names[1:], start=1):
            cpu[cfg].append(per_c[i] / per_c[0])
            wall[cfg].append(per_w[i] / per_w[0])
    return {"baseline_ms_per_step": {"cpu": 1e3 * statistics.median(base_cpu),
                                     "wall": 1e3 * statistics.median(base_wall)},
            "cpu": {c: _summary(v) for c, v in cpu.items()},
            "wall": {c: _summary(v) for c, v in wall.items()},
            "findings_raised": {c: [f.check for f in run.mon.findings]
                                for c, run in zip(names[1:], runs[1:], strict=True)}}


# ---- per-statistic costs (private methods, for attribution only) -------------------------
def _median_us(fn: Callable[[], Any], n: int) -> float:
    """Median thread CPU time of ``fn()`` over ``n`` calls, in microseconds."""
    ts = []
    for _ in range(n):
        t0 = time.thread_time()
        fn()
        ts.append(time.thread_time() - t0)
    return 1e6 * statistics.median(ts)


def stat_costs(name: str, reps: int) -> dict[str, float]:
    """Microseconds per call of each of the monitor's statistics on model ``name``."""
    factory, batches = make_task(name, 16)
    torch.manual_seed(0)
    run = Run(factory(), batches, {"every": 100, "sync_every": 16})
    run.block(110)  # past the first scheduled step: the graph is traced, the optimizer attached
    mon, model, opt = run.mon, run.model, run.opt
    x, y = batches[0]

    def fwd_bwd() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(*x), y)
        loss.backward()
        return loss

    loss = fwd_bwd()
    out: dict[str, float] = {}
    out["plain forward+backward"] = _median_us(fwd_bwd, reps)
    out["loss buffer write"] = _median_us(lambda: mon._record_loss(loss), reps)

    def sync_only() -> None:
        for _ in range(mon.sync_every):
            mon._record_loss(loss)
        mon._before = None
        t0 = time.thread_time()
        mon._sync(None)
        sync_only.t.append(time.thread_time() - t0)  # type: ignore[attr-defined]

    sync_only.t = []  # type: ignore[attr-defined]
    for _ in range(reps):
        sync_only()
    sync_total = 1e6 * statistics.median(sync_only.t)  # type: ignore[attr-defined]
    gn = _median_us(lambda: [float(g) for g in mon._grad_norms(None).values()], reps)
    out["grad norms"] = gn
    out["sync read + detectors"] = max(sync_total - gn, 0.0)

    def copy_before() -> None:
        mon.steps = mon.sync_every - 1  # the next step is a sync step: the pre-hook copies
        mon._before = None  # (it copies once per step: a copy already taken is kept)
        mon._before_step(opt, (), {})

    out["update copy"] = _median_us(copy_before, reps)

    # since e58eff9 the compare also takes the sync's gradient norms
    upd_args = (mon._grad_norms(None),) if "grads" in inspect.signature(
        mon._update_findings).parameters else ()

    def compare() -> None:
        copy_before()
        t0 = time.thread_time()
        mon._update_findings(*upd_args)
        compare.t.append(time.thread_time() - t0)  # type: ignore[attr-defined]

    compare.t = []  # type: ignore[attr-defined]
    for _ in range(reps):
        compare()
    out["update compare"] = 1e6 * statistics.median(compare.t)  # type: ignore[attr-defined]

    probe_t, checks_t = [], []
    for _ in range(max(3, reps // 10)):
        mon._arm()
        t0 = time.thread_time()
        fwd_bwd()
        probe_t.append(time.thread_time() - t0)
        copy_before()
        opt.step()
        t0 = time.thread_time()
        mon._scheduled(None, None, None)
        checks_t.append(time.thread_time() - t0)
    out["scheduled probe"] = max(1e6 * statistics.median(probe_t) - out["plain forward+backward"],
                                 0.0)
    out["scheduled checks"] = 1e6 * statistics.median(checks_t)
    mon.close()
    return out


# ---- tables ---------------------------------------------------------------------------------
def _pct(r: float) -> str:
    return f"{100 * (r - 1):+.1f} %"


def _cell(r: dict[str, Any], c: str) -> str:
    return f"{r['cpu'][c]['median']:.3f} ({r['wall'][c]['median']:.2f})"


def overhead_table(res: dict[str, dict[str, Any]], schedules: tuple[int, ...]) -> str:
    """Model x tier rows, schedule columns: CPU-time ratio (wall-time ratio)."""
    lines = ["| model | step ms (CPU) | tier | " + " | ".join(f"k={k}" for k in schedules)
             + " |", "|---|---|---|" + "---|" * len(schedules)]
    for m, r in res.items():
        ms = r["baseline_ms_per_step"]["cpu"]
        for tier in ("cheap", "cheap+sched"):
            cells = [_cell(r, f"{tier} k={k}") for k in schedules]
            lines.append(f"| {m} | {ms:.2f} | {tier} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


DEFAULT = "default (every=100, sync=16)"


def default_table(res: dict[str, dict[str, Any]], costs: dict[str, dict[str, float]]) -> str:
    """The issue's targets: default schedule, the loss/non-finite part, the worst case."""
    lines = ["| model | default: CPU (IQR) | default: wall (IQR) | loss/non-finite part "
             "(per-call costs) | worst case (every=1, sync=1): CPU, wall |",
             "|---|---|---|---|---|"]
    for m, r in res.items():
        dc, dw = r["cpu"][DEFAULT], r["wall"][DEFAULT]
        c = costs.get(m)
        part = "n/a"
        if c is not None:
            per_step = c["loss buffer write"] + c["sync read + detectors"] / 16
            part = f"{100 * per_step / (1e3 * r['baseline_ms_per_step']['cpu']):.2f} %"
        worst = "n/a"
        if "cheap+sched k=1" in r["cpu"]:
            worst = (f"{r['cpu']['cheap+sched k=1']['median']:.2f}x, "
                     f"{r['wall']['cheap+sched k=1']['median']:.2f}x")
        lines.append(f"| {m} | {_pct(dc['median'])} ({_pct(dc['q1'])} .. {_pct(dc['q3'])}) | "
                     f"{_pct(dw['median'])} ({_pct(dw['q1'])} .. {_pct(dw['q3'])}) | {part} | "
                     f"{worst} |")
    return "\n".join(lines)


COST_KEYS = ("loss buffer write", "sync read + detectors", "grad norms", "update copy",
             "update compare", "scheduled probe", "scheduled checks")
#: calls per step at the default schedule: the copy runs on sync steps and before scheduled ones
PER_DEFAULT = {"loss buffer write": 1.0, "sync read + detectors": 1 / 16, "grad norms": 1 / 16,
               "update copy": 1 / 16 + 1 / 100, "update compare": 1 / 16,
               "scheduled probe": 1 / 100, "scheduled checks": 1 / 100}


def cost_table(costs: dict[str, dict[str, float]], res: dict[str, dict[str, Any]]) -> str:
    """Microseconds per call of each statistic, and their sum amortized at the default."""
    lines = ["| model | step (us, CPU) | " + " | ".join(COST_KEYS)
             + " | sum at default schedule |", "|---|---|" + "---|" * (len(COST_KEYS) + 1)]
    for m, c in costs.items():
        step_us = 1e3 * res[m]["baseline_ms_per_step"]["cpu"]
        amort = sum(c[k] * PER_DEFAULT[k] for k in COST_KEYS)
        lines.append(f"| {m} | {step_us:.0f} | " + " | ".join(f"{c[k]:.0f}" for k in COST_KEYS)
                     + f" | {amort:.0f} us/step = {100 * amort / step_us:.2f} % |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="<= 1 min: fewer rounds and schedules")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="steps per timed block")
    p.add_argument("--only-default", action="store_true",
                   help="time the default schedule only (a re-check after a change)")
    a = p.parse_args()
    torch.set_num_threads(1)
    schedules = (1, 16) if a.quick else SCHEDULES
    rounds = a.rounds or (2 if a.quick else 5)
    steps = a.steps or (64 if a.quick else 256)
    models = a.models
    load = os.getloadavg()
    t0 = time.perf_counter()
    res, costs = {}, {}
    cfgs = configs(schedules)
    if a.only_default:
        cfgs = {DEFAULT: cfgs[DEFAULT]}
    for m in models:
        res[m] = time_configs(m, cfgs, rounds, steps)
        costs[m] = stat_costs(m, 30 if a.quick else 200)
        print(f"[{m}: done at {time.perf_counter() - t0:.0f} s]", flush=True)
    load_end = os.getloadavg()
    print(f"\nLoad average (1/5/15 min) at start {load}, at end {load_end}; "
          f"torch threads 1; rounds {rounds}, {steps} steps per block; "
          f"{time.perf_counter() - t0:.0f} s.\n")
    if not a.only_default:
        print("Step time relative to no monitor, CPU time (wall time); median over rounds of "
              "step-interleaved runs:\n")
        print(overhead_table(res, schedules))
    print("\nTargets: default schedule <= 2 %, loss/non-finite part <= 0.5 %:\n")
    print(default_table(res, costs))
    print("\nCost of each statistic per call (us, median); amortized at the default "
          "schedule:\n")
    print(cost_table(costs, res))
    OUT.mkdir(exist_ok=True)
    name = ("monitor_overhead_quick.json" if a.quick else "monitor_overhead_default.json"
            if a.only_default else "monitor_overhead.json")
    (OUT / name).write_text(json.dumps(
        {"load_start": load, "load_end": load_end, "rounds": rounds, "steps": steps,
         "schedules": schedules, "ratios": res, "stat_costs_us": costs}, indent=1))


if __name__ == "__main__":
    main()
