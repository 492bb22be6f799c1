"""Data sets and configurations of the trainability benchmark (issue 4's five families).

Budgets were fixed before any run from the wall-clock target (all families, 3 seeds, 2 CPU cores,
<= ~40 min) and are never tuned on the test split. Splits: ``Dataset.split(0.2, seed=0)``
(stratified for classes), the same for every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from _trainability.models import BagMLP, BagResMLP, PlainMLP, ResMLP
from _trainability.train import Budget

FAMILIES = ("text", "ctr", "tabular", "deep", "residual")
DEEP_DEPTHS = (12, 24, 48)
DEEP_ACTS = ("relu", "tanh", "gelu", "selu")


@dataclass
class Config:
    name: str
    family: str
    data: str
    layout: str
    task: str
    metric: str
    act: str
    depth: int
    budget: Budget
    build: Any = field(repr=False)  # (n_features, n_out) -> nn.Module
    model_desc: str = ""


def load_data(name: str, quick: bool, ctr_rows: int | None = None) -> tuple[Any, Any]:
    """``(train, test)`` Datasets for a data key (``ctr_rows``: the CTR family's size)."""
    from initwise.data import Dataset
    from initwise.data.builtin import ctr_synthetic, stdlib_text

    if name == "stdlib_text":
        ds = stdlib_text(2**18, seed=0, max_docs=3000 if quick else None)
    elif name == "ctr":
        ds = ctr_synthetic(ctr_rows or (5_000 if quick else 100_000), 24, 2**20, seed=0)
    elif name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        raw = load_breast_cancer()
        ds = Dataset(
            raw.data,
            raw.target.astype(np.int64),
            name="breast_cancer",
            class_names=list(raw.target_names),
        )
    elif name == "diabetes":
        from sklearn.datasets import load_diabetes

        raw = load_diabetes(scaled=False)
        ds = Dataset(raw.data, raw.target.astype(np.float32), name="diabetes")
    else:
        raise ValueError(f"data: unknown {name!r}")
    return ds.split(0.2, seed=0)


def _cfg(name: str, data: str, layout: str, task: str, metric: str, act: str, depth: int,
         budget: Budget, build: Any, desc: str) -> Config:
    return Config(name, name.split("/")[0], data, layout, task, metric, act, depth, budget, build,
                  desc)


def _text_and_ctr(families: list[str], q: bool) -> list[Config]:
    out = []
    if "text" in families:
        out.append(_cfg(
            "text/bag+4x64-relu", "stdlib_text", "bag", "classification", "acc", "relu", 6,
            Budget(1 if q else 3, 128, sgd_lr=0.05),
            lambda n, c: BagMLP(n, 64, 4, c, "relu"),
            "EmbeddingBag(2^18,64,sum,sparse) -> 4x[ReLU, Linear(64)] -> ReLU -> Linear(C)"))
    if "ctr" in families:
        out.append(_cfg(
            "ctr/bag+2x32-relu", "ctr", "bag", "classification", "auc", "relu", 4,
            Budget(1 if q else 2, 512, sgd_lr=0.05),
            lambda n, c: BagMLP(n, 32, 2, c, "relu"),
            "EmbeddingBag(2^20,32,sum,sparse) -> 2x[ReLU, Linear(32)] -> ReLU -> Linear(2)"))
    return out


def _tabular(families: list[str], q: bool) -> list[Config]:
    out = []
    if "tabular" in families:
        for data, task, metric in (("breast_cancer", "classification", "acc"),
                                   ("diabetes", "regression", "r2")):
            out.append(_cfg(
                f"tabular/{data}-mlp3-relu", data, "dense", task, metric, "relu", 3,
                Budget(1 if q else 60, 32, sgd_lr=0.01),
                lambda n, c: PlainMLP(n, 64, 3, c, "relu"),
                "raw features -> 2x[Linear(64), ReLU] -> Linear"))
    if "deep" in families:
        for depth in DEEP_DEPTHS[:1] if q else DEEP_DEPTHS:
            for act in DEEP_ACTS[:2] if q else DEEP_ACTS:
                out.append(_cfg(
                    f"deep/breast_cancer-mlp{depth}-{act}", "breast_cancer", "dense",
                    "classification", "acc", act, depth, Budget(1 if q else 15, 64, sgd_lr=0.01),
                    lambda n, c, d=depth, a=act: PlainMLP(n, 64, d, c, a),
                    f"raw features -> {depth - 1}x[Linear(64), {act}] -> Linear"))
    return out


def _residual(families: list[str], q: bool) -> list[Config]:
    if "residual" not in families:
        return []
    block = "32x[x + Linear(ReLU(Linear(x)))] -> ReLU -> Linear"
    return [
        _cfg("residual/text-bag+32res-relu", "stdlib_text", "bag", "classification", "acc",
             "relu", 66, Budget(1 if q else 2, 128, sgd_lr=0.05),
             lambda n, c: BagResMLP(n, 64, 32, c, "relu"),
             f"EmbeddingBag(2^18,64,sum,sparse) -> {block}"),
        _cfg("residual/breast_cancer-32res-relu", "breast_cancer", "dense", "classification",
             "acc", "relu", 66, Budget(1 if q else 15, 64, sgd_lr=0.01),
             lambda n, c: ResMLP(n, 64, 32, c, "relu"), f"raw -> Linear(64) -> {block}"),
    ]


def configs(families: list[str], quick: bool) -> list[Config]:
    """Every configuration of the requested families, in a fixed order."""
    return (_text_and_ctr(families, quick) + _tabular(families, quick)
            + _residual(families, quick))
