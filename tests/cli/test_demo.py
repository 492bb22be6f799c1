"""``initwise demo``: the README's main job, on a small slice (same code path as the full run)."""

from __future__ import annotations

import json

import torch

from initwise.report.schema import validate


def test_demo_subprocess_small(cli, work):
    proc = cli("demo", "--max-docs", "1200", "--epochs", "1", "--width", "16", "--depth", "8",
               "--out", "demo.html", "--json", "demo.json", "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for step in ("== 1. the doctor", "== 2. initwise.init", "== 3. training all three",
                 "== 4. before / after"):
        assert step in out
    assert "SparseLinear(262144, 16) + 8 x Linear(16)" in out
    doc = json.loads((work / "demo.json").read_text())
    validate(doc, "demo")
    assert doc["data"]["n_features"] == 2**18 and doc["data"]["n_train"] + doc["data"][
        "n_test"] == 1200
    runs = doc["runs"]
    # The table printed is the JSON's numbers.
    assert f"{runs['torch default']['test_accuracy']:.1%}" in out
    assert f"{runs['initwise.init']['test_accuracy']:.1%}" in out
    assert f"{runs['torch default + monitor repair']['test_accuracy']:.1%}" in out
    assert "monitor, torch default + monitor repair:" in out
    assert all(e["kind"] in ("finding", "repair") and e["step"] >= 1 for e in doc["monitor"])
    # initwise.init starts at the label prior (the doctor's loss.init check agrees).
    prior = doc["label_prior_loss"]
    assert abs(runs["initwise.init"]["initial_loss"] - prior) < 0.1 * prior
    html = (work / "demo.html").read_text()
    for sid in ("summary", "findings", "curves", "layers", "data", "theory", "init"):
        assert f'<section id="{sid}">' in html
    assert "Training loss" in html and "Test accuracy" in html


def test_demo_on_a_user_file_in_process(call, work):
    """Variant of the verb (run as a process above); in-process to check threads are restored."""
    threads = torch.get_num_threads()
    # Regression: 240 rows in batches of 128 give exactly two calibration batches, a list that
    # initwise.modelio reads as ONE (inputs, targets) batch unless passed as an iterator.
    proc = call("demo", "--data", "data.svm", "--epochs", "1", "--width", "8", "--depth", "8",
                "--out", "u.html", "--threads", "1", "--batch-size", "128")
    assert proc.returncode == 0, proc.stderr
    assert "data: data.svm: 240 train / 60 test rows, 20 features, 3 classes" in proc.stdout
    assert (work / "u.html").exists()
    assert torch.get_num_threads() == threads  # restored
