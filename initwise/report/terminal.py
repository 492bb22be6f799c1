"""Terminal rendering of a Diagnosis or an InitReport: rich tables when installed, plain else.

Colours only when asked (the CLI asks when stdout is a TTY and ``NO_COLOR`` is unset).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from initwise.initreport import format_number

__all__ = ["render_terminal", "SEVERITY_ORDER"]

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_LAYER_COLS = (
    ("layer", "name"), ("kind", "kind"), ("pre std", "pre_std"), ("post std", "post_std"),
    ("active", "active_fraction"), ("saturated", "saturated_fraction"), ("dead", "dead_units"),
    ("grad norm", "grad_norm"), ("update ratio", "update_ratio"),
)


def fmt(x: Any) -> str:
    """Short human form of a number (``-`` for None): 3 significant digits, ``x.2e`` below 1e-3
    and from 1e5 on (:func:`initwise.initreport.format_number`)."""
    return format_number(x, 3, (1e-3, 1e5))


def is_diagnosis(obj: Any) -> bool:
    """Duck test: a doctor Diagnosis has ``findings`` and ``layers``."""
    return hasattr(obj, "findings") and hasattr(obj, "layers")


def sorted_findings(findings: Sequence[Any]) -> list[Any]:
    """Findings by severity (error, warning, info), stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def verdict(findings: Sequence[Any]) -> tuple[str, str]:
    """``(level, sentence)``: the overall verdict of a diagnosis."""
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITY_ORDER}
    parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    if counts["error"]:
        return "error", "This model will not train well as it is: " + ", ".join(parts) + "."
    if counts["warning"]:
        return "warning", "Trainable, with problems worth fixing: " + ", ".join(parts) + "."
    return "ok", "Healthy: no errors or warnings" + (f" ({parts[0]})" if parts else "") + "."


def layer_rows(layers: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the per-layer table (columns nobody measured are dropped)."""
    cols = [(h, a) for h, a in _LAYER_COLS
            if a in ("name", "kind") or any(getattr(r, a, None) is not None for r in layers)]
    rows = [[fmt(getattr(r, a, None)) for _, a in cols] for r in layers]
    return [h for h, _ in cols], rows


def _diagnosis_blocks(diag: Any) -> list[tuple[str, Any]]:
    """Renderer-neutral blocks: ("title"|"finding"|"table"|"text", payload)."""
    level, sentence = verdict(diag.findings)
    blocks: list[tuple[str, Any]] = [("title", (level, f"initwise doctor "
                                                f"(preset {getattr(diag, 'preset', '?')}): "
                                                f"{sentence}"))]
    for f in sorted_findings(diag.findings):
        blocks.append(("finding", f))
    if diag.layers:
        blocks.append(("table", ("per layer",) + layer_rows(diag.layers)))
    profile = getattr(diag, "data_profile", None) or {}
    if profile:
        blocks.append(("text", "data: " + ", ".join(
            f"{k} {fmt(v) if not isinstance(v, dict) else _inline(v)}"
            for k, v in profile.items()
            if not isinstance(v, (list, tuple)) and v is not None and v != "")))
    skipped = getattr(diag, "skipped", None) or []
    if skipped:
        blocks.append(("text", "skipped: " + "; ".join(map(str, skipped))))
    return blocks


def _inline(d: dict) -> str:
    return "(" + ", ".join(f"{k} {fmt(v)}" for k, v in d.items()
                           if not isinstance(v, (list, tuple, dict))) + ")"


def _plain(blocks: list[tuple[str, Any]]) -> str:
    out: list[str] = []
    for kind, payload in blocks:
        if kind == "title":
            out.append(payload[1])
        elif kind == "finding":
            f = payload
            out.append(f"\n[{f.severity.upper()}] {f.check} at {f.where}: {f.evidence}")
            if f.why:
                out.append(f"    why: {f.why}")
            out.append(f"    fix: {f.fix}")
            for line in (f.fix_code or "").splitlines():
                out.append(f"      {line}")
        elif kind == "table":
            title, header, rows = payload
            out.append(f"\n{title}:")
            out.append(grid(header, rows))
        else:
            out.append("\n" + payload)
    return "\n".join(out)


def grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _rich(blocks: list[tuple[str, Any]], color: bool, width: int) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width,
                      color_system="standard" if color else None, highlight=False)
    for kind, payload in blocks:
        if kind == "title":
            level, text = payload
            style = {"error": "bold red", "warning": "bold yellow"}.get(level, "bold green")
            console.print(f"[{style}]{escape(text)}[/]")
        elif kind == "finding":
            f = payload
            style = _STYLE.get(f.severity, "")
            console.print(f"\n[{style}]{f.severity.upper()}[/] [bold]{escape(f.check)}[/] at "
                          f"[bold]{escape(f.where)}[/]: {escape(f.evidence)}")
            if f.why:
                console.print(f"  [dim]why:[/] {escape(f.why)}")
            console.print(f"  [dim]fix:[/] {escape(f.fix)}")
            for line in (f.fix_code or "").splitlines():
                console.print(f"    [green]{escape(line)}[/]", soft_wrap=True)
        elif kind == "table":
            title, header, rows = payload
            table = Table(title=title, title_justify="left", header_style="bold")
            for i, h in enumerate(header):
                table.add_column(h, justify="left" if i < 2 else "right")
            for r in rows:
                table.add_row(*(escape(c) for c in r))
            console.print()
            console.print(table)
        else:
            console.print("\n" + escape(payload))
    return buf.getvalue().rstrip("\n")


def render_terminal(obj: Any, *, color: bool = False, width: int = 110) -> str:
    """Render a Diagnosis or an InitReport (or anything with ``table()``/``__str__``) as text.

    Args:
        obj: a :class:`initwise.doctor.Diagnosis`, an :class:`initwise.InitReport`, or an object
            with a ``table()`` method.
        color: emit ANSI colours (default False; the CLI passes ``stdout.isatty()``).
        width: the console width for wrapping (default 110).

    Returns:
        The text, without a trailing newline.
    """
    if is_diagnosis(obj):
        blocks = _diagnosis_blocks(obj)
        try:
            return _rich(blocks, color, width)
        except ImportError:
            return _plain(blocks)
    if hasattr(obj, "table"):
        return obj.table()
    return str(obj)
