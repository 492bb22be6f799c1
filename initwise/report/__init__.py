"""Rendering diagnoses and init reports: terminal text, self-contained HTML, JSON schemas.

Renderers only read plain data (``Finding``, ``LayerStats``, ``InitReport``, a :class:`Page`);
they never touch a model and never call the theory: the phase diagram arrives computed
(:func:`initwise.theory_points.phase_diagram`).
"""

from initwise.report.html import render_html
from initwise.report.page import Page, PhaseDiagram
from initwise.report.schema import DIAGNOSIS_SCHEMA, INIT_REPORT_SCHEMA, validate
from initwise.report.terminal import render_terminal

__all__ = [
    "DIAGNOSIS_SCHEMA", "INIT_REPORT_SCHEMA", "Page", "PhaseDiagram", "render_html",
    "render_terminal", "validate",
]
