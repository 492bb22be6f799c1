"""``initwise demo``: the whole story on real sparse text, in about two minutes on two cores.

1. Build a real high-dimensional sparse data set offline (:func:`initwise.data.builtin.stdlib_text`:
   the standard library's docstrings and comments, labelled by module family, hashed to 2^18
   columns) -- or read the user's ``--data FILE``.
2. Build a deep ReLU MLP (an :class:`initwise.nn.SparseLinear` input layer, ``--depth`` hidden
   ``Linear`` layers) with torch's default init, and run :func:`initwise.doctor` on it.
3. Copy it (same starting weights) and apply :func:`initwise.init` to the copy.
4. Train both, and a third copy of the default-init model watched by :class:`initwise.Monitor`
   with dead-unit repair on, on the same batches in the same order (interleaved step by step),
   same optimizer; the default run is watched by a monitor without repair.
5. Print a before/after table and write an HTML report with the learning curves, the monitor's
   findings and its repairs marked on them.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from typing import Any, TextIO

import torch
from torch import nn

from initwise._loading import LoadError, load_data
from initwise.data.builtin import stdlib_text
from initwise.datainit import init
from initwise.doctor import doctor
from initwise.measure import probe, structural_facts
from initwise.modelio import infer_loss, label_prior_loss
from initwise.monitor import Monitor, Repair
from initwise.nn import SparseLinear
from initwise.report import Page, render_html, render_terminal
from initwise.report.profile import stats_profile
from initwise.report.terminal import grid
from initwise.theory_points import phase_diagram, phase_points

__all__ = ["build_mlp", "dead_fraction", "evaluate", "run_demo"]

RUNS = ("torch default", "initwise.init", "torch default + monitor repair")
#: The training monitor's schedule in the demo (scheduled checks every 50 steps).
MONITOR_EVERY, MONITOR_SYNC = 50, 10


def build_mlp(n_features: int, n_classes: int, *, depth: int = 8, width: int = 128,
              seed: int = 0, sparse_grad: bool = True) -> nn.Sequential:
    """SparseLinear(n_features, width) -> ReLU -> depth x [Linear(width, width) -> ReLU] -> head.

    Built with torch's default init, seeded without touching the caller's global RNG state.
    With ``sparse_grad`` (default) the input layer's gradient holds only the rows of the features
    in the batch, for ``torch.optim.SparseAdam`` (a lazy Adam whose step costs the batch's
    non-zeros; SGD with momentum would densify, so the demo's SGD uses dense gradients).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [SparseLinear(n_features, width, sparse_grad=sparse_grad),
                                   nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)


def evaluate(model: nn.Module, batches: list[Any]) -> dict[str, float]:
    """Mean cross-entropy, accuracy and the fraction of dead ReLU units over ``batches``.

    A unit is dead when it is zero on every example of the batches. The model's train/eval mode
    is restored afterwards.
    """
    relu = {name: f for name, f in structural_facts(model).items()
            if f.act is not None and f.act.name == "relu"}
    was = model.training
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    try:
        with torch.no_grad(), probe(model, relu, post=False) as p:
            for x, y in batches:
                logits = model(x)
                loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
                n += len(y)
    finally:
        model.train(was)
    units = sum(s.units for s in p.stats.values())
    dead = sum(s.dead_units() for s in p.stats.values())
    return {"loss": loss_sum / n, "accuracy": correct / n, "dead_fraction": dead / max(units, 1)}


def dead_fraction(model: nn.Module, batches: list[Any]) -> float:
    """Fraction of ReLU units that are zero on every example of ``batches``."""
    return evaluate(model, batches)["dead_fraction"]


def _load(args: Any, out: TextIO) -> Any:
    if args.data:
        data = load_data(args.data, target=args.target)
    else:
        print(f"building the stdlib_text data set ({args.n_features} hashed features; cached "
              f"after the first run)...", file=out, flush=True)
        data = stdlib_text(args.n_features, seed=args.seed, max_docs=args.max_docs)
    if data.y is None or not data.n_classes or data.n_classes < 2 or data.y.ndim != 1:
        raise LoadError(f"demo: {args.data or data.name!r} has no class labels "
                        f"(the demo trains a classifier); give --target COL naming the label "
                        f"column")
    return data


