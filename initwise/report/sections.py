"""The HTML report's sections, each a function of plain data returning an HTML fragment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from initwise.report.page import PhaseDiagram
from initwise.report.svg import PALETTE, Series, line_chart
from initwise.report.terminal import fmt, layer_rows, sorted_findings

__all__ = ["NAV", "section"]

NAV = (("verdict", "Verdict"), ("summary", "Before/after"), ("findings", "Findings"),
       ("curves", "Learning curves"), ("layers", "Layers"), ("data", "Data"),
       ("theory", "Phase diagram"), ("init", "Init report"))
_BEFORE, _AFTER = PALETTE[0], PALETTE[1]


def section(sid: str, title: str, inner: str) -> str:
    """A titled ``<section id=sid>``."""
    return f'<section id="{sid}"><h2>{escape(title)}</h2>{inner}</section>'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1,
          classes: Sequence[Sequence[str]] | None = None) -> str:
    """A scrollable HTML table; the first ``left`` columns are left-aligned."""
    th = "".join(f'<th{" class=l" if i < left else ""}>{escape(str(h))}</th>'
                 for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        tds = []
        for i, c in enumerate(row):
            cls = [classes[r][i]] if classes and classes[r][i] else []
            if i < left:
                cls.append("l")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            tds.append(f"<td{attr}>{escape(c if isinstance(c, str) else fmt(c))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<div class="tw"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}' \
           f"</tbody></table></div>"


def kv(pairs: Sequence[tuple[str, Any]]) -> str:
    """Name/value pairs in a responsive multi-column grid."""
    items = "".join(f'<div><span class="k">{escape(str(k).replace("_", " "))}</span>'
                    f'<span class="v">{escape(v if isinstance(v, str) else fmt(v))}</span></div>'
                    for k, v in pairs)
    return f'<div class="kvg">{items}</div>'


def summary_table(summary: dict) -> str:
    """The headline table (``header``, ``rows``, optional ``classes`` and ``note``)."""
    html = table(summary["header"], summary["rows"], classes=summary.get("classes")).replace(
        '<div class="tw">', '<div class="tw summary">', 1)
    if summary.get("note"):
        html += f'<p class="small muted">{escape(summary["note"])}</p>'
    return html


def _finding(f: Any) -> str:
    code = ""
    if getattr(f, "fix_code", ""):
        code = (f'<div class="codebox"><button class="copy" type="button">copy</button>'
                f"<pre><code>{escape(f.fix_code)}</code></pre></div>")
    auto = ' <span class="badge ok">auto-fix</span>' if getattr(f, "automatic", False) else ""
    why = f'<p class="small"><b>Why.</b> {escape(f.why)}</p>' if f.why else ""
    return (f'<div class="finding {escape(f.severity)}"><div class="head">'
            f'<span class="badge {escape(f.severity)}">{escape(f.severity)}</span>'
            f'<code class="check">{escape(f.check)}</code><span class="muted">at '
            f"<code>{escape(f.where)}</code></span>{auto}</div>"
            f"<p>{escape(f.evidence)}</p>{why}<p><b>Fix.</b> {escape(f.fix)}</p>{code}</div>")


def _findings_list(diag: Any) -> str:
    found = sorted_findings(diag.findings)
    if not found:
        return '<p class="muted">No findings: every check passed.</p>'
    html = "".join(_finding(f) for f in found)
    skipped = getattr(diag, "skipped", None) or []
    if skipped:
        html += '<p class="small muted">Skipped: ' + escape("; ".join(map(str, skipped))) + "</p>"
    return html


def findings_section(diag: Any, after: Any, labels: tuple[str, str]) -> str:
    """Findings by severity; with ``after``, two lists (before and after the change)."""
    if diag is None and after is None:
        return ""
    if after is None or diag is None:
        return section("findings", "Findings", _findings_list(diag or after))
    return section("findings", "Findings",
                   f"<h3>{escape(labels[0])}</h3>{_findings_list(diag)}"
                   f"<h3>{escape(labels[1])}</h3>{_findings_list(after)}")


def curves(c: dict) -> str:
    """Training-loss and test-accuracy charts of several runs."""
    xl = c.get("x_label", "step")
    charts = []
    if c.get("loss"):
        series = [Series(k, xs, ys, color=PALETTE[i], markers=False)
                  for i, (k, (xs, ys)) in enumerate(c["loss"].items())]
        bands = []
        if c.get("prior") is not None:
            p = float(c["prior"])
            xs_all = [x for xs, _ in c["loss"].values() for x in xs]
            series.append(Series("label prior", [min(xs_all), max(xs_all)], [p, p],
                                 color="#7a8291", dashed=True, markers=False))
        events = c.get("events") or []
        vlines = [(float(e["step"]), "#b42318" if e.get("kind") == "finding" else "#1a7f37",
                   f"step {e['step']}: {e['label']}") for e in events]
        caption = ("Mean loss per logging interval. The dashed line is the loss of the best "
                   "constant predictor (label prior).")
        if events:
            caption += (" Vertical marks: the training monitor's findings (red) and its "
                        "dead-unit repairs (green); hover for what and where.")
        charts.append(_fig(line_chart(series, title="Training loss", xlabel=xl, ylabel="loss",
                                      logy=True, bands=bands, vlines=vlines), caption))
    if c.get("accuracy"):
        series = [Series(k, xs, ys, color=PALETTE[i])
                  for i, (k, (xs, ys)) in enumerate(c["accuracy"].items())]
        charts.append(_fig(line_chart(series, title="Test accuracy", xlabel=xl,
                                      ylabel="accuracy", ylim=(0, None)),
                           "Accuracy on the held-out split."))
    return f'<div class="charts">{"".join(charts)}</div>'


def _fig(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _col(layers: Sequence[Any], attr: str) -> list[float | None]:
    out = []
    for r in layers:
        v = getattr(r, attr, None)
        out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None)
    return out


_LAYER_PLOTS = (
    ("pre_std", "Pre-activation std", "std", True,
     "Standard deviation of each layer's output before its nonlinearity. Vanishing or exploding "
     "across depth means the init scale is off the edge of chaos."),
    ("active_fraction", "Active / saturated units", "fraction", False,
     "Fraction of units active on the batch (ReLU family: not dead); dashed lines: fraction "
     "saturated (tanh/sigmoid family)."),
    ("grad_norm", "Gradient norm", "||grad W||", True,
     "Norm of each layer's weight gradient on the batch."),
    ("update_ratio", "Update ratio", "||dW|| / ||W||", True,
     "Relative size of one optimizer step per layer; around 1e-3 is the usual rule of thumb, "
     "far below means the layer barely learns, far above means it forgets."),
)


def _layer_series(runs: list[tuple[str, Any, str]], attr: str) -> list[Series]:
    series = []
    for label, diag, color in runs:
        layers = list(diag.layers)
        xs = list(range(1, len(layers) + 1))
        names = [str(getattr(r, "name", i)) for i, r in enumerate(layers)]
        series.append(Series(f"{label} active" if attr == "active_fraction" else label, xs,
                             _col(layers, attr), color=color, names=names))
        if attr == "active_fraction" and any(v is not None for v in
                                             _col(layers, "saturated_fraction")):
            series.append(Series(f"{label} saturated", xs, _col(layers, "saturated_fraction"),
                                 color=color, dashed=True, names=names))
    return series


def layers_section(diag: Any, after: Any, labels: tuple[str, str]) -> str:
    """Per-layer plots across depth (both runs overlaid when ``after`` is given) and a table."""
    runs = [(labels[0] if after is not None else "model", d, c)
            for d, c in ((diag, _BEFORE),) if d is not None]
    if after is not None:
        runs.append((labels[1], after, _AFTER))
    if not runs or not any(list(d.layers) for _, d, _ in runs):
        return ""
    figs = []
    for attr, title, ylabel, logy, caption in _LAYER_PLOTS:
        series = _layer_series(runs, attr)
        if not any(v is not None for s in series for v in s.ys):
            continue
        ylim: tuple[float | None, float | None] = (None, None)
        if attr == "active_fraction":
            ylim = (0.0, 1.0)
        elif attr == "update_ratio":  # keep the rule-of-thumb band in view
            vals = [v for s in series for v in s.ys if v is not None and v > 0]
            ylim = (min([3e-4, *vals]), max([1e-2, *vals]))
        bands = [(5e-4, 5e-3, "rgba(102,161,130,.15)", "rule-of-thumb range")] \
            if attr == "update_ratio" else []
        figs.append(_fig(line_chart(series, title=title, xlabel="layer (depth order)",
                                    ylabel=ylabel, logy=logy, ylim=ylim, bands=bands), caption))
    tables = ""
    for label, d, _ in runs:
        header, rows = layer_rows(list(d.layers))
        rows = [[str(i + 1), *r] for i, r in enumerate(rows)]
        tables += (f"<details><summary>Per-layer table: {escape(label)}</summary>"
                   f"{table(['#', *header], rows, left=3)}</details>")
    return section("layers", "Layers across depth",
                   f'<div class="charts">{"".join(figs)}</div>{tables}')


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def _stats_figs(stats: dict) -> list[str]:
    figs = []
    ks, rows = stats.get("nnz_hist", ([], []))
    if ks:
        figs.append(_fig(line_chart([Series("rows", ks, rows, markers=len(ks) < 40)],
                                    title="Non-zeros per row", xlabel="non-zeros in the row",
                                    ylabel="rows", logy=max(rows) > 50 * min(rows)),
                         "How many features each example has (the whole file)."))
    ranks, freq = stats.get("doc_freq", ([], []))
    if ranks:
        figs.append(_fig(line_chart([Series("features", ranks, freq, markers=False)],
                                    title="Feature frequency by rank", xlabel="feature rank",
                                    ylabel="fraction of rows", logx=True, logy=True),
                         "Fraction of rows in which each feature appears, most frequent first. "
                         "A long tail of rare features is what makes sparse data hard: a rare "
                         "feature's weight gets few updates."))
    ranks, rms = stats.get("rms", ([], []))
    if ranks:
        figs.append(_fig(line_chart([Series("features", ranks, rms, markers=False)],
                                    title="Feature scale by rank", xlabel="feature rank",
                                    ylabel="sqrt(E[x^2])", logx=True, logy=True),
                         "Root-mean-square value of each feature. On sparse counts it follows "
                         "the frequency; on dense columns, decades of spread mean unscaled "
                         "inputs."))
    return figs


def data_section(profile: dict | None, stats: dict | None = None) -> str:
    """The data's sparsity/scale profile: the doctor's batch summary, and whole-file curves."""
    if not profile and not stats:
        return ""
    batch = [(k, v) for k, v in _flatten(profile or {})
             if not isinstance(v, (list, tuple)) and v not in (None, "")]
    whole = [(k, v) for k, v in _flatten(stats or {}) if not isinstance(v, (list, tuple))]
    html = ""
    if batch:
        html += "<h3>The batch the doctor measured</h3>" + kv(batch)
    if whole:
        html += "<h3>The whole file</h3>" + kv(whole)
    figs = _stats_figs(stats or {})
    return section("data", "Input data profile", f'{html}<div class="charts">{"".join(figs)}</div>')


def theory_section(phase: PhaseDiagram | None, labels: tuple[str, str]) -> str:
    """The (sigma_w, sigma_b) plane, its edge-of-chaos line, and the model's layers on it."""
    if phase is None or not phase.points:
        return ""
    points, points_before, act = phase.points, phase.points_before, phase.activation
    xmax, ymax, sbs, crit = phase.xmax, phase.ymax, phase.sigma_b, phase.sigma_w
    series, polygons = [], []
    if crit is not None:
        line = [(w, b) for w, b in zip(crit, sbs) if w is not None]
        if line:
            series.append(Series(f"edge of chaos ({act})", [w for w, _ in line],
                                 [b for _, b in line], color="#1d2433", markers=False))
            polygons = [([(0.0, 0.0), *line, (0.0, line[-1][1])], "rgba(46,134,171,.10)",
                         "ordered phase (signals and gradients vanish with depth)"),
                        ([*line, (xmax, line[-1][1]), (xmax, 0.0)], "rgba(209,73,91,.10)",
                         "chaotic phase (gradients explode with depth)")]
    if points_before:
        series.append(_point_series(points_before, labels[0], "#9aa3b2"))
    series.append(_point_series(points, labels[1] if points_before else "layers", _BEFORE))
    svg = line_chart(series, title="Phase diagram", xlabel="sigma_w = std(W) * sqrt(fan_in)",
                     ylabel="sigma_b = std(b)", xlim=(0.0, xmax), ylim=(0.0, ymax),
                     polygons=polygons)
    if crit is not None and phase.homogeneous:
        note_extra = (f" For {act}, chi_1 does not depend on sigma_b, so the edge is the "
                      f"vertical line sigma_w = {crit[0]:.4g}.")
    else:
        note_extra = ""
    if crit is None:
        note = (f"The edge-of-chaos line needs initwise.theory and a known activation "
                f"(dominant activation here: {act or 'none found'}).")
    else:
        note = (f"Left of the line (blue) is the ordered phase, right (red) the chaotic one, "
                f"for {act} (the most common hidden activation). Mean-field theory for weights "
                f"N(0, sigma_w^2/fan_in) and biases N(0, sigma_b^2): Poole et al. 2016 "
                f"(arXiv:1606.05340), Schoenholz et al. 2017 (arXiv:1611.01232). The input "
                f"layer sees the data, not unit-variance activations, so its point is indicative."
                + note_extra)
    rows = [[p["name"], p["kind"], p.get("activation") or "-", p["role"], p["fan_in"],
             p["sigma_w"], p["sigma_b"]] for p in points]
    return section("theory", "Mean-field phase diagram",
                   f'<div class="charts">{_fig(svg, note)}</div>'
                   f"<details><summary>Layer coordinates</summary>"
                   f"{table(['layer', 'kind', 'activation', 'role', 'fan_in', 'sigma_w', 'sigma_b'], rows, left=4)}"  # noqa: E501
                   f"</details>")


