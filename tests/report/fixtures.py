"""Hand-built reports for the renderer tests (no model, no doctor run: known numbers)."""

from __future__ import annotations

import numpy as np

from initwise.doctor.diagnosis import Diagnosis, LayerStats
from initwise.doctor.findings import Finding
from initwise.initreport import InitReport, LayerCalibration, LossCalibration, ParamRecord

N_LAYERS = 10


def diagnosis(scale: float = 0.5) -> Diagnosis:
    """A deep ReLU MLP whose signal shrinks by ``scale`` per layer."""
    layers = []
    for i in range(N_LAYERS):
        last = i == N_LAYERS - 1
        layers.append(LayerStats(
            name=f"net.{2 * i}", kind="linear", order=i, activation=None if last else "relu",
            units=128, pre_std=scale**i, post_std=None if last else 0.58 * scale**i,
            active_fraction=None if last else 0.5 - 0.03 * i,
            saturated_fraction=None, dead_units=None if last else 3 * i,
            grad_norm=10.0 ** (-i / 2), weight_norm=6.5, update_ratio=10.0 ** (-2 - i / 3),
            is_output=last))
    findings = [
        Finding(
            check="signal.vanishing",
            severity="error",
            where="net.18",
            evidence="pre-activation std falls from 1 to 0.002 over 10 layers (expected 0.5-2)",
            why="Below the edge of chaos signals shrink geometrically (Schoenholz 2017).",
            fix="Re-initialize with initwise.init.",
            fix_code="import initwise\nreport = initwise.init(model, batches)",
            metrics={"ratio": 0.5},
        ),
        Finding(
            check="units.dead",
            severity="warning",
            where="net.16",
            evidence="27 of 128 units <never> active & dead",
            why="Dead ReLUs get no gradient.",
            fix="Use a smaller bias or Kaiming init.",
        ),
        Finding(
            check="loss.prior",
            severity="info",
            where="loss",
            evidence="initial loss 4.2 vs label prior 3.9",
            why="",
            fix="Set the output bias to the log label prior.",
            fix_code="model.head.bias.data.copy_(torch.log(prior))",
        ),
    ]
    profile = {"layout": "sparse", "n_rows": 256, "n_features": 262144, "sparsity": 0.99995,
               "density": 5e-5, "nnz_per_row": 12.5, "nnz_min": 3, "nnz_max": 80,
               "nonfinite": 0, "feature_rms": {"min": 1.0, "median": 1.4, "max": 9.0}}
    return Diagnosis(findings=findings, layers=layers, data_profile=profile,
                     skipped=["update ratio: no optimizer given"], preset="standard",
                     summary={"initial_loss": 4.2, "label_prior_loss": 3.9})


def init_report() -> InitReport:
    params = [ParamRecord(f"net.{2 * i}.weight", f"net.{2 * i}", "Linear", "kaiming_normal",
                          128, 128, 2**0.5, 0.125) for i in range(N_LAYERS)]
    layers = [LayerCalibration(f"net.{2 * i}", "Linear", 0.05, 0.125, 1.0, 1.02, 0.5, 2)
              for i in range(N_LAYERS)]
    return InitReport(params=params, layers=layers,
                      loss=LossCalibration("ce", 4.2, 3.91, 3.9), seed=0,
                      warnings=["net.0: calibrated on 4 batches only"])


def points(sigma_w: float = 0.58) -> list[dict]:
    pts = [{"name": f"net.{2 * i}", "kind": "Linear", "fan_in": 128, "sigma_w": sigma_w,
            "sigma_b": 0.1 * i / N_LAYERS, "activation": "relu", "role": "hidden"}
           for i in range(N_LAYERS)]
    pts[0]["role"], pts[-1]["role"], pts[-1]["activation"] = "input", "output", None
    return pts


class FakeStats:
    """A FeatureStats look-alike with a Zipf tail."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.n_rows, self.n_features = 1000, 5000
        self.doc_freq = np.floor(1000 / np.arange(1, 5001) ** 1.1).astype(np.int64)
        self.second_moment = self.doc_freq / 1000 * rng.uniform(1, 4, 5000)
        self.nnz = int(self.doc_freq.sum())
        hist = np.zeros(60, dtype=np.int64)
        np.add.at(hist, rng.poisson(12, 1000).clip(0, 59), 1)
        self.nnz_per_row_hist = hist
