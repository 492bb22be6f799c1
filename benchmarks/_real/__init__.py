"""Helpers of benchmarks/real_models.py (issue 15): tasks, model zoo, runs, report."""
