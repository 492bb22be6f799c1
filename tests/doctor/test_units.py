"""Probes against direct computation, data profiles, registry, Diagnosis API."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from initwise.doctor import (
    CHECK_CODES,
    Diagnosis,
    Finding,
    UnhealthyModelError,
    doctor,
    register_check,
    register_fix,
    unregister_check,
    unregister_fix,
)
from initwise.doctor.registry import CHECKS
from initwise.measure import profile_inputs


def test_sparse_profile_equals_dense_profile():
    rng = np.random.default_rng(0)
    x = sp.random(64, 500, density=0.02, random_state=1, format="csr", dtype=np.float32)
    x.data = rng.integers(1, 5, x.nnz).astype(np.float32)
    dense = profile_inputs(torch.from_numpy(x.toarray()))
    csr = profile_inputs(torch.sparse_csr_tensor(
        torch.from_numpy(x.indptr.astype(np.int64)), torch.from_numpy(x.indices.astype(np.int64)),
        torch.from_numpy(x.data), size=x.shape))
    coo = profile_inputs(torch.from_numpy(x.toarray()).to_sparse())
    for p in (csr, coo):
        assert p.layout == "sparse" and p.sparse
        assert torch.allclose(p.rms, dense.rms) and torch.allclose(p.mean, dense.mean)
        assert p.nnz_per_row == dense.nnz_per_row and p.density == dense.density


def test_bag_profile_counts_rows_and_nonfinite():
    idx = torch.tensor([0, 3, 3, 9, 2])
    offsets = torch.tensor([0, 2, 4])
    w = torch.tensor([1.0, 2.0, float("nan"), 1.0, 1.0])
    p = profile_inputs((idx, offsets, w))
    assert p.layout == "bag" and p.n_rows == 3
    assert (p.nnz_min, p.nnz_max) == (1, 2) and p.nonfinite == 1 and p.nonfinite_features == [3]


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))


def test_without_targets_grad_and_loss_checks_are_skipped():
    d = doctor(_mlp(), torch.randn(64, 8))
    assert any("no targets" in s for s in d.skipped)
    assert all(s.grad_norm is None for s in d.layers)
    assert d.summary["loss_at_init"] is None


def test_presets_and_options_are_validated():
    with pytest.raises(ValueError, match="quick"):
        doctor(_mlp(), torch.randn(4, 8), checks="thorough")
    with pytest.raises(ValueError, match="on_unknown"):
        doctor(_mlp(), torch.randn(4, 8), on_unknown="ignore")
    with pytest.raises(TypeError, match="nn.Module"):
        doctor(lambda x: x, torch.randn(4, 8))


def test_register_check_guard_and_custom_findings():
    def mine(ctx):
        yield Finding(check="custom.width", severity="info", where="model",
                      evidence=f"{len(ctx.layers)} layers", why="-", fix="-")

    register_check("custom.width", mine)
    try:
        with pytest.raises(ValueError, match="overwrite=True"):
            register_check("custom.width", mine)
        register_check("custom.width", mine, overwrite=True)
        d = doctor(_mlp(), (torch.randn(16, 8), torch.randint(0, 4, (16,))))
        assert "custom.width" in d.codes and d.ok
    finally:
        unregister_check("custom.width")
    assert "custom.width" not in CHECKS
    with pytest.raises(ValueError, match="preset"):
        register_check("custom.x", mine, preset="slow")


def test_json_schema_and_raise_for_errors():
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    x[:, 2] = float("nan")
    d = doctor(_mlp(), (x, y))
    data = json.loads(d.to_json())
    assert data["schema"] == "initwise.diagnosis/1"
    assert data["findings"][0]["severity"] == "error"
    assert {"layers", "data_profile", "skipped", "summary", "codes"} <= set(data)
    assert set(d.codes) <= set(CHECK_CODES)
    with pytest.raises(UnhealthyModelError, match="data.nonfinite") as info:
        d.raise_for_errors()
    assert isinstance(info.value, AssertionError)
    assert "data.nonfinite" in d.plain_text()


def test_fix_runs_a_shared_fix_once():
    calls = []
    register_fix("test.shared", lambda model, data: calls.append(data))
    try:
        findings = [Finding(check=c, severity="warning", where="m", evidence="", why="", fix="",
                            fix_id="test.shared") for c in ("units.dead", "signal.vanishing")]
        findings.append(Finding(check="grad.none", severity="warning", where="m", evidence="",
                                why="", fix=""))
        applied = Diagnosis(findings=findings).fix(nn.Linear(1, 1), "batch")
    finally:
        unregister_fix("test.shared")
    assert calls == ["batch"] and applied == ["signal.vanishing", "units.dead"]


def test_findings_carry_evidence_why_fix():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        m[0].bias.fill_(-10.0)
    d = doctor(m, (torch.randn(64, 8), torch.randint(0, 4, (64,))))
    f = next(f for f in d.findings if f.check == "units.dead")
    assert f.severity == "error" and f.where == "0" and "100%" in f.evidence
    assert f.why and f.fix and f.fix_code and f.automatic
    assert d.layers[0].dead_units == 32
