"""Summaries, the issue-15 verdicts, and the plain / markdown tables of the real-models run.

Verdicts per model, the issue's acceptance, for ``initwise.init`` (arm ``init``):

* ``no_worse``: for every optimizer, mean held-out loss over seeds of ``init`` <= that of
  ``own`` + one pooled std, ``sqrt((s_own^2 + s_init^2) / 2)`` (sample stds over seeds; 0 with
  one seed). A diverged ``init`` run fails; a diverged ``own`` run does not count against.
* ``prior``: the held-out initial loss after ``init`` within 5 % of the label prior's loss on
  every seed (the prior fitted to the TRAIN labels, evaluated on the held-out split).
* ``doctor``: no doctor error (code at a module) after ``init`` that the doctor did not report
  on the library's own init of the same seed.
* ``time``: ``init``'s wall time <= 20 mean training steps of that model (mean over seeds).
"""

from __future__ import annotations

import math
from typing import Any

from _real.run import ARMS

PRIOR_TOL = 0.05
MAX_INIT_STEPS = 20.0
VERDICTS = ("no_worse", "prior", "doctor", "time")


def _stats(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if math.isfinite(v)]
    n = len(values)
    if len(finite) < n or n == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": n, "values": values}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n, "values": values}


def _doctor_codes(seeds: list[dict], arm: str) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {"error": set(), "warning": set()}
    failed = []
    for s in seeds:
        doc = s["arms"][arm].get("doctor") or {}
        if doc.get("error"):
            failed.append(doc["error"])
        for f in doc.get("findings", []):
            if f["severity"] in out:
                out[f["severity"]].add(f["check"])
    return {"errors": sorted(out["error"]), "warnings": sorted(out["warning"]),
            "failed": failed[:1]}


def _new_errors(seeds: list[dict]) -> list[str]:
    new: set[str] = set()
    for s in seeds:
        def errs(arm: str, s: dict = s) -> set[str]:
            doc = s["arms"][arm].get("doctor") or {}
            return {f"{f['check']}@{f['where']}" for f in doc.get("findings", [])
                    if f["severity"] == "error"}
        new |= errs("init") - errs("own")
    return sorted(new)


def _no_worse(final: dict[str, dict[str, dict]]) -> bool:
    for arms in final.values():
        own, ini = arms["own"], arms["init"]
        if not math.isfinite(ini["mean"]):
            return False
        if not math.isfinite(own["mean"]):
            continue
        pooled = math.sqrt((own["std"] ** 2 + ini["std"] ** 2) / 2.0)
        if ini["mean"] > own["mean"] + pooled:
            return False
    return bool(final)


def summarize_model(entry: dict[str, Any], prior: float) -> dict[str, Any]:
    """One model's row: losses per (optimizer, arm), initial losses, times, doctor, verdicts."""
    seeds = entry["seeds"]
    errors = {arm: next((s["arms"][arm]["error"] for s in seeds if s["arms"][arm]["error"]),
                        None) for arm in ARMS}
    opts = sorted({o for s in seeds for o in s["arms"]["own"]["runs"]})
    final = {o: {arm: _stats([s["arms"][arm]["runs"][o]["final_loss"] if o in
                              s["arms"][arm]["runs"] else float("nan") for s in seeds])
                 for arm in ARMS} for o in opts}
    initial = {arm: _stats([s["arms"][arm].get("initial_loss", float("nan")) for s in seeds])
               for arm in ARMS}
    init_s = _stats([s["arms"]["init"]["seconds"] for s in seeds])["mean"]
    step_s = _stats([s["mean_step_s"] for s in seeds])["mean"]
    init_steps = init_s / step_s if step_s > 0 else float("nan")
    dev = [abs(v - prior) / prior for v in initial["init"]["values"]]
    new = _new_errors(seeds) if errors["init"] is None else []
    verdict = {
        "no_worse": errors["init"] is None and _no_worse(final),
        "prior": errors["init"] is None and bool(dev) and all(d <= PRIOR_TOL for d in dev),
        "doctor": errors["init"] is None and not new,
        "time": errors["init"] is None and init_steps <= MAX_INIT_STEPS,
    }
    verdict["all"] = all(verdict[k] for k in VERDICTS)
    return {
        "model": entry["name"], "library": entry["library"], "task": entry["task"],
        "prior_loss": prior, "final": final, "initial": initial,
        "initial_rel_dev_init": max(dev) if dev else float("nan"),
        "init_s": init_s, "auto_s": _stats([s["arms"]["auto"]["seconds"] for s in seeds])["mean"],
        "mean_step_s": step_s, "init_steps": init_steps,
        "init_warnings": max((s["arms"]["init"]["n_warnings"] for s in seeds), default=0),
        "doctor": {arm: _doctor_codes(seeds, arm) for arm in ARMS},
        "new_doctor_errors": new, "errors": errors, "verdict": verdict,
    }


def _f(x: float | None, digits: int = 3) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ms(st: dict[str, Any]) -> str:
    if st["n"] > 1 and st["std"] is not None and math.isfinite(st["std"]):
        return f"{_f(st['mean'])} ± {_f(st['std'])}"
    return _f(st["mean"])


def _codes(d: dict[str, list[str]]) -> str:
    parts = []
    if d["errors"]:
        parts.append("E: " + ", ".join(d["errors"]))
    if d["warnings"]:
        parts.append("W: " + ", ".join(d["warnings"]))
    if d["failed"]:
        parts.append("doctor failed")
    return "; ".join(parts) or "-"


def loss_table(rows: list[dict[str, Any]], opts: list[str]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "task", "prior", "L0 own", "L0 init", "L0 auto"]
    head += [f"{o} {arm}" for o in opts for arm in ARMS]
    body = []
    for r in rows:
        line = [r["model"], r["task"], _f(r["prior_loss"])]
        line += [_f(r["initial"][arm]["mean"]) for arm in ARMS]
        for o in opts:
            line += [_ms(r["final"][o][arm]) if o in r["final"] else "-" for arm in ARMS]
        body.append(line)
    return head, body


def verdict_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "init s", "init/steps", "warn", "doctor own", "doctor init", "new errors",
            "no worse", "L0 ±5 %", "no new err", "<=20 steps", "all"]
    body = []
    for r in rows:
        v = r["verdict"]
        if r["errors"]["init"]:
            body.append([r["model"], "-", "-", "-", _codes(r["doctor"]["own"]),
                         "init raised: " + r["errors"]["init"][:60], "-", "no", "no", "no", "no",
                         "no"])
            continue
        body.append([
            r["model"], _f(r["init_s"], 2), _f(r["init_steps"], 1), str(r["init_warnings"]),
            _codes(r["doctor"]["own"]), _codes(r["doctor"]["init"]),
            ", ".join(sorted({e.split("@")[0] for e in r["new_doctor_errors"]})) or "-",
            *("yes" if v[k] else "no" for k in (*VERDICTS, "all")),
        ])
    return head, body


def render(head: list[str], body: list[list[str]], markdown: bool) -> str:
    """A table as markdown (``| a | b |``) or as aligned plain text."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in body]
    return "\n".join(lines)
