"""Two-rank gloo run of initwise.init for test_distributed.py (run as a script).

Usage: python _dist_worker.py PORT OUTDIR. Each rank calibrates on its own shard and saves its
state_dict and report to OUTDIR/rank{r}.pt.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

N_SPARSE = 5000


class WideDeep(nn.Module):
    """Sparse SparseLinear part + dense part (badly scaled columns) -> MLP -> 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        from initwise.nn import SparseLinear

        self.wide = SparseLinear(N_SPARSE, 32)
        self.deep = nn.Linear(3, 32)
        self.mid = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, xs, xd):
        h = torch.relu(self.wide(xs)) + torch.relu(self.deep(xd))
        return self.head(torch.tanh(self.mid(h)))


def shard(rank: int, n_batches: int = 3) -> list:
    """Rank ``rank``'s calibration batches (different data on every rank)."""
    g = torch.Generator().manual_seed(100 + rank)
    out = []
    for _ in range(n_batches):
        rows = torch.arange(48).repeat_interleave(6)
        cols = torch.randint(0, N_SPARSE, (48 * 6,), generator=g)
        vals = torch.randint(1, 4, (48 * 6,), generator=g).float()
        xs = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (48, N_SPARSE)).coalesce()
        xd = torch.randn(48, 3, generator=g) * torch.tensor([1e4, 1.0, 1e-2]) + 3
        y = torch.randint(0, 4, (48,), generator=g) if rank == 0 \
            else torch.randint(0, 2, (48,), generator=g)
        out.append(((xs, xd), y))
    return out


def _run(rank: int, port: int, outdir: str) -> None:
    import initwise.datainit as di

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.manual_seed(0)
        net = WideDeep()
        rep = di.init(net, shard(rank), batches=3)
        torch.save({"state": net.state_dict(), "report": rep.to_dict()}, f"{outdir}/rank{rank}.pt")
        # no rank tears the group down while another still receives init's final broadcast
        # (seen as a hang of rank 1 on torch 2.1 when rank 0 exited first)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(_run, args=(int(sys.argv[1]), sys.argv[2]), nprocs=2, join=True)
