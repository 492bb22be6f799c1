"""Tests of InitReport: table rendering and JSON-safe serialization."""

import json
import math

import pytest

from initwise.initreport import (
    SCHEMA_VERSION,
    InitReport,
    LayerCalibration,
    LossCalibration,
    ParamRecord,
)


def _report():
    return InitReport(
        params=[ParamRecord("fc.weight", "fc", "Linear", "kaiming_normal", 8, 4, 1.414, 0.5)],
        layers=[LayerCalibration("fc", "Linear", 0.5, 0.25, target_std=1.0, pre_std=0.99,
                                 active_fraction=0.75, iterations=3)],
        loss=LossCalibration("ce", 4.05, 3.40, 3.39, "output.logits"),
        warnings=["something"],
        seed=7,
    )


def test_table_has_every_section():
    text = str(_report())
    for piece in ("fc.weight", "kaiming_normal", "pre-act std", "label-prior target 3.39",
                  "output.logits", "warning: something", "seed=7"):
        assert piece in text


def test_json_roundtrip_and_nonfinite():
    r = _report()
    r.layers[0].pre_std = math.nan
    d = json.loads(r.to_json())
    assert d["schema"] == SCHEMA_VERSION
    assert d["layers"][0]["pre_std"] is None
    assert d["params"][0]["fan_in"] == 8 and d["loss"]["target"] == 3.39


def test_lookup_errors_name_the_key():
    r = _report()
    assert r.param("fc.weight").gain == 1.414
    assert r.layer("fc").iterations == 3
    with pytest.raises(KeyError, match="nope"):
        r.param("nope")
