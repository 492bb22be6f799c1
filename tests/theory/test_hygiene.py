"""initwise.theory is framework-free: importing it never imports torch."""

import subprocess
import sys


def test_theory_never_imports_torch():
    code = ("import sys, initwise.theory as t; t.edge_of_chaos('tanh', 0.1); "
            "t.theory_summary('relu'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_summary_reports_every_field():
    from initwise.theory import format_theory_summary, theory_summary

    s = theory_summary("tanh", sigma_b=0.05, depth=500, sigma_w=1.5)
    assert s["phase"] == "chaotic" and s["sigma_w_source"] == "given"
    assert s["depth_exceeds"] is True and s["max_trainable_depth"] < 500
    text = format_theory_summary(s)
    for word in ("q*", "chi_1", "V'(q*)", "phase", "xi_c", "edge of chaos", "EXCEEDS"):
        assert word in text
    relu = theory_summary("relu", sigma_b=0.1)
    assert relu["edge_of_chaos_sigma_w"] is None and "homogeneous" in relu["edge_of_chaos_note"]
    silu = theory_summary("silu", sigma_b=0.2)
    assert "unstable" in silu["edge_of_chaos_note"] and silu["sigma_w_source"] == "variance_gain"
