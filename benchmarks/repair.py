"""Dead-unit repair: initwise's repair against ReDo, Continual Backprop, Shrink & Perturb, a
random-unit repair and no repair (issue 13). Prints tables; not a timed test.

Tasks (fixed seeds; each seed fixes the model draw, the data order and every re-draw):

* ``digits`` -- continual learning where plasticity is lost: a sequence of permuted-pixel tasks
  on scikit-learn's bundled digits (64 pixels / 16, a new fixed pixel permutation per task,
  same labels), MLP 64 -> 3x[Linear(128), ReLU] -> 10, Adam at a large learning rate; metric:
  test accuracy on the last task at its end.
* ``text`` -- a deep ReLU MLP on sparse bag-of-words (``initwise.data.builtin.stdlib_text`` hashed
  to 2^13 columns, 58 classes): SparseLinear(2^13, 64) -> 5x[ReLU, Linear(64)] -> 58, Adam at a
  learning rate where units die (1e-2); metric: test accuracy.
* ``ctr`` -- a CTR-like model on ``initwise.data.builtin.ctr_synthetic`` (16 one-hot fields
  hashed to 2^13 columns): SparseLinear(2^13, 32) -> 3x[ReLU, Linear(32)] -> 2, Adam at a large
  learning rate; metric: test ROC AUC x 100.

Methods:

* ``none``; ``initwise``: :func:`initwise.monitor.repair_units` every ``C`` steps on the
  pre-activations of the ``K`` training forwards before it (a probe on the user's forward),
  ``Repair(tau=0, max_fraction=1)`` (every dead unit: their repair keeps the function), Adam
  first moments of the repaired rows/columns zeroed, second moments set to the tensor's mean
  (``Repair.second_moment="mean"``, the default);
* ``random``: the same schedule and machinery, the same number of units per layer as initwise's
  rule selects on that model at that step, but chosen uniformly at random;
* ``redo``: ReDo's recipe, tau 0.1 every 1,000 steps (``peers/redo.py``);
* ``cbp``: Continual Backprop, replacement rate 1e-4, maturity 100, decay 0.99 (``peers/cbp.py``);
* ``snp``: Shrink & Perturb every 1,000 steps, ``w <- 0.8 w + 0.01 N(0, 1)`` on weight matrices
  (``peers/shrink_perturb.py``).

The dead fraction (hidden ReLUs never positive on 1,024 fixed training rows) is measured every
``C`` steps, after any repair at that step ("after each repair cycle").

Usage::

    nice python benchmarks/repair.py            # 5 seeds, full budgets (~10-15 min, 2 cores)
    nice python benchmarks/repair.py --quick    # 3 seeds, short budgets (~2 min)
    nice python benchmarks/repair.py --lr 1e-3 --methods none initwise   # healthy runs
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import ContinualBackprop, ReDo, ShrinkPerturb, hidden_layers  # noqa: E402

from initwise.measure import layer_facts, probe  # noqa: E402
from initwise.monitor import Repair, dormant_units, repair_units  # noqa: E402
from initwise.nn import SparseLinear  # noqa: E402

METHODS = ("none", "initwise", "random", "redo", "cbp", "snp")
TASKS = ("digits", "text", "ctr")
CYCLE = 250  # initwise / random repair interval and the dead-fraction checkpoint
WINDOW = 4  # training forwards probed before each initwise repair


@dataclass
class Setup:
    """One run's model, optimizer, stream and evaluation."""

    model: nn.Sequential
    opt: torch.optim.Optimizer
    stream: Iterator[tuple[Any, torch.Tensor]]
    steps: int
    metric: Callable[[], float]
    probe_x: Callable[[], Any]
    dense_input: bool


def _mlp(first: nn.Module, width: int, depth: int, out: int) -> nn.Sequential:
    mods: list[nn.Module] = [first]
    for _ in range(depth - 1):
        mods += [nn.ReLU(), nn.Linear(width, width)]
    mods += [nn.ReLU(), nn.Linear(width, out)]
    return nn.Sequential(*mods)


def _accuracy(model: nn.Module, x: Any, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).double().mean())


# ---- tasks ---------------------------------------------------------------------------------
def digits(seed: int, quick: bool, lr: float = 1e-2) -> Setup:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = torch.tensor(order[:1437]), torch.tensor(order[1437:])
    n_tasks, per_task = (4, CYCLE) if quick else (10, CYCLE)
    rng = np.random.default_rng(1000 + seed)
    perms = [torch.tensor(rng.permutation(64)) for _ in range(n_tasks)]
    torch.manual_seed(seed)
    model = _mlp(nn.Linear(64, 128), 128, 3, 10)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    state = {"task": 0}

    def stream() -> Iterator[tuple[Any, torch.Tensor]]:
        for t, perm in enumerate(perms):
            state["task"] = t
            for _ in range(per_task):
                idx = tr[torch.randint(0, len(tr), (32,), generator=g)]
                yield X[idx][:, perm], y[idx]

    def metric() -> float:
        return _accuracy(model, X[te][:, perms[-1]], y[te])

    def probe_x() -> Any:
        return X[tr][:, perms[state["task"]]]

    return Setup(model, opt, stream(), n_tasks * per_task, metric, probe_x, True)


