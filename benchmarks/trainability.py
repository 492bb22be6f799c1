"""Trainability benchmark (issue 4): do networks learn on hard data, per initialization?

Families: (1) sparse bag-of-words text (``stdlib_text``, 2^18 hashed columns), (2) CTR-like
hashed categorical data (``ctr_synthetic``, 24 fields, 2^20 columns), (3) raw, badly scaled
tabular data bundled with scikit-learn (breast_cancer, diabetes regression), (4) deep plain MLPs
(depth 12/24/48 x relu/tanh/gelu/selu) on breast_cancer, (5) residual MLPs with 32 blocks and no
normalization. Every config is trained with SGD+momentum and Adam from each init, for each seed,
with a fixed budget; runs are interleaved (seed -> optimizer -> init) so that machine load hits
all methods alike.

Usage::

    nice -n 10 .venv/bin/python benchmarks/trainability.py               # everything, seeds 0 1 2
    .venv/bin/python benchmarks/trainability.py --family tabular --quick  # smoke test, < 1 min
    nice -n 10 .venv/bin/python benchmarks/trainability.py --family ctr --ctr-rows 3000000 \
        --out benchmarks/out/ctr3m --results-md ''  # the CTR family at a realistic scale

Writes ``benchmarks/out/trainability.json`` and the "Trainability" section of
``benchmarks/RESULTS.md`` and prints the markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _trainability.configs import FAMILIES, Config, configs, load_data  # noqa: E402
from _trainability.inits import INITS, apply_init, initwise_available  # noqa: E402
from _trainability.report import acceptance, markdown, summarize, update_results_md  # noqa: E402
from _trainability.train import data_path_memory, initial_loss, metric, predict, train  # noqa: E402

HERE = Path(__file__).resolve().parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default="all", help=f"comma list of {FAMILIES} or 'all'")
    p.add_argument("--config", default="", help="only configs whose name contains this text")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (quick: 0)")
    p.add_argument("--inits", default=",".join(INITS), help=f"comma list of {INITS}")
    p.add_argument("--optimizers", default="sgd,adam", help="comma list of sgd, adam")
    p.add_argument("--quick", action="store_true", help="tiny data and budget (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--out", default=str(HERE / "out"), help="directory of trainability.json")
    p.add_argument(
        "--results-md",
        default=str(HERE / "RESULTS.md"),
        help="markdown file whose Trainability section is updated ('' = none)",
    )
    p.add_argument("--ctr-rows", type=int, default=None, metavar="N",
                   help="rows of the CTR family (default 100,000; quick 5,000): the same "
                        "generator at another scale (results are kept apart from other scales)")
    p.add_argument("--describe", action="store_true", help="print the data sets and exit")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start a new JSON instead of merging into the existing one (configs re-run here "
        "replace their old runs; the others are kept)",
    )
    p.add_argument("--merge-json", nargs="+", default=None, metavar="PATH",
                   help="fold these result files into --out's JSON and re-render (no training)")
    args = p.parse_args(argv)
    fams = list(FAMILIES) if args.family == "all" else args.family.split(",")
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        p.error(f"--family: unknown {bad}; valid values are {FAMILIES} or 'all'")
    args.families = fams
    args.init_list = args.inits.split(",")
    if any(i not in INITS for i in args.init_list):
        p.error(f"--inits: valid values are {INITS}")
    if args.ctr_rows is not None and args.ctr_rows < 10_000:
        p.error(f"--ctr-rows: got {args.ctr_rows}; use at least 10000 (4 calibration batches "
                "of 512 and a 20 % test split)")
    args.opt_list = args.optimizers.split(",")
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    return args


def _describe(train_ds: Any, test_ds: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": train_ds.name.removesuffix("[train]"),
        "train_rows": len(train_ds),
        "test_rows": len(test_ds),
        "n_features": train_ds.n_features,
        "nnz_per_row": round(train_ds.nnz / max(len(train_ds), 1), 2),
        "sparse": bool(train_ds.is_sparse),
    }
    y = train_ds.y
    if train_ds.task == "classification":
        p = np.bincount(y) / len(y)
        p = p[p > 0]
        info.update(classes=int(train_ds.n_classes), prior_entropy=float(-(p * np.log(p)).sum()))
    else:
        info.update(classes=None, target_var=float(np.var(y.astype(np.float64))))
    if not train_ds.is_sparse:
        sd = train_ds.X.std(0)
        info["feature_std_range"] = [float(sd[sd > 0].min()), float(sd.max())]
    return info


def _prior_loss(train_ds: Any, task: str) -> float:
    if task == "regression":
        return float(np.var(train_ds.y.astype(np.float64)))
    p = np.bincount(train_ds.y) / len(train_ds.y)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _chance(test_ds: Any, metric_name: str) -> float:
    """The score of a constant predictor (what a diverged run is credited with)."""
    if metric_name == "acc":
        return 100.0 * float(np.bincount(test_ds.y).max() / len(test_ds.y))
    return 50.0 if metric_name == "auc" else 0.0


def _probe(train_ds: Any, layout: str) -> tuple[Any, torch.Tensor]:
    return next(
        iter(train_ds.subset(slice(0, min(len(train_ds), 2048))).batches(2048, layout=layout))
    )


def _one_run(cfg: Config, data: dict, init: str, opt: str, seed: int, avail: tuple) -> dict:
    train_ds, test_ds = data["train"], data["test"]
    rec: dict[str, Any] = {
        "config": cfg.name,
        "family": cfg.family,
        "init": init,
        "optimizer": opt,
        "seed": seed,
    }
    if init == "initwise" and not avail[0]:
        return {**rec, "status": "pending", "note": avail[1]}
    torch.manual_seed(seed)  # the benchmark's own process: every init starts from the same draw
    n_out = 1 if cfg.task == "regression" else int(train_ds.n_classes)
    model = cfg.build(train_ds.n_features, n_out)
    calib = list(
        train_ds.batches(cfg.budget.batch_size, shuffle=True, seed=seed * 1000, layout=cfg.layout)
    )[:4]
    try:
        init_s, note = apply_init(init, model, cfg.act, calib, seed)
    except Exception as exc:  # a failing method is a result, not a crash of the benchmark
        return {**rec, "status": "init_error", "note": f"{type(exc).__name__}: {exc}"[:300]}
    loss0 = initial_loss(model, data["probe"], cfg.task)
    tr = train(model, train_ds, cfg.layout, cfg.task, opt, cfg.budget, seed)
    model.eval()
    score = metric(cfg.task, cfg.metric, predict(model, test_ds, cfg.layout), test_ds.y)
    return {
        **rec,
        "status": "ok",
        "note": note,
        "init_s": init_s,
        "initial_loss": loss0,
        "test_metric": score,
        **tr,
    }


def run(args: argparse.Namespace, checkpoint: Any = None) -> dict[str, Any]:
    """Run every (config, seed, optimizer, init); ``checkpoint(res)`` after each config."""
    torch.set_num_threads(args.threads)
    cfgs = [c for c in configs(args.families, args.quick) if args.config in c.name]
    avail = initwise_available()
    datasets: dict[str, dict] = {}
    runs: list[dict] = []
    t0 = time.perf_counter()
    for cfg in cfgs:
        if cfg.data not in datasets:
            start = time.perf_counter()
            train_ds, test_ds = load_data(cfg.data, args.quick, ctr_rows=args.ctr_rows)
            info = _describe(train_ds, test_ds)
            info["build_s"] = round(time.perf_counter() - start, 2)
            if train_ds.is_sparse:
                info["data_path"] = data_path_memory(train_ds, cfg.budget.batch_size, cfg.layout)
            datasets[cfg.data] = {
                "train": train_ds,
                "test": test_ds,
                "info": info,
                "probe": _probe(train_ds, cfg.layout),
                "prior": _prior_loss(train_ds, cfg.task),
            }
            print(f"[data] {json.dumps(info)}", flush=True)
        if args.describe:
            continue
        for seed in args.seeds:
            for opt in args.opt_list:
                for init in args.init_list:
                    r = _one_run(cfg, datasets[cfg.data], init, opt, seed, avail)
                    r["prior_loss"] = datasets[cfg.data]["prior"]
                    runs.append(r)
                    print(
                        f"[run] {cfg.name} {opt} {init} seed={seed} "
                        f"metric={r.get('test_metric', float('nan')):.2f} "
                        f"loss0={r.get('initial_loss', float('nan')):.4g} "
                        f"{r['status']} {r.get('note', '')[:80]}",
                        flush=True,
                    )
        if checkpoint is not None:
            done = cfgs[: cfgs.index(cfg) + 1]
            checkpoint({"cfgs": done, "datasets": datasets, "runs": runs,
                        "wall_s": time.perf_counter() - t0, "avail": avail})
    wall = time.perf_counter() - t0
    return {"cfgs": cfgs, "datasets": datasets, "runs": runs, "wall_s": wall, "avail": avail}


def _fold(old: dict, new: dict) -> dict:
    """Fold a newer result document into an older one: a (config, optimizer, init, seed) run in
    ``new`` replaces the old one; every other old run is kept."""

    def key(r: dict) -> tuple:
        return r["config"], r["optimizer"], r["init"], r["seed"]

    fresh = {key(r) for r in new["runs"]}
    runs = [r for r in old["runs"] if key(r) not in fresh] + new["runs"]
    order = list(old["configs"]) + [k for k in new["configs"] if k not in old["configs"]]
    configs = {k: new["configs"].get(k) or old["configs"][k] for k in order}
    commands = {i["command"] for i in new["meta"]["invocations"]}
    invocations = [
        i for i in old["meta"].get("invocations", []) if i["command"] not in commands
    ] + new["meta"]["invocations"]
    meta = {
        **new["meta"],
        "invocations": invocations,
        "wall_s": round(sum(i["wall_s"] for i in invocations), 1),
        "seeds": sorted({s for i in invocations for s in i["seeds"]}),
    }
    return {"meta": meta, "data": {**old["data"], **new["data"]}, "configs": configs,
            "runs": runs}


def _invocation(meta: dict, cfgs: dict) -> dict:
    keys = ("command", "date_utc", "wall_s", "threads", "seeds", "loadavg_end", "initwise")
    return {**{k: meta[k] for k in keys}, "configs": list(cfgs)}


def _config_info(res: dict) -> dict[str, dict]:
    info = {}
    for c in res["cfgs"]:
        info[c.name] = {
            "family": c.family, "data": c.data, "metric": c.metric, "act": c.act,
            "depth": c.depth, "model": c.model_desc, "budget": vars(c.budget),
            "chance": _chance(res["datasets"][c.data]["test"], c.metric),
        }
    return info


def _document(args: argparse.Namespace, res: dict, argv: list[str] | None) -> dict:
    cfg_info = _config_info(res)
    command = "nice -n 10 .venv/bin/python benchmarks/trainability.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    meta = {
        "command": command.strip(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "wall_s": round(res["wall_s"], 1),
        "threads": args.threads,
        "seeds": args.seeds,
        "quick": args.quick,
        "ctr_rows": args.ctr_rows,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "loadavg_end": os.getloadavg(),
        "initwise": "available" if res["avail"][0] else res["avail"][1],
    }
    meta["invocations"] = [_invocation(meta, cfg_info)]
    return {"meta": meta, "data": {k: v["info"] for k, v in res["datasets"].items()},
            "configs": cfg_info, "runs": list(res["runs"])}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.merge_json:
        return _merge_files(args)
    out = Path(args.out)
    path = out / "trainability.json"
    old = None
    if not args.fresh and path.exists():
        old = json.loads(path.read_text())
        same = (old["meta"].get("quick") == args.quick
                and old["meta"].get("ctr_rows") == args.ctr_rows)
        old = old if same else None

    def save(res: dict, final: bool) -> None:
        doc = _document(args, res, argv)
        doc = _fold(old, doc) if old is not None else doc
        _write(doc, out, args.results_md if final else "", quiet=not final)

    res = run(args, checkpoint=None if args.describe else (lambda r: save(r, False)))
    if not args.describe:
        save(res, True)
    return 0


def _write(doc: dict, out: Path, results_md: str, quiet: bool = False) -> None:
    doc["summary"] = summarize(doc["runs"], doc["configs"])
    doc["acceptance"] = acceptance(doc["summary"], doc["configs"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "trainability.json").write_text(json.dumps(doc, indent=1, default=float))
    text = markdown(doc["meta"], doc["data"], doc["configs"], doc["summary"], doc["acceptance"])
    if not quiet:
        print(text)
    if results_md:
        update_results_md(Path(results_md), text)


def _merge_files(args: argparse.Namespace) -> int:
    """``--merge-json``: fold result files into ``--out``'s JSON and re-render; no training."""
    out = Path(args.out)
    docs = [json.loads(Path(p).read_text()) for p in args.merge_json]
    path = out / "trainability.json"
    if path.exists() and not args.fresh:
        docs.insert(0, json.loads(path.read_text()))
    scales = {(d["meta"].get("quick"), d["meta"].get("ctr_rows")) for d in docs}
    if len(scales) > 1:
        raise SystemExit(f"--merge-json: the files were run at different scales (quick, "
                         f"ctr_rows) {sorted(scales, key=str)}; merge files of one scale only.")
    doc = docs[0]
    for other in docs[1:]:
        doc = _fold(doc, other)
    _write(doc, out, args.results_md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