class _Bar:
    """A progress bar: rich on a terminal, one line per epoch otherwise."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.out, self.total, self.progress, self.task = out, total, None, None
        if getattr(out, "isatty", lambda: False)():
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self.progress = Progress(TextColumn("training both"), BarColumn(),
                                         MofNCompleteColumn(), TimeRemainingColumn(),
                                         TextColumn("{task.description}"), transient=True)
            except ImportError:
                self.progress = None

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.__enter__()
            self.task = self.progress.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def step(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=text)

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)
        else:
            print(text, file=self.out, flush=True)


class _Optimizers:
    """Adam (lr 1e-3): SparseAdam on the sparse-gradient input layer plus Adam on the rest (the
    usual recipe for embedding tables); or SGD (momentum 0.9, lr 0.05) on everything."""

    def __init__(self, name: str, model: nn.Module) -> None:
        if name == "sgd":
            self.opts = [torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)]
            return
        sparse = [p for m in model.modules() if getattr(m, "sparse_grad", False)
                  for p in m.parameters(recurse=False) if p.dim() == 2]
        ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.opts = [torch.optim.Adam(dense, lr=1e-3)]
        if sparse:
            self.opts.append(torch.optim.SparseAdam(sparse, lr=1e-3))

    def zero_grad(self) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=True)

    def step(self) -> None:
        for o in self.opts:
            o.step()


def _train(models: dict[str, nn.Module], train: Any, test_batches: list[Any], args: Any,
           layout: str, out: TextIO, monitors: dict[str, Monitor] | None = None
           ) -> dict[str, Any]:
    steps_per_epoch = train.n_batches(args.batch_size)
    total = steps_per_epoch * args.epochs
    log_every = max(1, total // 60)
    opts = {k: _Optimizers(args.optimizer, m) for k, m in models.items()}
    monitors = monitors or {}
    hist: dict[str, Any] = {k: {"steps": [], "loss": [], "acc_steps": [], "acc": [],
                                "seconds": 0.0} for k in models}
    for k, m in models.items():
        hist[k]["acc_steps"].append(0)
        hist[k]["acc"].append(evaluate(m, test_batches)["accuracy"])
    window = {k: [] for k in models}
    step = 0
    with _Bar(total, out) as bar:
        for epoch in range(args.epochs):
            for x, y in train.batches(args.batch_size, shuffle=True, seed=args.seed + epoch,
                                      layout=layout):
                step += 1
                for k, m in models.items():
                    t = time.perf_counter()
                    opts[k].zero_grad()
                    loss = nn.functional.cross_entropy(m(x), y)
                    loss.backward()
                    opts[k].step()
                    if k in monitors:  # Adam + SparseAdam (or SGD), stepped together
                        monitors[k].step(loss=loss, optimizer=opts[k].opts)
                    hist[k]["seconds"] += time.perf_counter() - t
                    window[k].append(loss.item())
                if step % log_every == 0 or step == total:
                    for k in models:
                        hist[k]["steps"].append(step)
                        hist[k]["loss"].append(sum(window[k]) / len(window[k]))
                        window[k] = []
                bar.step(" | ".join(f"{k} {hist[k]['loss'][-1]:.3f}" for k in models
                                    if hist[k]["loss"]))
            parts = []
            for k, m in models.items():
                acc = evaluate(m, test_batches)["accuracy"]
                hist[k]["acc_steps"].append(step)
                hist[k]["acc"].append(acc)
                parts.append(f"{k}: test accuracy {acc:.1%}")
            bar.line(f"epoch {epoch + 1}/{args.epochs}: " + ", ".join(parts))
    return hist


def run_demo(args: Any, out: TextIO | None = None) -> int:
    """Run the demo (see the module docstring) with the parsed CLI arguments; returns 0."""
    out = out or sys.stdout
    wall, cpu = time.perf_counter(), time.process_time()
    threads = args.threads or min(4, os.cpu_count() or 1)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        data = _load(args, out)
        train, test = data.split(0.2, seed=args.seed)
        layout = "sparse"
        test_batches = list(test.batches(1024, layout=layout))
        model = build_mlp(data.n_features, data.n_classes, depth=args.depth, width=args.width,
                          seed=args.seed, sparse_grad=args.optimizer == "adam")
        desc = (f"SparseLinear({data.n_features}, {args.width}) + {args.depth} x "
                f"Linear({args.width}) + Linear({data.n_classes}), ReLU")
        print(f"data: {args.data or data.name}: {len(train)} train / {len(test)} "
              f"test rows, {data.n_features} features, {data.n_classes} classes, "
              f"{data.nnz / max(len(data), 1):.1f} non-zeros per row\nmodel: {desc}\n"
              f"threads: {threads}", file=out, flush=True)
        first = next(iter(train.batches(args.batch_size, shuffle=True, seed=args.seed,
                                        layout=layout)))
        with torch.no_grad():
            spec = infer_loss(model(first[0]), first[1], "ce")
        prior = label_prior_loss(spec, torch.as_tensor(train.y), data.n_classes)
        result = _story(args, out, model, train, test_batches, first, layout, prior)
        result["_stats"] = stats_profile(data.stats())
    finally:
        torch.set_num_threads(previous_threads)
    result.update(data={"name": str(args.data or data.name),
                        "n_train": len(train), "n_test": len(test),
                        "n_features": data.n_features, "n_classes": data.n_classes},
                  model=desc, label_prior_loss=prior, seed=args.seed, epochs=args.epochs,
                  optimizer=args.optimizer, wall_seconds=time.perf_counter() - wall,
                  cpu_seconds=time.process_time() - cpu, threads=threads)
    _finish(args, out, result)
    return 0


def _story(args: Any, out: TextIO, model: nn.Module, train: Any, test_batches: list[Any],
           first: Any, layout: str, prior: float) -> dict[str, Any]:

    clock = time.perf_counter()
    print("\n== 1. the doctor on torch's default init ==", file=out, flush=True)
    diag_default = doctor(model, first, checks="standard")
    print(render_terminal(diag_default, color=_tty(out)), file=out, flush=True)
    print(f"({time.perf_counter() - clock:.1f} s)", file=out)
    clock = time.perf_counter()
    print("\n== 2. initwise.init on a copy with the same starting weights ==", file=out,
          flush=True)
    fixed = copy.deepcopy(model)
    calib = [b for _, b in zip(range(4), train.batches(args.batch_size, shuffle=True,
                                                       seed=args.seed + 10_000, layout=layout))]
    # iter(): a list of exactly two batches would read as one (inputs, targets) batch.
    report = init(fixed, iter(calib), batches=len(calib),
                  generator=torch.Generator().manual_seed(args.seed))
    if report.loss is not None:
        print(f"initial loss {report.loss.before:.3f} -> {report.loss.after:.3f} "
              f"(label prior {report.loss.target:.3f})", file=out)
    diag_fixed = doctor(fixed, first, checks="standard")
    print(f"doctor after init: {len(diag_fixed.findings)} findings "
          f"({sum(f.severity == 'error' for f in diag_fixed.findings)} errors)", file=out)
    repaired = copy.deepcopy(model)
    models = {RUNS[0]: model, RUNS[1]: fixed, RUNS[2]: repaired}
    at_init = {k: evaluate(m, test_batches) for k, m in models.items()}
    points = {k: phase_points(m, first[0]) for k, m in list(models.items())[:2]}
    print(f"({time.perf_counter() - clock:.1f} s)", file=out)
    print(f"\n== 3. training all three: {args.epochs} epochs, {args.optimizer}, same batches; "
          f"the monitor watches torch's default init, once with dead-unit repair ==", file=out,
          flush=True)
    monitors = {RUNS[0]: Monitor(model, every=MONITOR_EVERY, sync_every=MONITOR_SYNC,
                                 example_inputs=first[0], seed=args.seed),
                RUNS[2]: Monitor(repaired, every=MONITOR_EVERY, sync_every=MONITOR_SYNC,
                                 example_inputs=first[0], seed=args.seed,
                                 repair=Repair(max_fraction=0.5, min_interval=MONITOR_EVERY))}
    try:
        hist = _train(models, train, test_batches, args, layout, out, monitors)
    finally:
        for mon in monitors.values():
            mon.close()
    for k, mon in monitors.items():
        rep = mon.report()
        print(f"monitor, {k}: {len(rep.findings)} finding(s), {len(rep.events)} repair(s) "
              f"of {sum(len(e.units) for e in rep.events)} unit(s)", file=out)
        for f in rep.findings[:6]:
            print(f"  step {f.step}: [{f.severity}] {f.check} at {f.where}: {f.evidence}",
                  file=out)
    runs = {}
    for k, m in models.items():
        end = evaluate(m, test_batches)
        runs[k] = {"initial_loss": at_init[k]["loss"], "dead_fraction": at_init[k]
                   ["dead_fraction"], "dead_after_training": end["dead_fraction"],
                   "test_accuracy": end["accuracy"], "final_train_loss": hist[k]["loss"][-1],
                   "train_seconds": hist[k]["seconds"]}
    events = [{"run": k, "step": f.step, "kind": "finding",
               "label": f"{k}: {f.check} at {f.where} ({f.severity})"}
              for k, mon in monitors.items() for f in mon.findings]
    events += [{"run": RUNS[2], "step": e.step, "kind": "repair",
                "label": f"repair: {len(e.units)} unit(s) of {e.layer} revived"}
               for e in monitors[RUNS[2]].events]
    return {"schema": "initwise.demo/2", "runs": runs, "monitor": events, "_hist": hist,
            "_diag": diag_default, "_diag_fixed": diag_fixed, "_report": report,
            "_points": points}


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    a, *others = (result["runs"][k] for k in RUNS)
    prior = result["label_prior_loss"]
    rows = [
        ["initial test loss", *(f"{r['initial_loss']:.3f}" for r in (a, *others)),
         f"{prior:.3f} (label prior)"],
        ["dead ReLU units at init", *(f"{r['dead_fraction']:.1%}" for r in (a, *others)), "0%"],
        ["dead ReLU units after training",
         *(f"{r['dead_after_training']:.1%}" for r in (a, *others)), "0%"],
        ["final train loss", *(f"{r['final_train_loss']:.3f}" for r in (a, *others)),
         "lower is better"],
        ["test accuracy", *(f"{r['test_accuracy']:.1%}" for r in (a, *others)),
         "higher is better"],
    ]

    def better(b: dict[str, float]) -> list[bool]:
        return [abs(b["initial_loss"] - prior) < abs(a["initial_loss"] - prior),
                b["dead_fraction"] < a["dead_fraction"],
                b["dead_after_training"] < a["dead_after_training"],
                b["final_train_loss"] < a["final_train_loss"],
                b["test_accuracy"] > a["test_accuracy"]]

    verdicts = [better(b) for b in others]
    classes = [["", "", *("good" if v[i] else "bad" for v in verdicts), ""]
               for i in range(len(rows))]
    return {"header": ["", *RUNS, "target"], "rows": rows, "classes": classes,
            "note": f"{result['epochs']} epochs, {result['optimizer']}, seed {result['seed']}, "
                    f"same batches in the same order for all; wall time "
                    f"{result['wall_seconds']:.0f} s (CPU {result['cpu_seconds']:.0f} s, "
                    f"{result['threads']} torch threads)."}


def _finish(args: Any, out: TextIO, result: dict[str, Any]) -> None:

    summary = _summary(result)
    print("\n== 4. before / after ==", file=out)
    print(grid(summary["header"], summary["rows"]), file=out)
    print(summary["note"], file=out)
    hist = result["_hist"]
    curves = {"x_label": "training step", "prior": result["label_prior_loss"],
              "loss": {k: (hist[k]["steps"], hist[k]["loss"]) for k in RUNS},
              "accuracy": {k: (hist[k]["acc_steps"], hist[k]["acc"]) for k in RUNS},
              "events": result["monitor"]}
    page = Page(diagnosis=result["_diag"], after=result["_diag_fixed"], labels=RUNS[:2],
                title="initwise demo: torch default vs initwise.init vs the monitor's repair",
                init_report=result["_report"], curves=curves, summary=summary,
                phase=phase_diagram(result["_points"][RUNS[1]], result["_points"][RUNS[0]]),
                data_stats=result["_stats"],
                intro=f"Data: {result['data']['name']} ({result['data']['n_train']} train rows, "
                      f"{result['data']['n_features']} features, {result['data']['n_classes']} "
                      f"classes). Model: {result['model']}. The findings and layer plots are "
                      f"measured at initialization, before training.")
    render_html(page, args.out)
    print(f"wrote {args.out}", file=out)
    if args.json:
        public = {k: v for k, v in result.items() if not k.startswith("_")}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(_finite(public), fh, indent=2)
        print(f"wrote {args.json}", file=out)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _tty(out: TextIO) -> bool:
    return bool(getattr(out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
