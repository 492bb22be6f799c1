"""Fixtures for the CLI tests: a model file, small data files, and a subprocess runner."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

N_FEATURES, N_CLASSES, N_ROWS = 20, 3, 300

MODEL_PY = '''
"""Factories for the CLI tests."""
import time

import torch
from torch import nn

from initwise.nn import SparseLinear


def mlp(in_features=20, n_classes=3, depth=2, width=32, scale=1.0):
    """A small dense ReLU MLP, Kaiming-initialized (healthy), seeded; ``scale`` multiplies W."""
    g = torch.Generator().manual_seed(0)
    dims = [in_features] + [width] * depth
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.normal_(0, scale * (2 / a) ** 0.5, generator=g)
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
    head = nn.Linear(width, n_classes)
    with torch.no_grad():
        head.weight.normal_(0, (1 / width) ** 0.5, generator=g)
        head.bias.zero_()
    return nn.Sequential(*layers, head)


def sparse_mlp(in_features=20, n_classes=3, width=16):
    torch.manual_seed(0)
    return nn.Sequential(SparseLinear(in_features, width), nn.ReLU(), nn.Linear(width, n_classes))


def broken():
    raise RuntimeError("boom: the factory failed")


def not_a_module():
    return {"weights": 42}


def slow():
    print("ready", flush=True)
    time.sleep(60)
    return mlp()
'''


def _write_svmlight(path: Path, rng: np.random.Generator) -> None:
    lines = []
    for _ in range(N_ROWS):
        label = int(rng.integers(N_CLASSES))
        cols = np.sort(rng.choice(N_FEATURES, size=5, replace=False))
        cols[0] = label  # a feature that predicts the label
        cols = np.unique(cols)
        vals = rng.uniform(0.5, 2.0, size=cols.size)
        lines.append(f"{label} " + " ".join(f"{c + 1}:{v:.3f}" for c, v in zip(cols, vals)))
    lines[0] += f" {N_FEATURES}:0.5"  # pin the width to N_FEATURES columns (1-based)
    path.write_text("\n".join(lines) + "\n")


def _write_csv(path: Path, rng: np.random.Generator) -> None:
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    header = ",".join([f"f{i}" for i in range(N_FEATURES)] + ["label"])
    rows = [",".join(f"{v:.4f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with model.py, data.svm, data.csv and a malformed file."""
    d = tmp_path_factory.mktemp("cli")
    (d / "model.py").write_text(textwrap.dedent(MODEL_PY))
    rng = np.random.default_rng(0)
    _write_svmlight(d / "data.svm", rng)
    _write_csv(d / "data.csv", rng)
    (d / "garbage.svm").write_text("this is not\nsvmlight at all ::: ;;\n")
    return d


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1")
    env.pop("FORCE_COLOR", None)
    return env


def run(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``python -m initwise ARGS`` (the venv's interpreter), no colours, text output."""
    return subprocess.run([sys.executable, "-m", "initwise", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def run_many(cases: dict[str, tuple[str, ...]], cwd: Path, workers: int = 3,
             timeout: float = 300) -> dict[str, subprocess.CompletedProcess]:
    """Run several ``python -m initwise ARGS`` at once (each a real process of its own).

    Every process pays a torch import (~3 s of CPU); running a few side by side keeps the suite
    short on two cores. Cases must not write the same files.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(run, *args, cwd=cwd, timeout=timeout)
                   for key, args in cases.items()}
        return {key: future.result() for key, future in futures.items()}


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 3, exactly one line on stderr, no traceback, and every needle in that line."""
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    assert len(err.splitlines()) == 1, err
    assert err.startswith("initwise"), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="session")
def cli(work: Path):
    """``cli(*args)`` runs ``python -m initwise ARGS`` in the ``work`` folder."""
    return lambda *args, timeout=180: run(*args, cwd=work, timeout=timeout)


@pytest.fixture(scope="session")
def many(work: Path):
    """``many({id: argv})`` runs the cases with :func:`run_many` in the ``work`` folder."""
    return lambda cases, workers=3: run_many(cases, cwd=work, workers=workers)


@pytest.fixture(scope="session")
def one_line_error():
    """The :func:`assert_one_line_error` helper."""
    return assert_one_line_error


@pytest.fixture(scope="session")
def archives(work: Path) -> Path:
    """``m.ts`` (TorchScript), ``m.pt2`` (torch.export, dynamic batch) and ``state.pt`` (a
    state dict) of ``model.py:mlp()``, written into ``work``."""
    import torch

    spec = importlib.util.spec_from_file_location("cli_model_archives", work / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.mlp().eval()
    torch.jit.save(torch.jit.script(model), work / "m.ts")
    if hasattr(torch.export, "Dim"):  # dynamic shapes: torch >= 2.2 (tests needing m.pt2 skip)
        program = torch.export.export(model, (torch.zeros(4, N_FEATURES),),
                                      dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, work / "m.pt2")
    torch.save(model.state_dict(), work / "state.pt")
    return work


@pytest.fixture
def call(work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``call(*args) -> CompletedProcess``: ``initwise.cli.main`` in-process, in ``work``.

    Same exit status and streams as the subprocess runner, without a new interpreter and torch
    import; only for cases beyond the issue's list (those run as real processes).
    """
    from initwise.cli import main

    monkeypatch.chdir(work)
    monkeypatch.setenv("NO_COLOR", "1")

    def _call(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return _call
