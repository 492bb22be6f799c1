"""Real models (issue 15): does ``initwise.init`` keep or improve the authors' own init?

Models built from small configs (nothing downloaded): Hugging Face BERT, DistilBERT, RoBERTa
(sequence classification), GPT-2 and a Llama-style model (RMSNorm, SwiGLU, rotary; causal LM),
T5 (seq2seq); timm resnet18, vit_tiny_patch16_224 (32x32 inputs), convnext_atto; torchvision
resnet18 and mobilenet_v3_small; ``nn.TransformerEncoder`` post-LN and pre-LN classifiers on
tokens; an LSTM LM. Tasks (``_real/tasks.py``): classification from tokens, a Markov-chain LM
(and its seq2seq split), scikit-learn's digits upsampled to 32x32.

For each model and seed, three arms from the same built model: (a) ``own``, the library's own
init; (b) ``init``, ``initwise.init(model, 4 calibration batches, seed=seed)`` on top of it;
(c) ``auto``, ``initwise.apply(model, policy="auto", seed=seed)`` without data. Measured: the
held-out loss after a fixed budget (AdamW lr 1e-3 wd 0.01 and SGD lr 0.05 momentum 0.9,
constant, no warm-up, gradient norm clipped at 1, set before any run; the same batches for
every arm and optimizer of a seed), the held-out initial loss vs the label prior's loss (prior
from the TRAIN labels; every held-out loss in eval mode, batch-norm statistics re-estimated on
512 train rows first), init wall time in seconds and in mean training steps, the doctor's
findings right before training, and the issue's four verdicts (``_real/report.py``).
Same seed, same numbers (losses; times vary with the machine's load).

Usage::

    .venv/bin/python benchmarks/real_models.py --quick            # smoke run, < 3 min
    nice .venv/bin/python benchmarks/real_models.py --seeds 3 --markdown  # the full table
    .venv/bin/python benchmarks/real_models.py --models bert,gpt2 --seeds 1 --steps 100

Install: transformers comes with ``.[dev]``; timm and torchvision with ``.[bench-real]``, in
a venv of their own (``python -m venv .venv-real && .venv-real/bin/pip install -r
requirements-dev.txt && .venv-real/bin/pip install -e '.[dev,bench-real]'``): PyPI's
torchvision 0.28.0 for x86_64 is a CUDA build whose compiled ops do not load beside the CPU
torch 2.13.0 and whose import then fails and breaks ``transformers``' model imports in that
venv; this script imports it through ``_real/vision_import.py`` (model code only). Without
them, their models are skipped with that reason.

Baseline (initwise as on main at 1a5e478, before the issue-15 fixes), on 2 shared, loaded
cores (other sessions' test suites ran meanwhile; 1 thread, since 2 threads were 5x slower per
step under that load): 14 models x 3 seeds x 3 arms x 2 optimizers x 100 steps took 31.2 min
at a load average of 4.0 -> 2.5 (the two resnet18s 6.4 and 8.0 min of it, the six Hugging Face
models 5.0 min, the three torch models 2.1 min)::

    nice -n 10 .venv-real/bin/python benchmarks/real_models.py --seeds 3 --threads 1 \\
        --markdown --json benchmarks/out/real_models_baseline.json

Its result file is kept in git; ``--render benchmarks/out/real_models_baseline.json
--markdown`` prints its tables again without training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _real.models import SPECS  # noqa: E402
from _real.report import loss_table, render, summarize_model, verdict_table  # noqa: E402
from _real.run import ARMS, CALIB_BATCHES, CLIP, OPTIMIZERS, run_seed, warm_up  # noqa: E402
from _real.tasks import TASKS, Task  # noqa: E402
from _real.vision_import import STATUS, import_torchvision  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICK_MODELS = ("bert", "gpt2", "te_postln", "lstm_lm")
QUICK_STEPS = 20


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None,
                   help=f"comma list of {', '.join(SPECS)} or 'all' (default all; quick: "
                        f"{', '.join(QUICK_MODELS)})")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds, 0..N-1 (default 3; quick 1)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps per run (default 100; quick {QUICK_STEPS})")
    p.add_argument("--opt", default="adamw,sgd", help=f"comma list of {', '.join(OPTIMIZERS)}")
    p.add_argument("--quick", action="store_true", help="1 seed, few steps, a few models")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="result file (default benchmarks/out/real_models[_quick].json; '' = none)")
    p.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    p.add_argument("--render", default=None, metavar="PATH",
                   help="print the tables of a saved result file and exit (no training)")
    args = p.parse_args(argv)
    names = args.models or ("all" if not args.quick else ",".join(QUICK_MODELS))
    args.model_list = list(SPECS) if names == "all" else names.split(",")
    bad = [m for m in args.model_list if m not in SPECS]
    if bad:
        p.error(f"--models: unknown {bad}; valid values are {list(SPECS)} or 'all'")
    args.opt_list = args.opt.split(",")
    if any(o not in OPTIMIZERS for o in args.opt_list):
        p.error(f"--opt: got {args.opt!r}; valid values are {list(OPTIMIZERS)}")
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else 100
    if args.seeds < 1 or args.steps < 1 or args.threads < 1:
        p.error("--seeds, --steps and --threads must be >= 1")
    if args.json is None:
        args.json = str(HERE / "out" / ("real_models_quick.json" if args.quick
                                        else "real_models.json"))
    return args


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git() -> dict[str, Any]:
    """Which initwise ran: its file, and the commit of the checkout it lies in."""
    import initwise

    pkg = Path(initwise.__file__).resolve().parent

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=pkg, capture_output=True, text=True).stdout
    return {"initwise_file": str(pkg), "commit": git("rev-parse", "HEAD").strip(),
            "dirty_initwise": bool(git("status", "--porcelain", "--", ".").strip())}


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    import_torchvision()
    return {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "threads": args.threads, "load_avg_start": os.getloadavg(),
        "versions": {p: _version(p) for p in
                     ("torch", "transformers", "timm", "torchvision", "initwise", "numpy")},
        "torchvision_status": STATUS.get("torchvision"), "git": _git(),
        "settings": {"steps": args.steps, "seeds": list(range(args.seeds)),
                     "optimizers": {o: OPTIMIZERS[o] for o in args.opt_list}, "clip": CLIP,
                     "calibration_batches": CALIB_BATCHES, "arms": list(ARMS)},
    }


def run(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Run every requested model and seed; returns the result document."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    doc: dict[str, Any] = {"meta": _meta(args), "tasks": {}, "models": {}, "summary": []}
    tasks: dict[str, Task] = {}
    warm_up()
    for name in args.model_list:
        spec = SPECS[name]
        entry = {"name": name, "library": spec.library, "task": spec.task, "kind": spec.kind,
                 "config": spec.config, "batch_size": spec.batch_size, "seeds": []}
        doc["models"][name] = entry
        reason = spec.available()
        if reason:
            entry["skipped"] = reason
            log(f"{name}: skipped ({reason})")
            continue
        if spec.task not in tasks:
            tasks[spec.task] = task = TASKS[spec.task]()
            doc["tasks"][spec.task] = {"prior_loss": task.prior_loss,
                                       "achievable": task.achievable, **task.info}
        log(f"{name} ({spec.library}, task {spec.task}, prior {tasks[spec.task].prior_loss:.3f})")
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            entry["seeds"].append(run_seed(spec, tasks[spec.task], seed, args.steps,
                                           args.opt_list, log))
        entry["wall_s"] = time.perf_counter() - t0
        log(f"  {name}: {entry['wall_s']:.1f} s")
        doc["summary"].append(summarize_model(entry, tasks[spec.task].prior_loss))
    doc["meta"]["wall_s"] = time.perf_counter() - start
    doc["meta"]["load_avg_end"] = os.getloadavg()
    return doc


def tables(doc: dict[str, Any], markdown: bool) -> str:
    """The loss table and the verdict table, plain or markdown."""
    rows = doc["summary"]
    opts = list(doc["meta"]["settings"]["optimizers"])
    steps = doc["meta"]["settings"]["steps"]
    n = len(doc["meta"]["settings"]["seeds"])
    out = [f"Held-out loss after {steps} steps (mean ± std over {n} seed(s)); L0 = held-out "
           f"initial loss; prior = label prior's loss (train prior, held-out labels)", "",
           render(*loss_table(rows, opts), markdown), "",
           "Acceptance (issue 15) for initwise.init: no worse than own (within one pooled std, "
           "every optimizer), L0 within 5 % of the prior, no new doctor error, init <= 20 steps",
           "", render(*verdict_table(rows), markdown)]
    skipped = [f"{m}: {e['skipped']}" for m, e in doc["models"].items() if e.get("skipped")]
    if skipped:
        out += ["", "Skipped: " + "; ".join(skipped)]
    return "\n".join(out)


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.render:
        doc = json.loads(Path(args.render).read_text())
        print(tables(doc, markdown=args.markdown))
        return 0
    doc = run(args, log=lambda s: print(s, flush=True))
    print()
    print(tables(doc, markdown=False))
    if args.markdown:
        print()
        print(tables(doc, markdown=True))
    wall = doc["meta"]["wall_s"]
    print(f"\nTotal wall time: {wall:.1f} s ({wall / 60:.1f} min), {args.threads} thread(s), "
          f"load average {doc['meta']['load_avg_start'][0]:.1f} -> "
          f"{doc['meta']['load_avg_end'][0]:.1f}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_json_safe(doc), indent=1))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
