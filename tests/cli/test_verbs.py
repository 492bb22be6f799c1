"""Every verb on good input: help, gains, theory, doctor (exit codes, JSON, HTML), init."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from initwise.report.schema import validate

VERBS = ("gains", "theory", "doctor", "init", "demo")


def _needs(module: str, name: str):
    obj = getattr(importlib.import_module(module), name, None)
    if obj is None:
        pytest.skip(f"{module}.{name} is not available yet")
    return obj


def test_console_script_help_lists_verbs_and_exit_codes(work):
    script = Path(sys.executable).with_name("initwise")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "initwise"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, cwd=work, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for verb in VERBS:
        assert f"    {verb} " in proc.stdout
    assert "3  bad usage or input" in proc.stdout and "130 interrupted" in proc.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_examples(verb, call):
    proc = call(verb, "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and f"initwise {verb}" in proc.stdout
    if verb in ("doctor", "init"):
        assert "IMPORTED AND RUN" in proc.stdout and "weights_only=True" in proc.stdout


def test_gains_subprocess_prints_relu_sqrt2(cli):
    proc = cli("gains")
    assert proc.returncode == 0, proc.stderr
    relu = next(line for line in proc.stdout.splitlines() if line.startswith("relu "))
    assert "1.41421" in relu
    assert "gelu" in proc.stdout


def test_gains_json(call):
    rows = json.loads(call("gains", "--json").stdout)
    relu = next(r for r in rows if r["name"] == "relu")
    assert relu["variance_gain"] == pytest.approx(2**0.5, rel=1e-8)
    assert relu["torch_gain"] == pytest.approx(2**0.5, rel=1e-12)


def test_theory_relu_prints_the_critical_point(call):
    pytest.importorskip("initwise.theory.summary", reason="initwise.theory.summary not ready")
    proc = call("theory", "relu", "--depth", "30")
    assert proc.returncode == 0, proc.stderr
    assert "1.414" in proc.stdout  # edge of chaos of ReLU at sigma_b = 0: sqrt(2)
    data = json.loads(call("theory", "tanh", "--sigma-b", "0.05", "--json").stdout)
    assert data["activation"] == "tanh" and data["sigma_b"] == 0.05
    assert data["edge_of_chaos_sigma_w"] > 1.0  # tanh's critical sigma_w grows with sigma_b
    bad = call("theory", "nope")
    assert bad.returncode == 3 and "unknown activation 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_doctor_subprocess_writes_valid_json_and_html(cli, work):
    proc = cli("doctor", "model.py:mlp", "--data", "data.svm", "--json", "d.json", "--html",
               "d.html")
    assert proc.returncode == 0, proc.stderr
    assert "Healthy" in proc.stdout and "per layer" in proc.stdout
    doc = json.loads((work / "d.json").read_text())
    validate(doc, "diagnosis")
    assert [layer["name"] for layer in doc["layers"]] == ["0", "2", "4"]
    html = (work / "d.html").read_text()
    for sid in ("verdict", "findings", "layers", "data", "theory"):
        assert f'id="{sid}"' in html


def test_doctor_exit_codes_gate_ci(call):
    vanishing = ["doctor", "model.py:mlp", "--data", "data.svm", "--model-kwargs",
                 '{"depth": 6, "scale": 0.3}']
    proc = call(*vanishing)
    assert proc.returncode == 0 and "WARNING" in proc.stdout and "ERROR" not in proc.stdout
    assert call(*vanishing, "--strict").returncode == 1
    exploding = call("doctor", "model.py:mlp", "--data", "data.svm", "--model-kwargs",
                     '{"depth": 6, "scale": 3.0}')
    assert exploding.returncode == 2 and "ERROR" in exploding.stdout


def test_doctor_sparse_input_layer_and_csv_target(call):
    assert call("doctor", "model.py:sparse_mlp", "--data", "data.svm").returncode == 0
    proc = call("doctor", "model.py:mlp", "--data", "data.csv", "--target", "label")
    assert proc.returncode in (0, 2), proc.stderr
    assert "n_features 20" in proc.stdout


def test_doctor_torchscript_and_export_archives(call, work):
    spec = importlib.util.spec_from_file_location("cli_model", work / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.mlp().eval()
    torch.jit.save(torch.jit.script(model), work / "m.ts")
    program = torch.export.export(model, (torch.zeros(4, 20),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, work / "m.pt2")
    script = call("doctor", "m.ts", "--data", "data.svm")  # loads, but hooks are unsupported
    assert script.returncode == 3 and "TorchScript module" in script.stderr
    assert "torch.export .pt2" in script.stderr
    proc = call("doctor", "m.pt2", "--data", "data.svm", "--preset", "quick")
    assert proc.returncode == 0, proc.stderr
    torch.save(model.state_dict(), work / "state.pt")
    err = call("doctor", "state.pt", "--data", "data.svm").stderr
    assert "is not a TorchScript archive" in err and "--weights state.pt" in err
    ok = call("doctor", "model.py:mlp", "--weights", "state.pt", "--data", "data.svm")
    assert ok.returncode == 0, ok.stderr


def test_init_saves_the_same_bits_as_the_library(call, work):
    init = _needs("initwise.datainit", "init")
    from safetensors.torch import load_file

    from initwise.data import load

    proc = call("init", "model.py:mlp", "--data", "data.svm", "--out", "w.safetensors",
                "--seed", "1", "--json", "r.json", "--batches", "2")
    assert proc.returncode == 0, proc.stderr
    assert "saved the initialized weights to w.safetensors (safetensors)" in proc.stdout
    validate(json.loads((work / "r.json").read_text()), "initreport")
    spec = importlib.util.spec_from_file_location("cli_model2", work / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.mlp()
    batches = list(load(str(work / "data.svm")).batches(256, shuffle=True, seed=1,
                                                        layout="dense"))[:2]
    init(model, iter(batches), batches=2, generator=torch.Generator().manual_seed(1))
    saved = load_file(str(work / "w.safetensors"))
    assert saved.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(saved[k], v), k
    assert call("init", "model.py:mlp", "--data", "data.svm", "--out", "w.pt", "--seed", "1",
                "--batches", "2").returncode == 0
    pt = torch.load(work / "w.pt", weights_only=True)
    assert all(torch.equal(pt[k], saved[k]) for k in saved)


def test_init_html_has_before_after(call, work):
    _needs("initwise.datainit", "init")
    proc = call("init", "model.py:mlp", "--data", "data.svm", "--out", "w2.pt", "--html",
                "i.html", "--model-kwargs", '{"depth": 4, "scale": 0.3}')
    assert proc.returncode == 0, proc.stderr
    html = (work / "i.html").read_text()
    assert 'id="init"' in html and "before init" in html and "after init" in html
