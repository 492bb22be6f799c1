"""The monitor's log sinks write what they are given (read back from the files), and the
progress line says which alarms are on."""

from __future__ import annotations

import csv
import math
import sys

import pytest
import torch
from torch import nn

from initwise.doctor import Finding
from initwise.jsonio import loads
from initwise.monitor import Monitor, TrainingDiverged
from initwise.monitor.sinks import CSVSink, JSONLinesSink, ProgressLine, Sink, TensorBoardSink

SCALARS = {"loss_ema": 0.6931471805599453, "grad_norm": float("inf"),
           "update_ratio/fc1.weight": 1.25e-3, "dead_fraction/fc2": 0.0}


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_sink_writes_one_row_per_scalar_and_reads_back_exactly(tmp_path):
    path = tmp_path / "logs" / "mon.csv"  # the folder is created
    sink = CSVSink(path)
    assert isinstance(sink, Sink)
    sink.write(16, SCALARS)
    sink.write(32, {"loss_ema": 0.5, "loss_noise": float("nan")})
    sink.close()
    rows = _rows(path)
    assert [(int(r["step"]), r["name"]) for r in rows] == [
        (16, "loss_ema"), (16, "grad_norm"), (16, "update_ratio/fc1.weight"),
        (16, "dead_fraction/fc2"), (32, "loss_ema"), (32, "loss_noise")]
    got = [float(r["value"]) for r in rows]
    assert got[:4] == [0.6931471805599453, math.inf, 1.25e-3, 0.0]  # repr: every digit kept
    assert got[4] == 0.5 and math.isnan(got[5])


def test_csv_sink_appends_after_close_and_keeps_an_existing_file_with_append(tmp_path):
    path = tmp_path / "mon.csv"
    sink = CSVSink(path)
    sink.write(1, {"a": 1.0})
    sink.close()
    sink.close()  # idempotent
    sink.write(2, {"a": 2.0})  # reopened: appended, no second header
    sink.close()
    assert path.read_text().splitlines() == ["step,name,value", "1,a,1.0", "2,a,2.0"]
    with CSVSink(path, append=True) as again:
        again.write(3, {"a": 3.0})
    assert [r["step"] for r in _rows(path)] == ["1", "2", "3"]
    with CSVSink(path) as fresh:  # without append: a new file
        fresh.write(4, {"b": 4.0})
    assert path.read_text().splitlines() == ["step,name,value", "4,b,4.0"]


def test_jsonlines_sink_follows_the_project_json_rule(tmp_path):
    path = tmp_path / "mon.jsonl"
    with JSONLinesSink(path) as sink:
        sink.write(16, SCALARS)
        sink.write(32, {"loss_noise": float("nan"), "grad_norm": -float("inf")})
    lines = path.read_text().splitlines()
    assert lines[1] == '{"step": 32, "scalars": {"loss_noise": null, "grad_norm": "-inf"}}'
    first = loads(lines[0])
    assert first == {"step": 16, "scalars": SCALARS}  # inf comes back as a float
    assert loads(lines[1])["scalars"]["grad_norm"] == -math.inf


@pytest.mark.parametrize("sink_class", [CSVSink, JSONLinesSink])
def test_file_sinks_reject_what_is_not_a_scalar(tmp_path, sink_class):
    sink = sink_class(tmp_path / "x")
    with pytest.raises(TypeError, match=r"scalar 'w' = tensor\(.*is not a number"):
        sink.write(1, {"w": torch.ones(3)})
    with pytest.raises(TypeError, match="step must be an int, got float"):
        sink.write(1.0, {"a": 1.0})
    with pytest.raises(TypeError, match="scalars must be a mapping"):
        sink.write(1, [("a", 1.0)])
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        sink_class(3)
    sink.write(2, {"one": torch.tensor(0.25)})  # a one-element tensor is a scalar
    sink.close()
    assert "0.25" in (tmp_path / "x").read_text()


