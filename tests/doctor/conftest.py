"""Shared helpers for the doctor tests: the zoo's setup builders (benchmarks/zoo_cases.py)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
torch.set_num_threads(1)
