"""Speed of the theory engine: a 200-point critical line (target: well under a second).

Run: ``python benchmarks/theory_speed.py``. Prints wall times (best of 3) for critical lines
of smooth and kinked activations, a fixed point, a kinked correlation map and depth scales.
Pin BLAS/OpenMP threads to 1 on a shared machine (``OMP_NUM_THREADS=1``); say what else ran.
"""

from __future__ import annotations

import time

import numpy as np

from initwise.theory import c_map, critical_line, depth_scales, fixed_point


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    sigma_b = np.linspace(0.0, 2.0, 200)
    critical_line("tanh", [0.1])  # warm caches (quadrature rules, imports)
    rows = [
        ("critical_line tanh, 200 points", lambda: critical_line("tanh", sigma_b)),
        ("critical_line erf, 200 points", lambda: critical_line("erf", sigma_b)),
        ("critical_line hardtanh, 200 points", lambda: critical_line("hardtanh", sigma_b)),
        ("critical_line elu, 200 points", lambda: critical_line("elu", sigma_b)),
        ("fixed_point tanh", lambda: fixed_point("tanh", 1.5, 0.3)),
        ("c_map relu, 50 correlations", lambda: c_map("relu", np.linspace(-1, 1, 50), 1.0, 1.4)),
        ("depth_scales tanh (chaotic)", lambda: depth_scales("tanh", 2.5, 0.3)),
    ]
    for label, fn in rows:
        print(f"{label:<40} {_best(fn) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
