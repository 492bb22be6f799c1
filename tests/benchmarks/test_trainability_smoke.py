"""Smoke test of benchmarks/trainability.py (--quick, one tiny config) and its helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "trainability.py"
sys.path.insert(0, str(SCRIPT.parent))

from _trainability.report import BEGIN, END, update_results_md  # noqa: E402
from _trainability.train import _auc  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    md = out / "RESULTS.md"
    md.write_text("# Benchmark results\n\n## Other section\nkept\n")
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--family",
        "tabular",
        "--config",
        "breast_cancer",
        "--quick",
        "--seeds",
        "0",
        "--out",
        str(out),
        "--results-md",
        str(md),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "trainability.json").read_text()), md.read_text(), proc.stdout


def test_quick_run_covers_every_init_and_optimizer(quick_run):
    doc, _, _ = quick_run
    got = {(r["init"], r["optimizer"]) for r in doc["summary"]}
    inits = ("default", "xavier", "kaiming", "orthogonal", "lsuv", "initwise")
    assert got == {(i, o) for i in inits for o in ("sgd", "adam")}
    for r in doc["runs"]:
        if r["init"] == "initwise" and r["status"] == "pending":
            continue
        assert r["status"] == "ok", r
        assert r["initial_loss"] > 0 and len(r["epoch_s"]) >= 1
        assert np.isfinite(r["test_metric"]) or r["diverged"]


def test_quick_run_prior_loss_is_label_entropy(quick_run):
    doc, _, _ = quick_run
    from sklearn.datasets import load_breast_cancer

    from initwise.data import Dataset

    raw = load_breast_cancer()
    train, _ = Dataset(raw.data, raw.target.astype(np.int64)).split(0.2, seed=0)
    p = np.bincount(train.y) / len(train.y)
    entropy = float(-(p * np.log(p)).sum())
    assert doc["data"]["breast_cancer"]["prior_entropy"] == pytest.approx(entropy, rel=1e-12)
    assert all(r["prior_loss"] == pytest.approx(entropy) for r in doc["summary"])


def test_quick_run_writes_markdown_section(quick_run):
    _, md, stdout = quick_run
    assert md.count(BEGIN) == 1 and md.count(END) == 1 and "## Other section\nkept" in md
    assert "| tabular/breast_cancer-mlp3-relu | kaiming |" in md
    assert "## Trainability (issue 4)" in stdout


def test_update_results_md_replaces_its_section_only(tmp_path):
    path = tmp_path / "R.md"
    update_results_md(path, "first")
    path.write_text(path.read_text() + "\n## Later section\nstays\n")
    update_results_md(path, "second")
    text = path.read_text()
    assert "first" not in text and text.count("second") == 1 and "## Later section\nstays" in text


def test_auc_matches_pairwise_twin():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(300), 1)  # many ties
    y = (rng.random(300) < 0.3).astype(np.int64)
    pos, neg = scores[y == 1], scores[y == 0]
    twin = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert _auc(scores, y) == pytest.approx(twin, abs=1e-12)


def test_fold_replaces_repeated_runs_and_keeps_the_rest():
    import trainability

    def doc(runs, command):
        cfgs = {r["config"]: {"family": "x"} for r in runs}
        inv = {"command": command, "wall_s": 1.0, "seeds": [r["seed"] for r in runs]}
        return {"meta": {"invocations": [inv]}, "data": {}, "configs": cfgs, "runs": runs}

    def run(cfg, init, seed, score):
        return {"config": cfg, "optimizer": "sgd", "init": init, "seed": seed, "score": score}

    old = doc([run("a", "kaiming", 0, 1.0), run("a", "initwise", 0, 2.0)], "first")
    new = doc([run("a", "initwise", 0, 3.0), run("b", "kaiming", 1, 4.0)], "second")
    merged = trainability._fold(old, new)
    got = {(r["config"], r["init"], r["seed"]): r["score"] for r in merged["runs"]}
    assert got == {("a", "kaiming", 0): 1.0, ("a", "initwise", 0): 3.0, ("b", "kaiming", 1): 4.0}
    assert list(merged["configs"]) == ["a", "b"] and merged["meta"]["wall_s"] == 2.0
    assert merged["meta"]["seeds"] == [0, 1]
