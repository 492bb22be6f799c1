"""The doctor on a broken setup (raw, badly scaled tabular columns), its fix, and a re-check.

Run: python examples/doctor_fix.py
"""

import torch
from torch import nn

import initwise


def main() -> None:
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(0, 9, 16)  # columns from 1 to 1e9, as in raw counts and sizes
    x = torch.rand(512, 16, generator=g) * scales
    y = (x[:, 3] / scales[3] + x[:, 7] / scales[7] > 1).long()
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 2))
    diagnosis = initwise.doctor(model, (x, y))
    print(diagnosis)
    fixed = diagnosis.fix(model, (x, y))
    print("applied:", fixed)
    after = initwise.doctor(model, (x, y))
    print("codes before:", sorted(diagnosis.codes), "after:", sorted(after.codes))


if __name__ == "__main__":
    main()
