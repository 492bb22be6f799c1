"""Helpers of ``benchmarks/trainability.py``: models, baseline inits, training loop."""
