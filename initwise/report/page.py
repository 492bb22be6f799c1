"""The page record the HTML renderer reads: everything on one report page, as plain data.

Whoever measures builds the page (``initwise demo``, ``initwise doctor --html``, a notebook);
:func:`initwise.report.render_html` only lays it out. The phase diagram arrives computed
(:class:`PhaseDiagram`, built by :func:`initwise.theory_points.phase_diagram`), so the renderer
never reads a model or calls the theory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page", "PhaseDiagram"]


@dataclass(frozen=True)
class PhaseDiagram:
    """The model's layers on the mean-field (sigma_w, sigma_b) plane, with the critical line.

    Attributes:
        points: one dict per weight layer (``name``, ``kind``, ``fan_in``, ``sigma_w``,
            ``sigma_b``, ``activation``, ``role``), as from
            :func:`initwise.theory_points.phase_points`.
        points_before: the same before a change (drawn hollow), or ``None``.
        activation: the dominant hidden activation the line is drawn for (``None``: none found).
        sigma_b: the sigma_b grid of the line.
        sigma_w: sigma_w on the edge of chaos at each grid point (``None`` entries where the
            theory has none); ``None`` when the theory does not know the activation.
        homogeneous: the activation is positively homogeneous (the line is vertical).
        xmax, ymax: the plot's extent.
    """

    points: list[dict[str, Any]]
    points_before: list[dict[str, Any]] | None = None
    activation: str | None = None
    sigma_b: list[float] = field(default_factory=list)
    sigma_w: list[float | None] | None = None
    homogeneous: bool = False
    xmax: float = 3.0
    ymax: float = 0.5


@dataclass
class Page:
    """One HTML report page (every section is shown when its data is there).

    Attributes:
        diagnosis: the main :class:`initwise.doctor.Diagnosis` (``None`` for an init page).
        before: a Diagnosis measured before a change (defaults to ``diagnosis`` when ``after``
            is given).
        after: a Diagnosis measured after the change; per-layer plots then overlay both.
        init_report: an :class:`initwise.InitReport` to show.
        title: the page title (default from the content).
        labels: legend names of (before, after). Defaults to ``("before", "after")``.
        phase: the phase diagram (:class:`PhaseDiagram`), or ``None``.
        curves: learning curves ``{"loss": {label: (steps, values)}, "accuracy": {label:
            (steps, values)}, "prior": float, "x_label": str}``.
        summary: a headline table ``{"header": [...], "rows": [[...]], "note": str}``.
        intro: one paragraph of plain text under the verdict (escaped when rendered).
        data_stats: whole-file sparsity/scale curves
            (:func:`initwise.report.profile.stats_profile`).
    """

    diagnosis: Any = None
    before: Any = None
    after: Any = None
    init_report: Any = None
    title: str | None = None
    labels: tuple[str, str] = ("before", "after")
    phase: PhaseDiagram | None = None
    curves: dict | None = None
    summary: dict | None = None
    intro: str = ""
    data_stats: dict | None = None

    @classmethod
    def of(cls, obj: Any, **fields: Any) -> Page:
        """A page about ``obj`` (a Diagnosis or an InitReport) plus the other ``fields``.

        Raises:
            TypeError: if ``obj`` is neither, or for a field a Page does not have.
        """
        if _is_init_report(obj):
            fields["init_report"] = obj
            return cls(**fields)
        if hasattr(obj, "findings") and hasattr(obj, "layers"):
            return cls(diagnosis=obj, **fields)
        raise TypeError(f"render_html: expected a Page, a Diagnosis or an InitReport, got "
                        f"{type(obj).__name__}")


def _is_init_report(obj: Any) -> bool:
    return hasattr(obj, "params") and hasattr(obj, "layers") and hasattr(obj, "loss")
