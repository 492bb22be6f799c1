"""Terminal and HTML renderers on hand-built reports (known numbers, no model)."""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET

import pytest

from initwise.report import render_html, render_terminal
from initwise.report.profile import stats_profile
from initwise.report.terminal import verdict
from initwise.theory_points import phase_diagram

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_terminal_sorts_findings_by_severity_and_drops_unmeasured_columns(fx):
    text = render_terminal(fx.diagnosis())
    assert not ANSI.search(text)
    order = [text.index(s) for s in ("ERROR", "WARNING", "INFO")]
    assert order == sorted(order)
    assert "1 error, 1 warning, 1 info" in text
    assert "report = initwise.init(model, batches)" in text  # fix code, verbatim
    assert "saturated" not in text.split("per layer")[1]  # nobody measured it
    assert "update ratio" in text and "net.18" in text


def test_terminal_colours_only_when_asked(fx):
    assert ANSI.search(render_terminal(fx.diagnosis(), color=True))
    assert not ANSI.search(render_terminal(fx.diagnosis(), color=False))


def test_terminal_plain_fallback_without_rich(fx, monkeypatch):
    real_import = builtins.__import__

    def no_rich(name, *args, **kwargs):
        if name.startswith("rich"):
            raise ImportError("no rich here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rich)
    text = render_terminal(fx.diagnosis())
    assert "[ERROR] signal.vanishing at net.18" in text
    assert "pre std" in text and "---" in text


def test_verdict_levels(fx):
    d = fx.diagnosis()
    assert verdict(d.findings)[0] == "error"
    assert verdict([f for f in d.findings if f.severity != "error"])[0] == "warning"
    assert verdict([])[0] == "ok"


def test_init_report_renders_its_table(fx):
    text = render_terminal(fx.init_report())
    assert "kaiming_normal" in text and "label-prior target 3.9" in text


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, flags=re.S)


def test_html_is_self_contained_and_has_every_section(fx, tmp_path):
    path = tmp_path / "r.html"
    html = render_html(fx.diagnosis(), path, after=fx.diagnosis(0.95), init_report=fx.init_report(),
                       phase=phase_diagram(fx.points(1.41), fx.points()),
                       curves={"loss": {"a": ([1, 2], [4.0, 3.0])},
                               "accuracy": {"a": ([0, 2], [0.1, 0.5])}, "prior": 3.9},
                       summary={"header": ["", "a"], "rows": [["acc", "50%"]]},
                       data_stats=stats_profile(fx.FakeStats()))
    assert path.read_text() == html
    for sid in ("verdict", "summary", "findings", "curves", "layers", "data", "theory", "init"):
        assert f'<section id="{sid}">' in html and f'href="#{sid}"' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "&lt;never&gt; active &amp; dead" in html  # evidence escaped
    assert html.count('class="copy"') == 4  # one per fix_code, both diagnoses
    for svg in _svgs(html):
        ET.fromstring(svg)  # every chart is well-formed XML


def test_layer_plot_has_one_marker_per_layer_and_run(fx):
    html = render_html(fx.diagnosis(), after=fx.diagnosis(0.9), labels=("old", "new"))
    std_chart = next(s for s in _svgs(html) if "<title>Pre-activation std</title>" in s)
    titles = re.findall(r"<title>(old|new): (net\.\d+)", std_chart)
    assert len(titles) == 2 * fx.N_LAYERS


def test_phase_diagram_places_every_layer_and_draws_relu_edge(fx):
    pytest.importorskip("initwise.theory")
    html = render_html(fx.diagnosis(), phase=phase_diagram(fx.points(0.58)))
    chart = next(s for s in _svgs(html) if "<title>Phase diagram</title>" in s)
    assert chart.count("<circle") == fx.N_LAYERS
    assert "edge of chaos (relu)" in chart and "<polygon" in chart
    assert "vertical line sigma_w = 1.414" in html


def test_render_html_rejects_other_objects():
    with pytest.raises(TypeError, match="expected a Page, a Diagnosis or an InitReport, got int"):
        render_html(3)


def test_init_report_page_has_before_after(fx):
    html = render_html(fx.init_report(), before=fx.diagnosis(), after=fx.diagnosis(0.95),
                       labels=("before init", "after init"))
    assert 'id="init"' in html and "Weight scale per layer" in html
    assert "before init" in html and "after init" in html
    assert "3.91" in html  # loss after
    assert "After init: This model will not train well" in html  # about the model after init
