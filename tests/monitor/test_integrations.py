"""The Lightning and Hugging Face adapters, on real tiny fits with the real libraries.

Each fit is seeded, CPU-only, a few dozen steps on a small MLP (or a 2-layer BERT built from a
config: nothing is downloaded). The faults are injected at known steps: a bias shift that kills
every ReLU of one layer, and NaN weights; the tests assert where and when the monitor saw them.
The libraries come from the ``lightning`` and ``hf`` extras; without them the tests skip.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import initwise.jsonio
import initwise.monitor.hf
import initwise.monitor.lightning
from initwise.monitor import LossTracker, TrainingDiverged
from initwise.monitor.sinks import CSVSink, JSONLinesSink

SHIFT_AT = 20  # the optimizer step after which the bias shift kills the ReLUs of net.2
NAN_AT = 23  # the optimizer step after which the weights are NaN


def _data(n: int = 128, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    return x, y


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 2))


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _inject(net: nn.Sequential, fault: str | None, step: int) -> None:
    """Called after optimizer step ``step``: the fault of the test, once."""
    with torch.no_grad():
        if fault == "dead" and step == SHIFT_AT:
            net[2].bias.fill_(-1e3)  # every unit of net.3 (the ReLU after net.2) dies
        elif fault == "nan" and step == NAN_AT:
            net[0].weight.fill_(math.nan)


def test_importing_the_monitor_imports_no_framework():
    code = ("import sys, initwise.monitor, initwise.monitor.lightning, initwise.monitor.hf, "
            "initwise.monitor.sinks; "
            "print(sorted(m for m in ('lightning', 'transformers', 'tensorboard') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    assert "InitwiseCallback" in initwise.monitor.lightning.__all__
    assert "InitwiseTrainerCallback" in initwise.monitor.hf.__all__
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        initwise.monitor.lightning.Nope  # noqa: B018


@pytest.mark.parametrize("module, missing, extra", [
    (initwise.monitor.lightning, "lightning.pytorch", "lightning"),
    (initwise.monitor.hf, "transformers", "hf")])
def test_a_missing_framework_names_the_extra_to_install(monkeypatch, module, missing, extra):
    name = [n for n in module.__all__ if n.startswith("Initwise")][0]
    module._build.cache_clear()
    monkeypatch.setitem(sys.modules, missing, None)  # its import fails
    try:
        with pytest.raises(ImportError, match=rf"pip install 'initwise\[{extra}\]'"):
            getattr(module, name)
    finally:
        module._build.cache_clear()


def test_adapter_keywords_are_checked_when_the_callback_is_built():
    _lightning()
    cb_class = initwise.monitor.lightning.InitwiseCallback
    with pytest.raises(TypeError, match="the keywords are Monitor's: every, sync_every"):
        cb_class(evry=10)
    with pytest.raises(ValueError, match="on_divergence='ignore'; valid: 'stop', 'raise'"):
        cb_class(on_divergence="ignore")
    with pytest.raises(TypeError, match="do not pass model="):
        cb_class(model=nn.Linear(2, 2))


# ---- Lightning ------------------------------------------------------------------------------


def _lightning():
    return pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is missing")


def _module_class(pl):
    class Tiny(pl.LightningModule):
        def __init__(self, fault: str | None = None, lr: float = 0.05) -> None:
            super().__init__()
            self.net = _mlp()
            self.fault, self.lr = fault, lr
            self.losses: list[float] = []  # the loss of each micro-batch (test bookkeeping)
            self._seen_step = 0
            self.val_losses: list[float] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.losses.append(float(loss.detach()))
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.trainer.global_step != self._seen_step:  # an optimizer step just ended
                self._seen_step = self.trainer.global_step
                _inject(self.net, self.fault, self._seen_step)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.val_losses.append(float(loss))
            self.log("val_loss", loss)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    return Tiny


def _fit(pl, module, callback, tmp_path, *, max_steps: int = 60, ckpt_path=None,
         accumulate: int = 1, logger=False, batch_size: int = 16, val_every: int | None = None):
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=batch_size, shuffle=False)
    val = None
    if val_every is not None:
        xv, yv = _data(32, seed=1)
        val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=32)
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=logger,
                         callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         accumulate_grad_batches=accumulate, default_root_dir=str(tmp_path),
                         num_sanity_val_steps=0, log_every_n_steps=1,
                         limit_val_batches=1.0 if val is not None else 0,
                         val_check_interval=val_every)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|"
                                "no `val_dataloader`|LeafSpec).*")  # Lightning's own advice
        trainer.fit(module, loader, val, ckpt_path=ckpt_path)
    return trainer


def test_lightning_callback_finds_relus_killed_by_a_bias_shift(tmp_path):
    pl = _lightning()
    from lightning.pytorch.loggers import CSVLogger

    cb = initwise.monitor.lightning.InitwiseCallback(
        every=5, sync_every=5, log=[CSVSink(tmp_path / "mon.csv")])
    module = _module_class(pl)(fault="dead")
    trainer = _fit(pl, module, cb, tmp_path, logger=CSVLogger(str(tmp_path), name="run"))
    mon = cb.monitor
    assert trainer.global_step == mon.steps == 60
    dying = [f for f in mon.findings if f.check == "units.dying"]
    assert [f.where for f in dying] == ["net.2"]
    # found at the third measurement after the shift (window 3, every 5), started near it
    assert SHIFT_AT - 5 <= dying[0].step <= SHIFT_AT + 5
    assert dying[0].metrics["fraction"] >= 0.9
    dead = [f for f in mon.findings if f.check == "units.dead"]
    assert dead and dead[0].where == "net.2" and dead[0].step == SHIFT_AT + 5
    assert not any(f.step < SHIFT_AT for f in mon.findings)  # silent while healthy
    # the same scalars went to the monitor's sink and to Lightning's logger, every 5 steps
    rows = _csv(tmp_path / "mon.csv")
    assert sorted({int(r["step"]) for r in rows}) == list(range(5, 61, 5))
    logged = _csv(next(tmp_path.glob("run/*/metrics.csv")))
    ema = {int(r["step"]) + 1: float(r["initwise/loss_ema"]) for r in logged
           if r.get("initwise/loss_ema")}  # Lightning counts its logged steps from 0
    ours = {int(r["step"]): float(r["value"]) for r in rows if r["name"] == "loss_ema"}
    assert [ema[s] for s in ours] == pytest.approx(list(ours.values()), rel=1e-6)
    alarms = [float(r["initwise/alarms"]) for r in logged if r.get("initwise/alarms")]
    assert alarms[0] == 0 and alarms[-1] == len(mon.findings)
    assert callable(getattr(mon.sinks[0], "write", None)) and mon.sinks[0]._fh is None  # closed


def test_lightning_steps_once_per_optimizer_step_with_accumulation(tmp_path):
    pl = _lightning()
    cb = initwise.monitor.lightning.InitwiseCallback(every=50, sync_every=4)
    module = _module_class(pl)()
    trainer = _fit(pl, module, cb, tmp_path, max_steps=12, accumulate=3)
    assert trainer.global_step == cb.monitor.steps == 12
    # 8 batches an epoch: steps of 3, 3 and (the epoch's last, partial) 2 micro-batches
    assert len(module.losses) == 32
    sizes = [3, 3, 2] * 4
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    means = [sum(module.losses[a:a + n]) / n for a, n in zip(starts, sizes)]
    # each step's loss is the mean of its micro-batch losses (Lightning divides each by 3)
    twin = LossTracker()
    for v in means:
        twin.update(v)
    assert cb.monitor.loss.steps == 12
    assert cb.monitor.loss.first == pytest.approx(means[0], rel=1e-6)
    assert cb.monitor.loss.ema == pytest.approx(twin.ema, rel=1e-6)


def test_lightning_reports_each_validation_loss_with_its_epoch(tmp_path):
    pl = _lightning()
    cb = initwise.monitor.lightning.InitwiseCallback(every=50, sync_every=4)
    module = _module_class(pl)()
    _fit(pl, module, cb, tmp_path, max_steps=16, val_every=4)  # 8 batches an epoch
    history = cb.monitor.cliff.history  # (epoch, step, val_loss) per validation run
    assert [(e, s) for e, s, _ in history] == [(0, 4), (0, 8), (1, 12), (1, 16)]
    assert [v for _, _, v in history] == pytest.approx(module.val_losses, rel=1e-6)


def test_lightning_checkpoint_round_trips_the_monitor_state(tmp_path):
    pl = _lightning()
    tiny = _module_class(pl)
    cb = initwise.monitor.lightning.InitwiseCallback(every=5, sync_every=5)
    trainer = _fit(pl, tiny(fault="dead"), cb, tmp_path, max_steps=40)
    path = tmp_path / "run.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["callbacks"]["InitwiseCallback"]["monitor"]
    assert saved["steps"] == 40 and saved["findings"] == cb.monitor.state_dict()["findings"]
    before = [f.to_dict() for f in cb.monitor.findings]
    assert any(f["check"] == "units.dying" for f in before)

    resumed = initwise.monitor.lightning.InitwiseCallback(every=5, sync_every=5)
    trainer2 = _fit(pl, tiny(fault="dead"), resumed, tmp_path, max_steps=50, ckpt_path=path)
    assert trainer2.global_step == resumed.monitor.steps == 50
    after = [f.to_dict() for f in resumed.monitor.findings]
    assert after[: len(before)] == before  # the history is kept, not found again
    assert resumed.monitor.loss.steps == 50


def test_lightning_divergence_stops_the_fit_cleanly(tmp_path):
    pl = _lightning()
    tiny = _module_class(pl)
    cb = initwise.monitor.lightning.InitwiseCallback(every=50, sync_every=5)
    with pytest.warns(RuntimeWarning, match="non-finite loss.*training stopped"):
        trainer = _fit(pl, tiny(fault="nan"), cb, tmp_path)
    stop = math.ceil((NAN_AT + 1) / 5) * 5  # the first synchronization after the NaN
    assert trainer.global_step == cb.monitor.steps == stop
    assert trainer.state.status == "finished"
    assert isinstance(cb.diverged, TrainingDiverged)
    assert cb.diverged.last_good_step == stop - 5
    assert [f.check for f in cb.monitor.findings] == ["train.nonfinite"]

    raising = initwise.monitor.lightning.InitwiseCallback(every=50, sync_every=5,
                                                          on_divergence="raise")
    with pytest.raises(TrainingDiverged, match="last good step 20"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trainer = _fit(pl, tiny(fault="nan"), raising, tmp_path)
    assert trainer.global_step == stop  # stopped first, raised at the end of training


def test_lightning_stop_on_a_finding_code(tmp_path):
    pl = _lightning()
    cb = initwise.monitor.lightning.InitwiseCallback(every=5, sync_every=5,
                                                     stop_on=("units.dead",))
    with pytest.warns(RuntimeWarning, match="units.dead at net.2"):
        trainer = _fit(pl, _module_class(pl)(fault="dead"), cb, tmp_path)
    assert cb.stopped_by is not None and cb.stopped_by.check == "units.dead"
    assert trainer.global_step == SHIFT_AT + 5 and cb.diverged is None


# ---- Hugging Face ---------------------------------------------------------------------------


def _hf():
    return pytest.importorskip("transformers", reason="the 'hf' extra is missing")


def _bert(seed: int = 0):
    tf = _hf()
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    torch.manual_seed(seed)
    cfg = tf.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        num_labels=2)
    return tf.BertForSequenceClassification(cfg)


def _hf_data(n: int = 64, length: int = 8) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 64, (n, length), generator=g)
    labels = (ids[:, 0] > 32).long()
    return [{"input_ids": ids[i], "labels": labels[i]} for i in range(n)]


def _train(model, callbacks, tmp_path, *, max_steps: int, resume=None, **kw):
    tf = _hf()
    args = tf.TrainingArguments(
        output_dir=str(tmp_path / "hf"), max_steps=max_steps, per_device_train_batch_size=8,
        learning_rate=1e-3, report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0, **({"save_strategy": "no", "logging_steps": 1} | kw))
    trainer = tf.Trainer(model=model, args=args, train_dataset=_hf_data(),
                         eval_dataset=_hf_data(16), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def _nan_at(step: int):
    tf = _hf()

    class Poison(tf.TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == step:
                with torch.no_grad():
                    model.classifier.weight.fill_(math.nan)

    return Poison()


def test_hf_callback_steps_with_the_trainer_and_resumes_from_a_checkpoint(tmp_path):
    _hf()
    cb = initwise.monitor.hf.InitwiseTrainerCallback(
        every=10, sync_every=5, log=JSONLinesSink(tmp_path / "mon.jsonl"))
    trainer = _train(_bert(), [cb], tmp_path, max_steps=20, save_strategy="steps",
                     save_steps=10, eval_strategy="steps", eval_steps=5)
    mon = cb.monitor
    assert trainer.state.global_step == mon.steps == 20
    # the loss the monitor saw is the model's own: the Trainer logged the same at step 1
    assert mon.loss.first == pytest.approx(trainer.state.log_history[0]["loss"], rel=1e-6)
    assert mon.loss.steps == 20 and not any(f.check.startswith("train.") for f in mon.findings)
    lines = (tmp_path / "mon.jsonl").read_text().splitlines()
    assert [initwise.jsonio.loads(x)["step"] for x in lines] == [5, 10, 15, 20]
    assert "grad_norm" in initwise.jsonio.loads(lines[-1])["scalars"]  # before zero_grad()
    # each evaluation's loss, with the epoch it was measured in (8 steps an epoch)
    evals = [(d["step"], d["eval_loss"]) for d in trainer.state.log_history if "eval_loss" in d]
    assert [(e, s) for e, s, _ in mon.cliff.history] == [(0, 5), (1, 10), (1, 15), (2, 20)]
    assert [s for s, _ in evals] == [5, 10, 15, 20]
    assert [v for _, _, v in mon.cliff.history] == pytest.approx([v for _, v in evals])
    ckpt = tmp_path / "hf" / "checkpoint-10" / initwise.monitor.hf.STATE_FILE
    assert torch.load(ckpt, weights_only=True)["steps"] == 10
    assert cb._hook is None  # the loss hook is removed at the end

    resumed = initwise.monitor.hf.InitwiseTrainerCallback(every=10, sync_every=5)
    _train(_bert(), [resumed], tmp_path, max_steps=20, resume=str(ckpt.parent))
    assert resumed.monitor.steps == 20 and resumed.monitor.loss.steps == 20


def test_hf_divergence_stops_training_through_control(tmp_path):
    _hf()
    cb = initwise.monitor.hf.InitwiseTrainerCallback(every=50, sync_every=4)
    with pytest.warns(RuntimeWarning, match="non-finite loss.*training stopped"):
        trainer = _train(_bert(), [cb, _nan_at(9)], tmp_path, max_steps=30, logging_steps=50)
    assert trainer.state.global_step == cb.monitor.steps == 12  # the sync after step 9
    # the alarm's step is logged (control.should_log) although logging_steps is 50
    assert [d["step"] for d in trainer.state.log_history if "loss" in d] == [12]
    assert cb.diverged is not None and cb.diverged.last_good_step == 8
    assert [f.check for f in cb.monitor.findings] == ["train.nonfinite"]

    raising = initwise.monitor.hf.InitwiseTrainerCallback(every=50, sync_every=4,
                                                          on_divergence="raise")
    with pytest.raises(TrainingDiverged, match="last good step 8"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _train(_bert(), [raising, _nan_at(9)], tmp_path, max_steps=30)
    assert raising.monitor.steps == 12
