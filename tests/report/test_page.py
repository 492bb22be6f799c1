"""render_html reads a Page; report/ never imports torch, the graph or the theory."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from initwise.report import Page, PhaseDiagram, render_html
from initwise.theory_points import phase_diagram

REPORT = Path(__file__).resolve().parents[2] / "initwise" / "report"


def _strip_time(html: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", html)


def test_a_page_and_the_keyword_wrapper_render_the_same(fx):
    phase = phase_diagram(fx.points(1.41), fx.points())
    page = Page(diagnosis=fx.diagnosis(), after=fx.diagnosis(0.95), phase=phase,
                init_report=fx.init_report(), labels=("a", "b"), intro="hello")
    wrapped = render_html(fx.diagnosis(), after=fx.diagnosis(0.95), phase=phase,
                          init_report=fx.init_report(), labels=("a", "b"), intro="hello")
    assert _strip_time(render_html(page)) == _strip_time(wrapped)
    with pytest.raises(TypeError, match="go into the Page"):
        render_html(page, intro="twice")
    with pytest.raises(TypeError, match="neither a diagnosis nor an init_report"):
        render_html(Page())


def test_phase_diagram_is_plain_data_with_the_relu_line(fx):
    pytest.importorskip("initwise.theory")
    phase = phase_diagram(fx.points(0.58))
    assert isinstance(phase, PhaseDiagram) and phase.activation == "relu" and phase.homogeneous
    assert len(phase.sigma_b) == 121 and phase.sigma_w == pytest.approx([2 ** 0.5] * 121)
    assert phase.xmax == 3.0 and phase.ymax == pytest.approx(0.5)
    assert phase_diagram([]).sigma_w is None


def test_report_modules_import_no_model_or_theory_code():
    banned = ("torch", "initwise.graph", "initwise.theory", "initwise.datainit",
              "initwise.schemes", "initwise.measure")
    for path in sorted(REPORT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
    code = ("import sys\nimport initwise.report\n"
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('initwise.graph', "
            "'initwise.theory'))]\nassert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
