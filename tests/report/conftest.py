"""Loads the hand-built reports of fixtures.py for the renderer tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "report_fixtures", Path(__file__).resolve().parent / "fixtures.py")
F = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(F)


@pytest.fixture(scope="session")
def fx():
    """The fixtures module: ``fx.diagnosis()``, ``fx.init_report()``, ``fx.points()``..."""
    return F
