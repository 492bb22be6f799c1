"""Fixtures for initwise.data tests: the slow reference twins and a file writer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_REF = Path(__file__).resolve().parents[1] / "reference" / "data_ref.py"


@pytest.fixture(scope="session")
def ref():
    """tests/reference/data_ref.py, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("initwise_tests_data_ref", _REF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def write(tmp_path):
    """write(name, text_or_bytes) -> str path of a new file under tmp_path."""

    def _write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return _write
