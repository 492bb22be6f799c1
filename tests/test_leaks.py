"""No leaks: 1,000 doctor runs (900 "quick", 100 "standard") and 100 init runs on one small
model keep memory flat.

Resident memory is read from ``/proc/self/statm`` (Linux; skipped elsewhere) after a warm-up
(allocator pools, lazily built tables), so the bound measures growth per run, not start-up. A leak
of one batch-sized tensor or one Probe per run (~10 kB) would grow memory by ~10 MB over 1,000
runs; the bound is 8 MB for the doctor and 8 MB for init.
"""

from __future__ import annotations

import gc
import os
import warnings

import pytest
import torch
from torch import nn

import initwise

STATM = "/proc/self/statm"
pytestmark = pytest.mark.skipif(not os.path.exists(STATM), reason="needs /proc/self/statm")
BOUND_MB = 8.0


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: memory is what is measured, and tiny kernels on a shared machine
    run 1000x slower with two OpenMP threads competing for a busy core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rss_mb() -> float:
    gc.collect()
    with open(STATM) as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _problem() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                        nn.Linear(16, 3))
    return net, (torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g))


def _growth(run, warmup: int, n: int) -> float:
    for _ in range(warmup):
        run()
    start = _rss_mb()
    for _ in range(n):
        run()
    return _rss_mb() - start


def test_a_thousand_doctor_runs_keep_memory_flat():
    net, batch = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grew = _growth(lambda: initwise.doctor(net, batch, checks="quick"), warmup=50, n=900)
        grew += _growth(lambda: initwise.doctor(net, batch), warmup=5, n=100)
    assert grew < BOUND_MB, f"resident memory grew {grew:.1f} MB over 1000 doctor runs"
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_a_hundred_init_runs_keep_memory_flat():
    net, batch = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grew = _growth(lambda: initwise.init(net, batch, generator=0), warmup=10, n=100)
    assert grew < BOUND_MB, f"resident memory grew {grew:.1f} MB over 100 init runs"
