"""Severities that predict outcomes: an error means "this will not learn as it should".

What broke: on the demo's default-init model (SparseLinear + 8 x Linear(128) + ReLU, torch's
default init, sparse bag-of-words) the doctor said "Trainable, with problems worth fixing: 4
warnings", yet the model ended at 10.8 % test accuracy against 60.0 % after ``initwise.init``.
The thresholds below are calibrated in benchmarks/DOCTOR.md ("Outcomes").
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import zoo_cases as zoo

from initwise.datainit import init
from initwise.demo import build_mlp
from initwise.doctor import doctor
from initwise.report.terminal import verdict


def _diagnose(setup, preset="standard"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return doctor(setup.model, setup.batch, optimizer=setup.optimizer,
                      loss_fn=setup.loss_fn, checks=preset)


def _sparse_counts(seed: int, n: int = 256, n_features: int = 4096, nnz: int = 15,
                   classes: int = 20):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, n_features, n * nnz)
    vals = rng.integers(1, 4, n * nnz).astype(np.float32)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n, n_features))
    return x, rng.integers(0, classes, n)


def _demo_like(depth: int, seed: int = 0):
    x, y = _sparse_counts(seed)
    return zoo.Setup(build_mlp(4096, 20, depth=depth, width=128, seed=seed,
                               sparse_grad=False), (x, y))


def _finding(d, code):
    return next(f for f in d.findings if f.check == code)


def test_scaled_down_demo_model_gets_an_error():
    d = _diagnose(_demo_like(8))
    assert verdict(d.findings)[0] == "error", d.plain_text()
    collapse = _finding(d, "signal.correlation_collapse")
    assert collapse.severity == "error"
    assert collapse.metrics["dead_fraction"] > 0.3
    assert min(collapse.metrics["signal_fraction"].values()) < 1e-4


def test_scaled_down_demo_model_after_init_has_no_error():
    s = _demo_like(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init(s.model, s.batch, generator=0)
    d = _diagnose(s)
    assert not d.errors, d.plain_text()
    assert not d.codes_at("warning") & {"signal.correlation_collapse", "signal.vanishing",
                                        "grad.vanishing", "units.dead"}


@pytest.mark.parametrize("name", ["mlp_deep12_kaiming", "mlp_deep20_batch32"])
def test_healthy_deep_kaiming_mlp_has_no_error_or_warning(name):
    fn, preset = zoo.HEALTHY[name]
    for seed in (0, 1):
        d = _diagnose(fn(seed), preset)
        assert d.ok, d.plain_text()


def test_torch_default_depth16_relu_is_an_error_depth4_is_not():
    deep = _diagnose(zoo.OUTCOME_TASKS["teacher_relu16_default"][0](0))
    assert {"signal.vanishing", "signal.correlation_collapse",
            "grad.vanishing"} <= deep.codes_at("error"), deep.plain_text()
    shallow = _diagnose(zoo.OUTCOME_TASKS["teacher_relu4_default"][0](0))
    assert not shallow.errors and shallow.ok, shallow.plain_text()


def test_collapse_with_dead_units_is_an_error_collapse_alone_a_warning():
    # inputs of mean 10: signal fraction 0.011 (between the error and warning thresholds)
    # with 41 % of a ReLU layer dead -> the combined rule makes it an error
    both = _finding(_diagnose(zoo.BROKEN["uncentered_inputs"][0](0)),
                    "signal.correlation_collapse")
    assert 5e-3 < min(both.metrics["signal_fraction"].values()) < 0.02
    assert both.metrics["dead_fraction"] >= 0.3 and both.severity == "error"
    # 8 tanh layers with torch's default: 0.017, no ReLU units -> a warning (it learns)
    alone = _finding(_diagnose(zoo.OUTCOME_TASKS["teacher_tanh8_default"][0](0)),
                     "signal.correlation_collapse")
    assert 5e-3 < min(alone.metrics["signal_fraction"].values()) < 0.02
    assert alone.metrics["dead_fraction"] == 0.0 and alone.severity == "warning"


def test_signal_vanishing_error_below_5e_3_warning_above():
    # torch's default on 10 ReLU layers: ratio 5.3e-4 -> error (was a warning)
    f = _finding(_diagnose(zoo.BROKEN["torch_default_deep10"][0](0)), "signal.vanishing")
    assert f.metrics["ratio"] < 5e-3 and f.severity == "error"


def test_head_scale_that_adam_undoes_is_a_warning():
    # logits x 100 (logit std 91, CE loss ratio 65) learned within the outcome budget
    d = _diagnose(zoo.BROKEN["logits_x100"][0](0))
    assert {"output.logit_scale", "loss.init_mismatch"} <= d.codes_at("warning"), d.plain_text()
    assert not d.errors
    # raw tabular columns (logit std 3e8) did not learn: still errors
    raw = _diagnose(zoo.BROKEN["unscaled_tabular"][0](0))
    assert {"output.logit_scale", "loss.init_mismatch", "data.unscaled"} <= raw.codes_at("error")


def test_zero_learning_rate_is_an_error():
    fn, _, preset = zoo.BROKEN["zero_lr"]
    f = _finding(_diagnose(fn(0), preset), "update.ratio")
    assert f.severity == "error" and "changes nothing" in f.evidence


def test_saturation_above_half_is_an_error():
    fn, _, preset = zoo.BROKEN["tanh30_chaotic_sw3"]
    d = _diagnose(fn(0), preset)
    sat = _finding(d, "units.saturated")
    assert max(sat.metrics["saturated_fraction"].values()) > 0.5 and sat.severity == "error"
    assert _finding(d, "grad.exploding").severity == "error"


def test_exploding_signal_is_an_error_only_with_plain_sgd():
    # a 2 x Kaiming gain at depth 10 (ratio 104) learned with Adam, not with SGD
    s = zoo.BROKEN["relu_exploding_gain"][0](0)
    s.optimizer = torch.optim.Adam(s.model.parameters(), lr=1e-3)
    assert _finding(_diagnose(s), "signal.exploding").severity == "warning"
    s.optimizer = torch.optim.SGD(s.model.parameters(), lr=0.01, momentum=0.9)
    f = _finding(_diagnose(s), "signal.exploding")
    assert 10 < f.metrics["ratio"] < 1e3 and f.severity == "error"
