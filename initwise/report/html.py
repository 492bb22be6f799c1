"""One self-contained HTML report: no network, inline SVG plots, readable on a phone and a desktop.

Sections (each present when its data is): verdict, summary table, findings (by severity, with
evidence and copyable fix code), learning curves, per-layer plots across depth (before/after when
two diagnoses are given), the input data's sparsity/scale profile, the mean-field phase diagram
with the model's layers placed on it, and the initialization report.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from initwise.report import sections as S
from initwise.report.assets import CSP, CSS, SCRIPT
from initwise.report.terminal import is_diagnosis, verdict

__all__ = ["render_html"]

# Section ids, in page order: the browser test looks for these.
SECTION_IDS = ("summary", "findings", "curves", "layers", "data", "theory", "init")


def _is_init_report(obj: Any) -> bool:
    return hasattr(obj, "params") and hasattr(obj, "layers") and hasattr(obj, "loss")


def render_html(
    obj: Any,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    before: Any = None,
    after: Any = None,
    labels: tuple[str, str] = ("before", "after"),
    init_report: Any = None,
    points: Sequence[dict] | None = None,
    points_before: Sequence[dict] | None = None,
    curves: dict | None = None,
    summary: dict | None = None,
    intro: str = "",
    data_stats: dict | None = None,
) -> str:
    """Render a Diagnosis or an InitReport (plus optional extras) as one HTML file.

    Args:
        obj: a :class:`initwise.doctor.Diagnosis` or an :class:`initwise.InitReport`.
        path: where to write the file; ``None`` only returns the text. Default None.
        title: page title (default from the object's type).
        before: a Diagnosis measured before a change (defaults to ``obj`` when ``obj`` is a
            Diagnosis and ``after`` is given).
        after: a Diagnosis measured after the change; per-layer plots then overlay both.
        labels: legend names of (before, after). Default ``("before", "after")``.
        init_report: an InitReport to show (taken from ``obj`` when ``obj`` is one).
        points: layer coordinates for the phase diagram
            (:func:`initwise.report.points.phase_points`).
        points_before: the same before the change, drawn hollow.
        curves: learning curves ``{"loss": {label: (steps, values)}, "accuracy": {label:
            (steps, values)}, "prior": float, "x_label": str}``.
        summary: a headline table ``{"header": [...], "rows": [[...]], "note": str}``.
        intro: one paragraph of plain text under the verdict (escaped here).
        data_stats: whole-file sparsity/scale curves
            (:func:`initwise.report.profile.stats_profile`).

    Returns:
        The HTML text.

    Raises:
        TypeError: if ``obj`` is neither a Diagnosis nor an InitReport.
    """
    diag = obj if is_diagnosis(obj) and not _is_init_report(obj) else None
    if diag is None and _is_init_report(obj):
        init_report = obj
    elif diag is None:
        raise TypeError(f"render_html: expected a Diagnosis or an InitReport, got "
                        f"{type(obj).__name__}")
    if after is not None and before is None and diag is not None:
        before = diag
    main_diag = diag or before or after
    title = title or ("initwise doctor report" if diag is not None else "initwise init report")
    verdict_diag = main_diag if diag is not None else (after or before)
    body = [_verdict(verdict_diag, init_report if diag is None else None, intro)]
    if summary:
        body.append(S.section("summary", "Before and after", S.summary_table(summary)))
    body.append(S.findings_section(diag or before, after, labels))
    if curves:
        body.append(S.section("curves", "Learning curves", S.curves(curves)))
    body.append(S.layers_section(before or diag, after, labels))
    profile = getattr(main_diag, "data_profile", None) if main_diag is not None else None
    body.append(S.data_section(profile, data_stats))
    body.append(S.theory_section(points, points_before, labels))
    if init_report is not None:
        body.append(S.init_section(init_report))
    html = _page(title, [b for b in body if b])
    if path is not None:
        Path(path).write_text(html, encoding="utf-8")
    return html


def _verdict(diag: Any, init_report: Any, intro: str) -> str:
    """The verdict of ``diag``; for an init report, of the model after init, plus the loss."""
    if diag is not None:
        level, text = verdict(diag.findings)
    else:
        level, text = "ok", "Initialization done."
    if init_report is not None:
        text = ("After init: " + text) if diag is not None else text
        lc = init_report.loss
        if lc is not None:
            text += (f" Initial loss {lc.before:.4g} -> {lc.after:.4g} "
                     f"(label-prior target {lc.target:.4g}).")
    extra = f'<p class="small">{escape(intro)}</p>' if intro else ""
    facts = [(k, v) for k, v in (getattr(diag, "summary", None) or {}).items()
             if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    if facts:
        extra += S.kv(facts)
    return (f'<section id="verdict"><h2>Verdict</h2><div class="verdict {level}">'
            f"{escape(text)}</div>{extra}</section>")


def _page(title: str, sections: list[str]) -> str:
    from initwise._version import __version__

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    links = "".join(f'<a href="#{sid}">{escape(name)}</a>' for sid, name in S.NAV
                    if f'id="{sid}"' in "".join(sections))
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><p>initwise {escape(__version__)} &middot; "
        f"{when}</p></header>",
        f"<nav>{links}</nav>",
        "<main>", *sections, "</main>",
        '<footer>Generated by initwise. Self-contained: no network requests.</footer>',
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ])
