"""Two real gloo processes on CPU: all-reduced statistics, bit-identical ranks, and the same
result as one process calibrating on the concatenated batches."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch

import initwise.datainit as di

WORKER = Path(__file__).with_name("_dist_worker.py")


def _worker_module():
    spec = importlib.util.spec_from_file_location("_dist_worker", WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_worker(port: int, outdir: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run the 2-rank worker in its own session; on timeout kill the whole group (its spawned
    ranks too: a hung rank would otherwise hold the pipes open and hang the test itself)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(port), str(outdir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return -1, f"worker timed out after {timeout:g} s\n{err}"
    return proc.returncode, err


def test_two_gloo_ranks_end_identical_and_match_one_process(tmp_path):
    rc, err = _run_worker(_free_port(), tmp_path)
    assert rc == 0, err[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k  # bit-identical across ranks
    assert r0["report"]["seed"] == r1["report"]["seed"]

    w = _worker_module()
    torch.manual_seed(0)
    net = w.WideDeep()
    single = di.init(net, w.shard(0) + w.shard(1), batches=6, generator=r0["report"]["seed"])
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, r0["state"][k], rtol=1e-5, atol=1e-6, msg=k)
    # the global batch decided: rank 1 alone has only classes {0, 1}
    assert r0["report"]["loss"]["target"] == single.loss.target
    assert r0["report"]["loss"]["after"] == pytest_approx(single.loss.after)


def pytest_approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-5)