def _sparse_setup(ds: Any, seed: int, steps: int, batch: int, model: nn.Sequential,
                  opt: torch.optim.Optimizer, metric_fn: Callable[..., float]) -> Setup:
    train, test = ds.split(0.2, seed=0)
    xt, yt = next(test.batches(test.n_rows, layout="sparse"))
    xp, _ = next(train.batches(1024, layout="sparse"))

    def stream() -> Iterator[tuple[Any, torch.Tensor]]:
        epoch = 0
        while True:
            yield from train.batches(batch, shuffle=True, seed=seed * 1000 + epoch,
                                     layout="sparse", drop_last=True)
            epoch += 1

    def metric() -> float:
        return metric_fn(model, xt, yt)

    it = stream()
    return Setup(model, opt, (next(it) for _ in range(steps)), steps, metric, lambda: xp, False)


_TEXT: dict[str, Any] = {}


def text(seed: int, quick: bool, lr: float = 1e-2) -> Setup:
    from initwise.data.builtin import stdlib_text

    if "ds" not in _TEXT:
        _TEXT["ds"] = stdlib_text(n_features=2**13)
    ds = _TEXT["ds"]
    torch.manual_seed(seed)
    model = _mlp(SparseLinear(2**13, 64), 64, 5, ds.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return _sparse_setup(ds, seed, 500 if quick else 1000, 128, model, opt, _accuracy)


def _auc(model: nn.Module, x: Any, y: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    with torch.no_grad():
        s = torch.softmax(model(x), 1)[:, 1].numpy()
    return 100.0 * float(roc_auc_score(y.numpy(), s))


_CTR: dict[str, Any] = {}


def ctr(seed: int, quick: bool, lr: float = 1e-2) -> Setup:
    from initwise.data.builtin import ctr_synthetic

    if "ds" not in _CTR:
        _CTR["ds"] = ctr_synthetic(60_000, n_fields=16, n_features=2**13, seed=0)
    torch.manual_seed(seed)
    model = _mlp(SparseLinear(2**13, 32), 32, 3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return _sparse_setup(_CTR["ds"], seed, 500 if quick else 1000, 128, model, opt, _auc)


BUILD = {"digits": digits, "text": text, "ctr": ctr}


# ---- methods -------------------------------------------------------------------------------
class InitwiseRepair:
    """initwise's repair (or the random-unit control) every ``CYCLE`` steps."""

    def __init__(self, setup: Setup, seed: int, random_units: bool) -> None:
        self.setup, self.random_units = setup, random_units
        self.facts, _ = layer_facts(setup.model, setup.probe_x())
        self.hidden = [n for n, f in self.facts.items() if f.act is not None]
        self.policy = Repair(tau=0.0, max_fraction=1.0, min_interval=CYCLE, max_repairs=None)
        self.gen = torch.Generator().manual_seed(10_000 + seed)
        self.pick = torch.Generator().manual_seed(20_000 + seed)
        self.history: list[Any] = []
        self.stack: contextlib.ExitStack | None = None
        self.probe: Any = None
        self.units = 0

    def before_forward(self, step: int) -> None:
        if step % CYCLE == CYCLE - WINDOW and self.stack is None:
            self.stack = contextlib.ExitStack()
            cols = {self.hidden[0]: True} if self.setup.dense_input else None
            self.probe = self.stack.enter_context(probe(
                self.setup.model, {n: self.facts[n] for n in self.hidden}, input_stats=cols,
                post=False))

    def after_step(self, step: int, x: Any, opt: torch.optim.Optimizer) -> int:
        if step % CYCLE != CYCLE - 1 or self.stack is None:
            return 0
        self.stack.close()
        self.stack, p = None, self.probe
        chosen = None
        if self.random_units:
            chosen = {}
            for n in self.hidden:
                st = p.stats[n]
                k = min(len(dormant_units(st, self.facts[n].act)), self.policy.cap(st.units))
                chosen[n] = torch.randperm(st.units, generator=self.pick)[:k].tolist()
        events = repair_units(self.setup.model, self.facts, p.stats, optimizer=opt,
                              policy=self.policy, generator=self.gen, step=step,
                              history=self.history, inputs=p.columns, units=chosen)
        self.history += events
        n = sum(len(e.units) for e in events)
        self.units += n
        return n


class _Peer:
    def __init__(self, remedy: Any) -> None:
        self.remedy = remedy

    def before_forward(self, step: int) -> None:
        pass

    def after_step(self, step: int, x: Any, opt: torch.optim.Optimizer) -> int:
        return self.remedy.after_step(step, x, opt)


class _NoRepair(_Peer):
    def __init__(self) -> None:
        super().__init__(None)

    def after_step(self, step: int, x: Any, opt: torch.optim.Optimizer) -> int:
        return 0


def _method(name: str, setup: Setup, seed: int) -> Any:
    m = setup.model
    if name == "none":
        return _NoRepair()
    if name in ("initwise", "random"):
        return InitwiseRepair(setup, seed, random_units=name == "random")
    if name == "redo":
        return _Peer(ReDo(m, every=1000, tau=0.1, seed=seed))
    if name == "cbp":
        return _Peer(ContinualBackprop(m, rate=1e-4, maturity=100, decay=0.99, seed=seed))
    if name == "snp":
        return _Peer(ShrinkPerturb(m, every=1000, shrink=0.8, sigma=0.01, seed=seed))
    raise ValueError(f"method {name!r}; valid values are {METHODS}.")


def dead_fraction(model: nn.Sequential, x: Any) -> float:
    """Fraction of hidden ReLUs never positive on ``x``."""
    hidden = hidden_layers(model)
    acts: list[torch.Tensor] = []
    hooks = [h.act.register_forward_hook(lambda mod, i, o: acts.append(o)) for h in hidden]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hk in hooks:
            hk.remove()
    dead = sum(int((a.reshape(-1, a.shape[-1]).amax(0) <= 0).sum()) for a in acts)
    return dead / sum(a.shape[-1] for a in acts)


def run(task: str, method: str, seed: int, quick: bool, lr: float = 1e-2) -> dict[str, Any]:
    """One training run; returns the metric, dead fractions at each checkpoint, units reset."""
    setup = BUILD[task](seed, quick, lr)
    model, opt = setup.model, setup.opt
    remedy = _method(method, setup, seed)
    lossf = nn.CrossEntropyLoss()
    deads, touched, diverged = [], 0, False
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(setup.stream):
        remedy.before_forward(step)
        loss = lossf(model(x), y)
        if not torch.isfinite(loss):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        touched += remedy.after_step(step, x, opt)
        if step % CYCLE == CYCLE - 1:
            deads.append(dead_fraction(model, setup.probe_x()))
    if diverged:
        deads += [float("nan")] * (setup.steps // CYCLE - len(deads))
    elif setup.steps % CYCLE:
        deads.append(dead_fraction(model, setup.probe_x()))
    metric = float("nan") if diverged else setup.metric()
    return {"task": task, "method": method, "seed": seed, "metric": metric, "dead": deads,
            "touched": touched, "diverged": diverged, "seconds": time.perf_counter() - t0}


# ---- report --------------------------------------------------------------------------------
def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of the 95 % t-interval."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def table(rows: list[dict[str, Any]], task: str) -> str:
    metric = "accuracy %" if task != "ctr" else "AUC x100"
    lines = [f"| method | {metric} (mean +- 95 % CI) | dead % after each {CYCLE}-step cycle "
             "(mean over seeds) | dead % at end | units re-drawn | diverged |",
             "|---|---|---|---|---|---|"]
    for m in METHODS:
        rs = [r for r in rows if r["task"] == task and r["method"] == m]
        if not rs:
            continue
        mean, half = ci95([r["metric"] for r in rs if not r["diverged"]] or [float("nan")])
        deads = np.nanmean([r["dead"] for r in rs], axis=0) * 100
        trail = " ".join(f"{d:.0f}" for d in deads)
        touched = np.mean([r["touched"] for r in rs])
        units = f"{touched:.0f}" if m not in ("snp", "none") else ("all (shrink)" if m == "snp"
                                                                   else "0")
        lines.append(f"| {m} | {mean:.2f} +- {half:.2f} | {trail} | {deads[-1]:.1f} | "
                     f"{units} | {sum(r['diverged'] for r in rs)}/{len(rs)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, short budgets (~2 min)")
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="seeds (default 0-4)")
    ap.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--lr", type=float, default=1e-2,
                    help="Adam learning rate of every task (default 1e-2, where units die; "
                         "1e-3: the healthy runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = args.seeds if args.seeds is not None else list(range(3 if args.quick else 5))
    t0 = time.perf_counter()
    rows = []
    for task in args.tasks:
        for seed in seeds:
            for m in args.methods:
                r = run(task, m, seed, args.quick, args.lr)
                rows.append(r)
                print(f"# {task} seed {seed} {m}: {r['metric']:.2f} dead "
                      f"{100 * r['dead'][-1]:.1f} % units {r['touched']} "
                      f"({r['seconds']:.1f} s)", file=sys.stderr, flush=True)
        print(f"\n### {task} ({'quick' if args.quick else 'full'}; lr {args.lr:g}; "
              f"seeds {seeds})\n")
        print(table(rows, task), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; torch {torch.__version__}, "
          f"1 thread", flush=True)


if __name__ == "__main__":
    main()
