"""Data-aware init of a deep MLP on a 2^18-wide sparse bag-of-words input, then a short training.

Run: python examples/sparse_text.py [--max-docs N]
"""

import argparse

import torch
from torch import nn

import initwise
from initwise.data.builtin import stdlib_text


def build(n_features: int, n_classes: int, depth: int = 8, width: int = 64) -> nn.Module:
    layers: list[nn.Module] = [initwise.SparseLinear(n_features, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-docs", type=int, default=3000)
    args = parser.parse_args()
    torch.manual_seed(0)  # the example's own script-level seed (initwise never touches it)
    train, test = stdlib_text(max_docs=args.max_docs).split(0.2, seed=0)
    model = build(train.n_features, train.n_classes)
    report = initwise.init(model, train.batches(256, shuffle=True, seed=0), generator=0)
    print(report.loss)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in train.batches(128, shuffle=True, seed=1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in test.batches(512))
    print(f"test accuracy after one epoch: {hits / len(test):.3f}")


if __name__ == "__main__":
    main()