def _point_series(points: Sequence[dict], label: str, color: str) -> Series:
    tags = {"input": "in", "output": "out"}
    return Series(label, [p["sigma_w"] for p in points], [p["sigma_b"] for p in points],
                  color=color, line=False, names=[p["name"] for p in points],
                  point_labels=[tags.get(p["role"], "") for p in points])


def init_section(report: Any) -> str:
    """The InitReport: loss before/after, calibrated layers, per-parameter schemes."""
    parts = []
    lc = getattr(report, "loss", None)
    if lc is not None:
        parts.append(kv([(f"initial loss ({lc.kind})", f"{fmt(lc.before)} \u2192 {fmt(lc.after)}"),
                         ("label-prior target", lc.target), ("policy", str(report.policy)),
                         ("seed", report.seed)]))
    if report.layers:
        rows = [[r.module, r.module_type, r.scale_before, r.scale_after, r.target_std,
                 r.pre_std, r.active_fraction, r.iterations, "yes" if r.converged else "NO"]
                for r in report.layers]
        parts.append("<h3>Calibrated layers</h3>" + table(
            ["layer", "type", "scale before", "scale after", "target std", "pre-act std",
             "active", "iters", "converged"], rows, left=2))
        xs = list(range(1, len(report.layers) + 1))
        names = [r.module for r in report.layers]
        svg = line_chart([Series("before", xs, [r.scale_before for r in report.layers],
                                 color=_BEFORE, names=names),
                          Series("after", xs, [r.scale_after for r in report.layers],
                                 color=_AFTER, names=names)],
                         title="Weight scale per layer", xlabel="layer", ylabel="std(W)",
                         logy=True)
        parts.append(f'<div class="charts">{_fig(svg, "Weight std before/after init.")}</div>')
    if report.params:
        rows = [[r.name, r.module_type, r.scheme, r.fan_in, r.fan_out, r.gain, r.std]
                for r in report.params]
        parts.append("<details><summary>Per-parameter schemes</summary>" + table(
            ["parameter", "type", "scheme", "fan_in", "fan_out", "gain", "std"], rows, left=3)
            + "</details>")
    parts += [f'<p class="small">warning: {escape(w)}</p>' for w in report.warnings]
    return section("init", "Initialization report", "".join(parts))


def finite(x: Any) -> bool:
    """True for a finite real number."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
