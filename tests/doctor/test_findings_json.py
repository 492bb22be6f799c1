"""Findings as plain data: keywords only, fix_id resolved by the fix registry, Diagnosis JSON
read back, and the doctor importing neither the renderer nor the init machinery."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from initwise.doctor import (
    INIT_FIX,
    Diagnosis,
    Finding,
    LayerStats,
    doctor,
    get_fix,
    register_fix,
    unregister_fix,
)
from initwise.report.schema import validate


def _dead_net() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], torch.optim.Optimizer]:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                        nn.Linear(32, 4))
    with torch.no_grad():
        net[0].bias.fill_(-10.0)
    batch = (torch.randn(64, 8, generator=g), torch.randint(0, 4, (64,), generator=g))
    return net, batch, torch.optim.SGD(net.parameters(), lr=0.1)


def test_finding_is_keyword_only_and_plain_data():
    with pytest.raises(TypeError):
        Finding("units.dead", "warning", "m", "e", "w", "f")  # positional: refused
    f = Finding(check="units.dead", severity="warning", where="net.0", evidence="e", why="w",
                fix="f", metrics={"ratio": math.inf, "n": 3}, fix_id=INIT_FIX, step=40)
    d = f.to_dict()
    assert d["metrics"] == {"ratio": "inf", "n": 3} and d["automatic"] is True
    assert d["fix_id"] == "initwise.init" and d["step"] == 40
    assert Finding.from_dict(json.loads(json.dumps(d))) == f
    with pytest.raises(ValueError, match="unknown key"):
        Finding.from_dict({**d, "auto_fix": None})


def test_fix_registry_guards_and_unknown_fix_ids_are_not_automatic():
    assert callable(get_fix(INIT_FIX))
    with pytest.raises(ValueError, match="already registered"):
        register_fix(INIT_FIX, lambda model, data: None)
    with pytest.raises(KeyError, match="register_fix"):
        get_fix("team.nothing")
    f = Finding(check="x.y", severity="info", where="m", evidence="e", why="", fix="by hand",
                fix_id="team.nothing")
    assert not f.automatic
    with pytest.raises(RuntimeError, match="not registered.*by hand"):
        f.apply(nn.Linear(1, 1))
    with pytest.raises(ValueError, match="needs batches"):
        get_fix(INIT_FIX)(nn.Linear(1, 1), None)
    register_fix("team.nothing", lambda model, data: "done")
    try:
        assert f.automatic and f.apply(nn.Linear(1, 1)) == "done"
    finally:
        unregister_fix("team.nothing")


def test_diagnosis_json_round_trip_on_a_real_diagnosis():
    net, batch, opt = _dead_net()
    d = doctor(net, batch, checks="full", optimizer=opt)
    assert "units.dead" in d.codes and any(f.fix_id == INIT_FIX for f in d.findings)
    data = d.to_dict()
    back = Diagnosis.from_dict(data)
    assert back.to_dict() == data
    assert back.findings == d.findings and back.layers == d.layers
    again = Diagnosis.from_json(d.to_json())
    assert again.to_dict() == data and again.findings == d.findings
    validate(json.loads(d.to_json()), "diagnosis")
    with pytest.raises(ValueError, match="schema"):
        Diagnosis.from_dict({**data, "schema": "initwise.diagnosis/0"})


def test_infinite_layer_statistics_read_back_as_floats():
    d = Diagnosis(layers=[LayerStats(name="a", kind="linear", order=0, update_ratio=math.inf,
                                     grad_norm=float("nan"))])
    data = json.loads(d.to_json())
    assert data["layers"][0]["update_ratio"] == "inf" and data["layers"][0]["grad_norm"] is None
    back = Diagnosis.from_json(d.to_json())
    assert back.layers[0].update_ratio == math.inf and back.layers[0].grad_norm is None
    validate(data, "diagnosis")


def test_fix_of_a_diagnosis_read_back_from_json_runs_init_once(monkeypatch):
    import initwise.datainit

    calls = []
    monkeypatch.setattr(initwise.datainit, "init", lambda model, data: calls.append(data))
    net, batch, _ = _dead_net()
    d = Diagnosis.from_json(doctor(net, batch).to_json())
    fixed = d.fix(net, [batch])
    assert len(calls) == 1 and "units.dead" in fixed
    assert all(c in d.codes for c in fixed)


def test_doctor_and_str_import_neither_report_nor_datainit():
    code = (
        "import sys, torch\n"
        "from torch import nn\n"
        "import initwise.doctor as D\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "g = torch.Generator().manual_seed(0)\n"
        "d = D.doctor(net, (torch.randn(16, 4, generator=g), torch.tensor([0, 1] * 8)))\n"
        "text = str(d)\n"
        "assert text == d.plain_text() and text.startswith('initwise doctor (standard)')\n"
        "bad = [m for m in sys.modules if m.startswith(('initwise.report', 'initwise.datainit'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
