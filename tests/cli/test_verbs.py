"""Every verb on good input: help, gains, theory, doctor (exit codes, JSON, HTML), init.

Each verb, and each documented doctor exit status, runs as a real ``python -m initwise`` process
(a few at a time, see ``run_many``); variants of a verb already run that way (other MODEL kinds,
JSON of gains/theory, ``.pt`` output) run in-process through ``initwise.cli.main``.
"""

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
VANISHING = ("doctor", "model.py:mlp", "--data", "data.svm", "--model-kwargs",
             '{"depth": 6, "scale": 0.3}')

# Real processes, run together once per module (they write distinct files).
RUNS = {
    "gains": ("gains",),
    "theory relu": ("theory", "relu", "--depth", "30"),
    "doctor json html": ("doctor", "model.py:mlp", "--data", "data.svm", "--json", "d.json",
                         "--html", "d.html"),
    "doctor strict warnings": (*VANISHING, "--strict"),
    "doctor errors": ("doctor", "model.py:mlp", "--data", "data.svm", "--model-kwargs",
                      '{"depth": 6, "scale": 3.0}'),
    "init safetensors": ("init", "model.py:mlp", "--data", "data.svm", "--out", "w.safetensors",
                         "--seed", "1", "--json", "r.json", "--batches", "2"),
    "init html": ("init", "model.py:mlp", "--data", "data.svm", "--out", "w2.pt", "--html",
                  "i.html", "--model-kwargs", '{"depth": 4, "scale": 0.3}'),
    **{f"help {verb}": (verb, "--help") for verb in VERBS},
}


@pytest.fixture(scope="module")
def runs(many):
    return many(RUNS)


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
def test_every_verb_has_help_with_examples(verb, runs):
    proc = runs[f"help {verb}"]
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and f"initwise {verb}" in proc.stdout
    if verb in ("doctor", "init"):
        assert "IMPORTED AND RUN" in proc.stdout and "weights_only=True" in proc.stdout


def test_gains_subprocess_prints_relu_sqrt2(runs):
    proc = runs["gains"]
    assert proc.returncode == 0, proc.stderr
    relu = next(line for line in proc.stdout.splitlines() if line.startswith("relu "))
    assert "1.41421" in relu
    assert "gelu" in proc.stdout


def test_gains_json(call):
    rows = json.loads(call("gains", "--json").stdout)
    relu = next(r for r in rows if r["name"] == "relu")
    assert relu["variance_gain"] == pytest.approx(2**0.5, rel=1e-8)
    assert relu["torch_gain"] == pytest.approx(2**0.5, rel=1e-12)


def test_theory_relu_prints_the_critical_point(runs, call):
    proc = runs["theory relu"]
    assert proc.returncode == 0, proc.stderr
    assert "1.414" in proc.stdout  # edge of chaos of ReLU at sigma_b = 0: sqrt(2)
    data = json.loads(call("theory", "tanh", "--sigma-b", "0.05", "--json").stdout)
    assert data["activation"] == "tanh" and data["sigma_b"] == 0.05
    assert data["edge_of_chaos_sigma_w"] > 1.0  # tanh's critical sigma_w grows with sigma_b


def test_doctor_subprocess_writes_valid_json_and_html(runs, work):
    proc = runs["doctor json html"]
    assert proc.returncode == 0, proc.stderr
    assert "Healthy" in proc.stdout and "per layer" in proc.stdout
    doc = json.loads((work / "d.json").read_text())
    validate(doc, "diagnosis")
    assert [layer["name"] for layer in doc["layers"]] == ["0", "2", "4"]
    html = (work / "d.html").read_text()
    for sid in ("verdict", "findings", "layers", "data", "theory"):
        assert f'id="{sid}"' in html


def test_doctor_exit_codes_gate_ci(runs, call):
    healthy = runs["doctor json html"]
    assert healthy.returncode == 0 and "WARNING" not in healthy.stdout
    strict = runs["doctor strict warnings"]
    assert strict.returncode == 1, strict.stderr
    assert "WARNING" in strict.stdout and "ERROR" not in strict.stdout
    exploding = runs["doctor errors"]
    assert exploding.returncode == 2 and "ERROR" in exploding.stdout, exploding.stderr
    assert exploding.stderr == ""  # findings are output, not usage errors
    assert call(*VANISHING).returncode == 0  # warnings without --strict: status 0


def test_doctor_sparse_input_layer_and_csv_target(call):
    assert call("doctor", "model.py:sparse_mlp", "--data", "data.svm").returncode == 0
    proc = call("doctor", "model.py:mlp", "--data", "data.csv", "--target", "label")
    assert proc.returncode in (0, 2), proc.stderr
    assert "n_features 20" in proc.stdout


def test_doctor_export_archive_and_weights(call, archives):
    if not (archives / "m.pt2").exists():
        pytest.skip("a dynamic-batch torch.export archive needs torch >= 2.2")
    proc = call("doctor", "m.pt2", "--data", "data.svm", "--preset", "quick")
    assert proc.returncode == 0, proc.stderr
    ok = call("doctor", "model.py:mlp", "--weights", "state.pt", "--data", "data.svm")
    assert ok.returncode == 0, ok.stderr


def test_init_saves_the_same_bits_as_the_library(runs, call, work):
    init = _needs("initwise.datainit", "init")
    from safetensors.torch import load_file

    from initwise.data import load

    proc = runs["init safetensors"]
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


def test_init_html_has_before_after(runs, work):
    _needs("initwise.datainit", "init")
    proc = runs["init html"]
    assert proc.returncode == 0, proc.stderr
    html = (work / "i.html").read_text()
    assert 'id="init"' in html and "before init" in html and "after init" in html


def test_theory_and_bad_usage_do_not_import_torch(work):
    # `initwise theory` is pure numerics and usage errors fail before any work: both stay fast.
    code = ("import sys; from initwise.cli import main; "
            "codes = [main(['theory', 'relu', '--json']), main(['doctor', 'm.py:f', '--data', "
            "'nope.svm'])]; print(codes, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=work, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "[0, 3] False", proc.stdout + proc.stderr
