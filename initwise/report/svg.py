"""Hand-written inline SVG charts for the HTML report (no matplotlib, no network, no scripts).

Every chart is a self-contained ``<svg>`` with a ``viewBox`` (it scales to its container), a
``<title>`` for screen readers, and a ``<title>`` on each marker so hovering shows the value.
Missing values (``None``, NaN, or non-positive on a log axis) leave gaps.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["PALETTE", "Series", "line_chart", "nice_ticks"]

PALETTE = ("#d1495b", "#2e86ab", "#edae49", "#66a182", "#8d6a9f", "#00798c", "#30638e")

_W, _H = 560, 320
_M = {"l": 74, "r": 16, "t": 52, "b": 48}


@dataclass
class Series:
    """One line (and/or markers) of a chart.

    Attributes:
        label: legend text.
        xs: x values.
        ys: y values (``None`` for a gap).
        color: stroke colour (default: by position in the palette).
        dashed: draw a dashed line.
        markers: draw a dot per point.
        line: draw the connecting line.
        names: per-point hover text (e.g. the layer names).
        point_labels: short text drawn next to each marker ("" for none).
    """

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str | None = None
    dashed: bool = False
    markers: bool = True
    line: bool = True
    names: Sequence[str] | None = None
    point_labels: Sequence[str] | None = field(default=None)


def _ok(v: float | None, log: bool) -> bool:
    if v is None or isinstance(v, bool):
        return False
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f) and (f > 0 or not log)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (steps 1, 2, 2.5 or 5 x 10^k).

    Example:
        >>> nice_ticks(0.0, 1.0)
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        >>> nice_ticks(-3, 7)
        [-2.0, 0.0, 2.0, 4.0, 6.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(float(round(t, 12)))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{v:.4g}"


class _Axis:
    def __init__(self, values: list[float], log: bool, lo: float | None, hi: float | None,
                 a: float, b: float) -> None:
        self.log = log
        vals = [math.log10(v) if log else v for v in values]
        vmin = min(vals) if vals else 0.0
        vmax = max(vals) if vals else 1.0
        pad = 0.04 * (vmax - vmin)
        vmin, vmax = vmin - pad, vmax + pad
        if lo is not None:
            vmin = math.log10(lo) if log else lo
        if hi is not None:
            vmax = math.log10(hi) if log else hi
        if vmax - vmin < 1e-12:
            pad = abs(vmin) * 0.1 or (0.5 if log else 1.0)
            vmin, vmax = vmin - pad, vmax + pad
        self.vmin, self.vmax, self.a, self.b = vmin, vmax, a, b

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.a + (t - self.vmin) / (self.vmax - self.vmin) * (self.b - self.a)

    def ticks(self) -> list[float]:
        if self.log:
            lo, hi = math.floor(self.vmin), math.ceil(self.vmax)
            step = max(1, math.ceil((hi - lo) / 6))
            inside = [10.0**k for k in range(lo, hi + 1, step)
                      if self.vmin - 1e-9 <= k <= self.vmax + 1e-9]
            if len(inside) >= 3:
                return inside
            fine = [m * 10.0**k for k in range(lo, hi + 1) for m in (1, 2, 5)
                    if self.vmin - 1e-9 <= math.log10(m * 10.0**k) <= self.vmax + 1e-9]
            if len(fine) >= 3:
                return fine
            ticks = nice_ticks(10**self.vmin, 10**self.vmax, 4)
            return [t for t in ticks if t > 0 and self.vmin <= math.log10(t) <= self.vmax]
        return nice_ticks(self.vmin, self.vmax)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
    logx: bool = False,
    xlim: tuple[float | None, float | None] = (None, None),
    ylim: tuple[float | None, float | None] = (None, None),
    bands: Sequence[tuple[float, float, str, str]] = (),
    polygons: Sequence[tuple[Sequence[tuple[float, float]], str, str]] = (),
    vlines: Sequence[tuple[float, str, str]] = (),
    width: int = _W,
    height: int = _H,
) -> str:
    """An SVG line/scatter chart.

    Args:
        series: the lines to draw.
        title: chart title (also the accessible name).
        xlabel: x-axis label. Default "".
        ylabel: y-axis label. Default "".
        logy: log-scale y axis. Default False.
        logx: log-scale x axis. Default False.
        xlim: fixed (lo, hi) for x; ``None`` ends come from the data.
        ylim: fixed (lo, hi) for y.
        bands: horizontal shaded bands ``(y_lo, y_hi, colour, label)`` (e.g. a healthy range).
        polygons: shaded regions ``(points in data coordinates, colour, label)``.
        vlines: vertical event markers ``(x, colour, label)`` (a finding, a repair), each with
            its label as a tooltip.
        width: viewBox width. Default 560.
        height: viewBox height. Default 320.

    Returns:
        The ``<svg>`` element as text.
    """
    pairs = [(float(x), float(y)) for s in series for x, y in zip(s.xs, s.ys)
             if _ok(x, logx) and _ok(y, logy)]
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    x0, x1 = _M["l"], width - _M["r"]
    y0, y1 = height - _M["b"], _M["t"]
    ax = _Axis(xs, logx, xlim[0], xlim[1], x0, x1)
    ay = _Axis(ys, logy, ylim[0], ylim[1], y0, y1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:.0f}" y="20" class="ct">{escape(title)}</text>',
    ]
    if not xs:
        out.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" class="ct muted">'
                   "no data measured</text></svg>")
        return "\n".join(out)
    cid = "c" + hashlib.md5(f"{title}|{len(xs)}|{width}x{height}".encode()).hexdigest()[:10]
    out.append(f'<clipPath id="{cid}"><rect x="{x0 - 5}" y="{y1 - 5}" width="{x1 - x0 + 10}" '
               f'height="{y0 - y1 + 10}"/></clipPath>')
    clip = f'clip-path="url(#{cid})"'
    for pts, color, label in polygons:
        path = " ".join(f"{ax(px):.1f},{ay(py):.1f}" for px, py in pts
                        if _ok(px, logx) and _ok(py, logy))
        out.append(f'<polygon points="{path}" fill="{color}" {clip}><title>{escape(label)}'
                   f"</title></polygon>")
    for lo, hi, color, label in bands:
        if _ok(lo, logy) and _ok(hi, logy):
            ya, yb = sorted((ay(lo), ay(hi)))
            out.append(f'<rect x="{x0}" y="{ya:.1f}" width="{x1 - x0}" height="{yb - ya:.1f}" '
                       f'fill="{color}" {clip}><title>{escape(label)}</title></rect>')
    out += _grid(ax, ay, x0, x1, y0, y1)
    for vx, color, label in vlines:
        if _ok(vx, logx) and ax.vmin <= (math.log10(vx) if logx else vx) <= ax.vmax:
            x = ax(vx)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1}" y2="{y0}" stroke="{color}" '
                       f'stroke-width="1.5" stroke-dasharray="3 3" class="ev"><title>'
                       f"{escape(label)}</title></line>")
    out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{height - 8}" class="al">{escape(xlabel)}'
               "</text>")
    out.append(f'<text transform="translate(16 {(y0 + y1) / 2:.0f}) rotate(-90)" class="al">'
               f"{escape(ylabel)}</text>")
    for i, s in enumerate(series):
        out += _draw(s, s.color or PALETTE[i % len(PALETTE)], ax, ay, (logx, logy), clip)
    out += _legend(series, x0, width)
    out.append("</svg>")
    return "\n".join(out)


def _grid(ax: _Axis, ay: _Axis, x0: float, x1: float, y0: float, y1: float) -> list[str]:
    out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" class="frame"/>']
    for t in ay.ticks():
        y = ay(t)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="gl"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="tk" text-anchor="end">'
                   f"{_fmt(t)}</text>")
    for t in ax.ticks():
        x = ax(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1}" y2="{y0}" class="gl"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + 16}" class="tk" text-anchor="middle">'
                   f"{_fmt(t)}</text>")
    return out


def _draw(s: Series, color: str, ax: _Axis, ay: _Axis, logs: tuple[bool, bool],
          clip: str) -> list[str]:
    out: list[str] = []
    pts = [(i, float(x), float(y)) for i, (x, y) in enumerate(zip(s.xs, s.ys))
           if _ok(x, logs[0]) and _ok(y, logs[1])]
    if s.line and len(pts) > 1:
        segs, seg, last = [], [], None
        for i, x, y in pts:
            if last is not None and i != last + 1:
                segs.append(seg)
                seg = []
            seg.append(f"{ax(x):.1f},{ay(y):.1f}")
            last = i
        segs.append(seg)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for seg in segs:
            if len(seg) > 1:
                out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" '
                           f'stroke-width="2"{dash} {clip}/>')
    if s.markers:
        for i, x, y in pts:
            name = s.names[i] if s.names and i < len(s.names) else ""
            tip = escape(f"{s.label}: {name + ' ' if name else ''}({_fmt(x)}, {_fmt(y)})")
            out.append(f'<circle cx="{ax(x):.1f}" cy="{ay(y):.1f}" r="3.5" fill="{color}" '
                       f'{clip}><title>{tip}</title></circle>')
            if s.point_labels and i < len(s.point_labels) and s.point_labels[i]:
                out.append(f'<text x="{ax(x) + 6:.1f}" y="{ay(y) - 6:.1f}" class="pl">'
                           f"{escape(s.point_labels[i])}</text>")
    return out


def _legend(series: Sequence[Series], x0: float, width: int) -> list[str]:
    out, x = [], x0 + 8
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="34" y2="34" '
                   f'stroke="{color}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 22}" y="38" class="lg">{escape(s.label)}</text>')
        x += 34 + 8 * len(s.label)
        if x > width - 60:
            break
    return out