def test_tensorboard_sink_writes_scalars_that_tensorboard_reads_back(tmp_path):
    pytest.importorskip("tensorboard", reason="the 'monitor' extra (tensorboard) is missing")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink(tmp_path / "tb")
    sink.write(16, {"loss_ema": 0.75, "dead_fraction/fc2": 0.5})
    sink.write(32, {"loss_ema": 0.5})
    sink.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["initwise/dead_fraction/fc2", "initwise/loss_ema"]
    ema = acc.Scalars("initwise/loss_ema")
    assert [(e.step, e.value) for e in ema] == [(16, 0.75), (32, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("initwise/dead_fraction/fc2")] == [(16, 0.5)]


class _Writer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []
        self.flushed = self.closed = 0

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.calls.append((tag, value, global_step))

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


def test_tensorboard_sink_borrows_a_writer_and_only_flushes_it():
    w = _Writer()
    sink = TensorBoardSink(w, prefix="mon/")
    sink.write(8, {"grad_norm": 2.0, "loss_ema": 1.0})
    sink.close()
    assert w.calls == [("mon/grad_norm", 2.0, 8), ("mon/loss_ema", 1.0, 8)]
    assert (w.flushed, w.closed) == (1, 0)
    with pytest.raises(TypeError, match="a SummaryWriter or a log folder, got int"):
        TensorBoardSink(3)


def test_tensorboard_sink_names_the_extra_when_tensorboard_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'initwise\[monitor\]'"):
        TensorBoardSink(tmp_path / "tb")


def _finding(check: str, severity: str, where: str) -> Finding:
    return Finding(check=check, severity=severity, where=where, evidence="", why="", fix="")


class _Mon:
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings


def test_progress_line_names_errors_first_and_counts_the_rest():
    mon = _Mon([])
    line = ProgressLine(mon, max_items=2)
    assert line() == "no alarm"
    mon.findings.append(_finding("train.plateau", "warning", "model"))
    assert str(line) == "1 alarm: train.plateau"
    mon.findings += [_finding("units.dying", "error", "fc2"),
                     _finding("update.ratio", "warning", "fc1.weight"),
                     _finding("units.dying", "warning", "fc2")]  # same label: named once
    assert line() == "3 alarms: units.dying@fc2, train.plateau, +1 more"
    assert ProgressLine(mon).items() == ["units.dying@fc2", "train.plateau",
                                         "update.ratio@fc1.weight"]
    with pytest.raises(ValueError, match="max_items=0; expected a positive int"):
        ProgressLine(mon, max_items=0)
    with pytest.raises(TypeError, match="must have a 'findings' list"):
        ProgressLine(object())


def test_a_monitor_in_a_plain_loop_logs_every_sync_and_its_alarms_show_in_the_line(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    sinks = [CSVSink(tmp_path / "m.csv"), JSONLinesSink(tmp_path / "m.jsonl")]
    mon = Monitor(net, every=1000, sync_every=5, log=sinks)
    line = ProgressLine(mon)
    with pytest.raises(TrainingDiverged, match="last good step 10"):
        for step in range(1, 21):
            loss = nn.functional.cross_entropy(net(x), y)
            if step == 13:
                loss = loss * math.nan
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss=loss, optimizer=opt)
    assert mon.steps == 15  # stopped at the synchronization after the NaN
    mon.close()
    rows = _rows(tmp_path / "m.csv")
    assert sorted({int(r["step"]) for r in rows}) == [5, 10]  # no write at the failed sync
    names = {r["name"] for r in rows}
    assert {"loss_ema", "loss_noise", "grad_norm", "update_ratio/0.weight"} <= names
    jl = [loads(s) for s in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [d["step"] for d in jl] == [5, 10]
    csv10 = {r["name"]: float(r["value"]) for r in rows if r["step"] == "10"}
    assert jl[1]["scalars"] == pytest.approx(csv10, rel=1e-12)  # the same numbers in both
    assert line() == "1 alarm: train.nonfinite"
