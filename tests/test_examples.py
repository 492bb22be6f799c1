"""The example scripts run (CI runs them), and print what they promise."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_edge_of_chaos_example_prints_the_tanh_critical_point():
    out = _run("edge_of_chaos.py")
    assert "sigma_b=0.0   edge of chaos at sigma_w=1.0000" in out


def test_doctor_fix_example_clears_every_fixed_code():
    out = _run("doctor_fix.py")
    assert "data.unscaled" in out
    assert out.strip().endswith("after: []")


@pytest.mark.parametrize("max_docs", ["1500"])
def test_sparse_text_example_starts_at_the_label_prior(max_docs):
    out = _run("sparse_text.py", "--max-docs", max_docs)
    assert "test accuracy after one epoch" in out
