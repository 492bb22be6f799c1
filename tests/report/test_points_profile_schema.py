"""phase_points and stats_profile against slow twins; JSON schemas accept real output only."""

from __future__ import annotations

import copy
import json
import math

import jsonschema
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from initwise.report.profile import stats_profile
from initwise.report.schema import validate
from initwise.theory_points import critical_curve, phase_points


def _mlp() -> nn.Sequential:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4, bias=False))
    for p in model.parameters():
        with torch.no_grad():
            p.normal_(0, 0.3, generator=g)
    return model


def test_phase_points_match_a_direct_computation_and_leave_the_model_alone():
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    pts = phase_points(model)
    assert [p["name"] for p in pts] == ["0", "2", "4"]
    assert [p["role"] for p in pts] == ["input", "hidden", "output"]
    assert [p["activation"] for p in pts] == ["tanh", "relu", None]
    for p, lin in zip(pts, (model[0], model[2], model[4])):
        w = lin.weight.detach().double().numpy()
        assert p["fan_in"] == w.shape[1]
        assert p["sigma_w"] == pytest.approx(w.std(ddof=1) * math.sqrt(w.shape[1]), rel=1e-5)
        b = 0.0 if lin.bias is None else lin.bias.detach().double().numpy().std(ddof=1)
        assert p["sigma_b"] == pytest.approx(b, rel=1e-5, abs=1e-12)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_phase_points_trace_finds_functional_activations():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    pts = phase_points(Functional(), torch.zeros(3, 8))
    assert pts[0]["activation"] == "tanh"


def test_critical_curve_tanh_and_relu():
    pytest.importorskip("initwise.theory")
    tanh = critical_curve("tanh", [0.0, 0.1])
    assert tanh[0] == pytest.approx(1.0, abs=1e-6)  # tanh'(0)^2 = 1: sigma_w = 1 at sigma_b = 0
    assert tanh[1] > 1.0
    assert critical_curve("relu", [0.0, 0.3, 0.9]) == pytest.approx([math.sqrt(2)] * 3)
    assert critical_curve("no-such-activation", [0.0]) is None


def test_stats_profile_against_a_brute_force_count():
    from initwise.data import Dataset

    rng = np.random.default_rng(0)
    X = sp.random(200, 50, density=0.1, format="csr", random_state=1, dtype=np.float64)
    X.data = rng.uniform(0.5, 3.0, X.nnz)
    prof = stats_profile(Dataset(X, rng.integers(0, 3, 200)).stats(), points=1000)
    dense = X.toarray()
    nnz = (dense != 0).sum(1)
    assert prof["density"] == pytest.approx(X.nnz / dense.size)
    assert prof["nnz_per_row"]["mean"] == pytest.approx(nnz.mean())
    assert prof["nnz_per_row"]["max"] == nnz.max()
    ks, rows = prof["nnz_hist"]
    assert dict(zip(ks, rows)) == {k: float((nnz == k).sum()) for k in np.unique(nnz)}
    freq = np.sort((dense != 0).mean(0))[::-1]
    ranks, values = prof["doc_freq"]
    assert values == pytest.approx(freq[np.array(ranks) - 1].tolist())
    rms = np.sort(np.sqrt((dense**2).mean(0)))[::-1]
    ranks, values = prof["rms"]
    assert values == pytest.approx(rms[np.array(ranks) - 1].tolist(), rel=1e-6)


def test_real_diagnosis_json_validates_and_a_broken_one_does_not(fx):
    doc = json.loads(fx.diagnosis().to_json())
    validate(doc, "diagnosis")
    doc["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "diagnosis")


def test_doctor_output_validates():
    from initwise.doctor import doctor

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 30, generator=g), torch.randint(0, 4, (64,), generator=g)
    doc = json.loads(doctor(_mlp(), (x, y), checks="full",
                            optimizer=torch.optim.SGD(_mlp().parameters(), lr=0.1)).to_json())
    validate(doc, "diagnosis")


def test_init_report_json_validates_and_extra_keys_are_rejected(fx):
    doc = json.loads(fx.init_report().to_json())
    validate(doc, "initreport")
    doc["params"][0]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "initreport")
    with pytest.raises(ValueError, match="kind 'nope' is not one of"):
        validate({}, "nope")
