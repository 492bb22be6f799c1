"""One JSON rule (initwise.jsonio) for the doctor and InitReport: NaN -> null, +-inf -> strings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from initwise.initreport import InitReport, LayerCalibration
from initwise.jsonio import dumps, json_safe, loads, restore_nonfinite
from initwise.report.schema import validate


def test_the_rule_on_every_kind_of_value():
    x = {"a": math.inf, "b": -math.inf, "c": math.nan, 1: (1, 2.5), "s": {3},
         "np": np.float32(0.5), "t": torch.tensor(2.0), "flag": True, "none": None,
         "obj": object}
    out = json_safe(x)
    assert out["a"] == "inf" and out["b"] == "-inf" and out["c"] is None
    assert out["1"] == [1, 2.5] and out["s"] == [3] and out["np"] == 0.5 and out["t"] == 2.0
    assert out["flag"] is True and out["none"] is None and out["obj"].startswith("<class")
    json.dumps(out, allow_nan=False)  # strict JSON
    assert x["a"] == math.inf  # the input is not changed


def test_dumps_loads_round_trip_infinities():
    text = dumps({"r": [math.inf, -math.inf, 1.0]}, indent=None)
    assert text == '{"r": ["inf", "-inf", 1.0]}'
    assert loads(text) == {"r": [math.inf, -math.inf, 1.0]}
    assert restore_nonfinite({"k": "info"}) == {"k": "info"}
    with pytest.raises(ValueError):
        json.dumps({"x": math.nan}, allow_nan=False)


def test_init_report_uses_the_same_rule_and_still_validates():
    rep = InitReport(layers=[LayerCalibration("l", "Linear", math.inf, 1.0, 1.0, math.nan,
                                              0.5, 1)])
    d = rep.to_dict()
    assert d["layers"][0]["scale_before"] == "inf" and d["layers"][0]["pre_std"] is None
    validate(json.loads(rep.to_json()), "initreport")
