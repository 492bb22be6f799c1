"""Rendering diagnoses and init reports: terminal text, self-contained HTML, JSON schemas.

Renderers only read plain data (``Finding``, ``LayerStats``, ``InitReport``); they never change a
model. :func:`initwise.report.points.phase_points` is the one reader of model weights here.
"""

from initwise.report.html import render_html
from initwise.report.schema import DIAGNOSIS_SCHEMA, INIT_REPORT_SCHEMA, validate
from initwise.report.terminal import render_terminal

__all__ = ["DIAGNOSIS_SCHEMA", "INIT_REPORT_SCHEMA", "render_html", "render_terminal", "validate"]
