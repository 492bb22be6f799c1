"""One self-contained HTML report: no network, inline SVG plots, readable on a phone and a desktop.

Sections (each present when its data is): verdict, summary table, findings (by severity, with
evidence and copyable fix code), learning curves, per-layer plots across depth (before/after when
two diagnoses are given), the input data's sparsity/scale profile, the mean-field phase diagram
with the model's layers placed on it, and the initialization report.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path
from typing import Any

from initwise._version import __version__
from initwise.report import sections as S
from initwise.report.assets import CSP, CSS, SCRIPT
from initwise.report.page import Page
from initwise.report.terminal import verdict

__all__ = ["render_html"]

# Section ids, in page order: the browser test looks for these.
SECTION_IDS = ("summary", "findings", "curves", "layers", "data", "theory", "init")


def render_html(page: Page | Any, path: str | Path | None = None, **fields: Any) -> str:
    """Render a :class:`Page` as one self-contained HTML file.

    Args:
        page: the :class:`Page`; a Diagnosis or an InitReport is wrapped with
            ``Page.of(page, **fields)`` (so ``render_html(diagnosis, path, after=...)`` works).
        path: where to write the file; ``None`` only returns the text. Default None.
        **fields: :class:`Page` fields, only when ``page`` is not a Page.

    Returns:
        The HTML text.

    Raises:
        TypeError: if ``page`` is not a Page, a Diagnosis or an InitReport, or for fields
            given with a Page.

    Example:
        >>> from initwise.doctor import Diagnosis
        >>> from initwise.report import Page, render_html
        >>> "<h2>Verdict</h2>" in render_html(Page(diagnosis=Diagnosis()))
        True
    """
    if not isinstance(page, Page):
        page = Page.of(page, **fields)
    elif fields:
        raise TypeError(f"render_html: fields {sorted(fields)} go into the Page, not here.")
    diag, before, after = page.diagnosis, page.before, page.after
    if diag is None and page.init_report is None:
        raise TypeError("render_html: the Page has neither a diagnosis nor an init_report.")
    if after is not None and before is None and diag is not None:
        before = diag
    main_diag = diag or before or after
    title = page.title or ("initwise doctor report" if diag is not None
                           else "initwise init report")
    verdict_diag = main_diag if diag is not None else (after or before)
    init_report = page.init_report
    body = [_verdict(verdict_diag, init_report if diag is None else None, page.intro)]
    if page.summary:
        body.append(S.section("summary", "Before and after", S.summary_table(page.summary)))
    body.append(S.findings_section(diag or before, after, page.labels))
    if page.curves:
        body.append(S.section("curves", "Learning curves", S.curves(page.curves)))
    body.append(S.layers_section(before or diag, after, page.labels))
    profile = getattr(main_diag, "data_profile", None) if main_diag is not None else None
    body.append(S.data_section(profile, page.data_stats))
    body.append(S.theory_section(page.phase, page.labels))
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
