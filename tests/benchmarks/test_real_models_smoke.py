"""Smoke test of benchmarks/real_models.py: its core on one tiny model, a few steps."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_models  # noqa: E402
from _real.report import _no_worse, summarize_model  # noqa: E402
from _real.run import batch_order, run_seed  # noqa: E402
from _real.tasks import TASKS  # noqa: E402


@pytest.fixture(scope="module")
def doc():
    threads = torch.get_num_threads()  # run() sets 1 thread (2 shared cores): restored after
    args = real_models._parse(["--models", "te_postln", "--seeds", "1", "--steps", "3",
                               "--opt", "adamw", "--threads", "1", "--json", ""])
    try:
        yield real_models.run(args, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)


def test_every_arm_is_built_diagnosed_and_trained(doc):
    (seed,) = doc["models"]["te_postln"]["seeds"]
    assert set(seed["arms"]) == {"own", "init", "auto"}
    for arm, rec in seed["arms"].items():
        assert rec["error"] is None, (arm, rec["error"])
        assert math.isfinite(rec["initial_loss"]) and rec["initial_loss"] > 0
        assert "findings" in rec["doctor"] and "error" not in rec["doctor"]
        run = rec["runs"]["adamw"]
        assert len(run["train_curve"]) == 2 and math.isfinite(run["final_loss"])
    assert seed["arms"]["init"]["seconds"] > 0 and seed["mean_step_s"] > 0
    row = doc["summary"][0]
    assert row["init_steps"] == pytest.approx(row["init_s"] / row["mean_step_s"])
    assert set(row["verdict"]) == {"no_worse", "prior", "doctor", "time", "all"}


def test_prior_loss_is_train_prior_on_held_out_labels(doc):
    task = TASKS["tokens"]()
    freq = torch.bincount(task.train[1], minlength=4).double() / task.n_train
    twin = float(-torch.log(freq[task.held[1]]).mean())
    assert doc["tasks"]["tokens"]["prior_loss"] == pytest.approx(twin, rel=1e-12)
    assert doc["summary"][0]["prior_loss"] == pytest.approx(twin, rel=1e-12)
    # the classes are drawn from (0.4, 0.3, 0.2, 0.1): entropy 1.2799 nats
    assert twin == pytest.approx(1.2799, abs=0.03)


def test_same_seed_same_numbers(doc):
    from _real.models import SPECS

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = run_seed(SPECS["te_postln"], TASKS["tokens"](), 0, 3, ["adamw"],
                         log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    first = doc["models"]["te_postln"]["seeds"][0]
    for arm in ("own", "init", "auto"):
        a, b = first["arms"][arm], again["arms"][arm]
        assert a["initial_loss"] == b["initial_loss"]
        assert a["runs"]["adamw"]["final_loss"] == b["runs"]["adamw"]["final_loss"]


def test_batches_depend_on_the_seed_only():
    a, b, c = batch_order(100, 8, 30, 0), batch_order(100, 8, 30, 0), batch_order(100, 8, 30, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert len(a) == 30 and all(len(x) == 8 for x in a)


def test_markov_task_prior_and_achievable_losses():
    task = TASKS["markov"]()
    assert task.achievable < task.prior_loss < math.log(64) + 1e-9
    # 3 successors with Dirichlet(1) weights: mean row entropy psi(4) - psi(2) = 0.8333
    assert task.info["mean_row_entropy"] == pytest.approx(0.8333, abs=0.06)


def test_no_worse_is_mean_within_one_pooled_std():
    def arms(own, ini):
        return {"own": {"mean": own[0], "std": own[1]}, "init": {"mean": ini[0], "std": ini[1]}}
    assert _no_worse({"adamw": arms((1.0, 0.1), (1.09, 0.1))})
    assert not _no_worse({"adamw": arms((1.0, 0.1), (1.11, 0.1))})
    # pooled std sqrt((0.3^2 + 0^2) / 2) = 0.212
    assert _no_worse({"adamw": arms((1.0, 0.3), (1.2, 0.0))})
    assert not _no_worse({"a": arms((1.0, 0.0), (0.9, 0.0)), "b": arms((1.0, 0.0), (1.1, 0.0))})
    assert not _no_worse({"adamw": arms((1.0, 0.1), (float("nan"), float("nan")))})
    assert _no_worse({"adamw": arms((float("nan"), float("nan")), (1.0, 0.0))})


def test_tables_render_every_model(doc):
    md = real_models.tables(doc, markdown=True)
    assert "| te_postln | tokens |" in md
    assert sum(line.startswith("|---|") for line in md.splitlines()) == 2
    plain = real_models.tables(doc, markdown=False)
    assert "te_postln" in plain and "|" not in plain.replace("±", "")


def test_summary_flags_a_new_doctor_error():
    def seed(own_err, init_err):
        def arm(errs, loss):
            return {"error": None, "seconds": 0.1, "n_warnings": 0, "initial_loss": loss,
                    "doctor": {"findings": [{"check": c, "severity": "error", "where": "m"}
                                            for c in errs]},
                    "runs": {"adamw": {"final_loss": 1.0}}}
        return {"seed": 0, "mean_step_s": 0.01,
                "arms": {"own": arm(own_err, 1.0), "init": arm(init_err, 1.0),
                         "auto": arm([], 1.0)}}
    entry = {"name": "m", "library": "torch", "task": "tokens",
             "seeds": [seed(["units.dead"], ["units.dead", "grad.exploding"])]}
    row = summarize_model(entry, prior=1.0)
    assert row["new_doctor_errors"] == ["grad.exploding@m"]
    assert not row["verdict"]["doctor"] and row["verdict"]["prior"] and row["verdict"]["time"]
    assert row["init_steps"] == pytest.approx(10.0)
