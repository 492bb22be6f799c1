"""Shared fixtures for initwise.theory tests: the slow reference twins."""

import importlib.util
from pathlib import Path

import pytest

_REF = Path(__file__).resolve().parents[1] / "reference" / "theory_ref.py"


@pytest.fixture(scope="session")
def ref():
    """tests/reference/theory_ref.py as a module."""
    spec = importlib.util.spec_from_file_location("initwise_tests_theory_ref", _REF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
