"""Speed and memory of a sparse first layer: SparseLinear vs nn.Linear on torch.sparse vs
nn.EmbeddingBag (and a dense nn.Linear on the densified batch, for scale).

Run: ``.venv/bin/python benchmarks/sparse_linear_speed.py [--width 262144] [--nnz 12]
[--out 64] [--batch 256] [--reps 20] [--device cpu|cuda]``

Prints a markdown table: median forward+backward time per batch, and the peak memory allocated
during one forward+backward (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the peak of the
torch profiler's allocation timeline), plus the bytes of the weight gradient. Timings on a shared
machine are noisy: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from initwise.data import csr_to_bag, csr_to_torch
from initwise.nn import SparseLinear

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def make_batch(batch: int, width: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, width, size=(batch, nnz))
    vals = rng.integers(1, 4, size=batch * nnz).astype(np.float32)
    rows = np.repeat(np.arange(batch), nnz)
    return sp.csr_matrix((vals, (rows, cols.ravel())), shape=(batch, width))


def contenders(width: int, out: int, X: sp.csr_matrix, device: str) -> dict:
    torch.manual_seed(0)
    linear = nn.Linear(width, out).to(device)
    sparse_lin = SparseLinear.from_linear(linear).to(device)
    sparse_lin_sg = SparseLinear.from_linear(linear, sparse_grad=True).to(device)
    bag = nn.EmbeddingBag(width, out, mode="sum").to(device)
    with torch.no_grad():
        bag.weight.copy_(linear.weight.t())
    triple = tuple(t.to(device) for t in csr_to_bag(X))
    csr = csr_to_torch(X, device=device)
    coo = csr.to_sparse_coo()
    runs = {
        "SparseLinear (bag triple)": (sparse_lin, lambda: sparse_lin(triple)),
        "SparseLinear (torch CSR)": (sparse_lin, lambda: sparse_lin(csr)),
        "SparseLinear sparse_grad (bag)": (sparse_lin_sg, lambda: sparse_lin_sg(triple)),
        "nn.Linear on torch.sparse COO": (
            linear,
            lambda: torch.sparse.mm(coo, linear.weight.t()) + linear.bias,
        ),
        "nn.EmbeddingBag(sum) + weights": (
            bag,
            lambda: bag(triple[0], triple[1], per_sample_weights=triple[2]),
        ),
    }
    if X.shape[0] * width * 4 <= 2**30:
        dense = torch.from_numpy(X.toarray()).to(device)
        runs["nn.Linear on the dense batch"] = (
            linear,
            lambda: F.linear(dense, linear.weight, linear.bias),
        )
    return runs


def step(module: nn.Module, fn) -> None:
    module.zero_grad(set_to_none=True)
    fn().square().sum().backward()


def peak_bytes(module: nn.Module, fn, device: str) -> int:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(module, fn)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    module.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn().square().sum().backward()
    events = sorted(
        (e for e in prof.events() if e.cpu_memory_usage), key=lambda e: e.time_range.start
    )
    level = peak = 0
    for e in events:
        level += e.cpu_memory_usage
        peak = max(peak, level)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=2**18)
    ap.add_argument("--nnz", type=int, default=12)
    ap.add_argument("--out", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X = make_batch(args.batch, args.width, args.nnz)
    runs = contenders(args.width, args.out, X, args.device)
    print(
        f"width={args.width} nnz/row~{args.nnz} out={args.out} batch={args.batch} "
        f"device={args.device} threads={args.threads} torch={torch.__version__}\n"
    )
    print("| layer | fwd+bwd median (ms) | peak memory (MiB) | weight grad (MiB) |")
    print("|---|---:|---:|---:|")
    for name, (module, fn) in runs.items():
        step(module, fn)  # warm-up
        times = []
        for _ in range(args.reps):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(module, fn)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        grad = next(p for p in module.parameters() if p.dim() == 2).grad
        grad_bytes = grad.coalesce().values().nbytes if grad.is_sparse else grad.nbytes
        peak = peak_bytes(module, fn, args.device)
        print(
            f"| {name} | {1e3 * statistics.median(times):.2f} | {peak / 2**20:.1f} | "
            f"{grad_bytes / 2**20:.2f} |"
        )


if __name__ == "__main__":
    main()
