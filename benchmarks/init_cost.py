"""Init time against one training epoch as the data grows (issue 4's "init <= 2 % of an epoch").

``initwise.init`` reads a fixed number of batches (4 by default), so its cost does not grow with
the data set; an epoch does. On the trainability benchmark's small sets (16,557 text rows, 80,000
CTR rows) one epoch takes well under a second and the init's floor -- drawing the lookup table,
which every scheme pays (``kaiming`` below) -- is already a large fraction of it. This script
measures both on the benchmark's CTR model (EmbeddingBag(2^20, 32) -> 2x[ReLU, Linear(32)] ->
ReLU -> Linear(2)) for CTR sets of growing size (``initwise.data.builtin.ctr_synthetic``, same
generator and teacher as the benchmark, more rows), in one process, interleaved:

* ``initwise``: ``initwise.init(model, first 4 batches of 512, generator=seed)``, median of 3;
* ``kaiming``: the benchmark's Kaiming baseline (the table drawn as a Linear(2^20 -> 32)), median
  of 3 -- the structural draw alone;
* one SGD epoch and one Adam epoch of the benchmark's training loop (batch 512), from an
  initwise-initialized model.

Usage::

    nice .venv/bin/python benchmarks/init_cost.py                      # 80k, 400k, 1.6M rows
    nice .venv/bin/python benchmarks/init_cost.py --rows 80000 --reps 1

Prints a markdown table. Runs single-threaded (``torch.set_num_threads(1)``), like the benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _trainability.configs import configs  # noqa: E402
from _trainability.inits import apply_init  # noqa: E402
from _trainability.train import Budget, train  # noqa: E402


def measure(n_rows: int, reps: int, seed: int = 0) -> dict[str, float]:
    """Seconds of init (initwise, kaiming) and of one SGD / Adam epoch on ``n_rows`` CTR rows."""
    from initwise.data.builtin import ctr_synthetic

    cfg = next(c for c in configs(["ctr"], quick=False))
    t0 = time.perf_counter()
    ds = ctr_synthetic(n_rows, 24, 2**20, seed=0)
    gen_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"initwise": [], "kaiming": []}
    model = None
    for rep in range(reps):
        for name in ("initwise", "kaiming"):
            torch.manual_seed(seed + rep)
            m = cfg.build(ds.n_features, ds.n_classes)
            calib = list(ds.batches(cfg.budget.batch_size, shuffle=True, seed=seed + rep,
                                    layout=cfg.layout))[:4]
            secs, _ = apply_init(name, m, cfg.act, calib, seed + rep)
            times[name].append(secs)
            if name == "initwise":
                model = m
    out = {k: statistics.median(v) for k, v in times.items()}
    for opt in ("sgd", "adam"):
        torch.manual_seed(seed)
        m = cfg.build(ds.n_features, ds.n_classes)
        m.load_state_dict(model.state_dict())
        res = train(m, ds, cfg.layout, cfg.task, opt, Budget(1, cfg.budget.batch_size,
                                                             cfg.budget.sgd_lr), seed)
        out[f"epoch_{opt}"] = res["epoch_s"][0]
    out["rows"], out["nnz"], out["generate_s"] = n_rows, int(ds.X.nnz), gen_s
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[80_000, 400_000, 1_600_000])
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    if a.reps < 1 or any(n < 2048 for n in a.rows):
        p.error("--reps must be >= 1 and every --rows >= 2048 (4 calibration batches of 512)")
    torch.set_num_threads(1)
    print("| CTR rows | nnz | initwise.init s | kaiming draw s | SGD epoch s | Adam epoch s "
          "| initwise / SGD epoch | initwise / Adam epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for n in a.rows:
        r = measure(n, a.reps)
        print(f"| {n:,} | {r['nnz']:,} | {r['initwise']:.3f} | {r['kaiming']:.3f} "
              f"| {r['epoch_sgd']:.2f} | {r['epoch_adam']:.2f} "
              f"| {100 * r['initwise'] / r['epoch_sgd']:.2f} % "
              f"| {100 * r['initwise'] / r['epoch_adam']:.2f} % |", flush=True)
    import os

    print(f"\ntorch {torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
