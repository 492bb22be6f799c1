"""The hand-written SVG charts: well-formed, coordinates right, gaps and log axes handled."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from initwise.report.svg import Series, line_chart, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def _circles(svg: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    return [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(f"{NS}circle")]


@pytest.mark.parametrize("lo,hi", [(0, 1), (0.013, 0.87), (-3, 7), (1, 1e6), (0.5, 0.5001)])
def test_nice_ticks_are_round_evenly_spaced_and_cover_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    assert ticks[0] >= lo - 1e-9 and ticks[0] - step < lo
    assert ticks[-1] <= hi + 1e-9 and ticks[-1] + step > hi


def test_points_map_linearly_to_the_plot_box():
    svg = line_chart([Series("s", [0, 5, 10], [0, 50, 100])], title="t", xlim=(0, 10),
                     ylim=(0, 100))
    (x0, y0), (xm, ym), (x1, y1) = _circles(svg)
    assert xm == pytest.approx((x0 + x1) / 2, abs=0.1)
    assert ym == pytest.approx((y0 + y1) / 2, abs=0.1)
    assert x1 > x0 and y1 < y0  # y grows upwards


def test_log_axis_is_logarithmic_and_drops_non_positive_values():
    svg = line_chart([Series("s", [1, 2, 3, 4], [1e-3, 1e-2, 0.0, 1e-1])], title="t", logy=True)
    ys = [y for _, y in _circles(svg)]
    assert len(ys) == 3  # 0 is not drawable on a log axis
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2], abs=0.1)  # equal decades, equal steps


def test_gaps_split_the_line_and_none_nan_are_skipped():
    svg = line_chart([Series("s", [1, 2, 3, 4, 5], [1.0, None, 3.0, float("nan"), 5.0])],
                     title="t")
    root = ET.fromstring(svg)
    assert len(_circles(svg)) == 3
    assert not list(root.iter(f"{NS}polyline"))  # no two consecutive points: no segment


def test_text_is_escaped_and_hover_titles_name_the_points():
    svg = line_chart([Series("a<b", [1, 2], [1, 2], names=["fc&1", "fc2"])], title="x < y & z")
    root = ET.fromstring(svg)  # parses: everything escaped
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert titles[0] == "x < y & z"
    assert any(t and "fc&1" in t for t in titles)


def test_empty_chart_says_no_data():
    svg = line_chart([Series("s", [1], [None])], title="t")
    assert "no data measured" in svg
    ET.fromstring(svg)


def test_every_chart_has_a_viewbox_and_no_fixed_pixel_width():
    svg = line_chart([Series("s", [1, 2], [3, 4])], title="t")
    tag = re.match(r"<svg[^>]*>", svg).group(0)
    assert "viewBox=" in tag and " width=" not in tag
