"""The doctor zoo: broken setups with one planted pitfall each, and healthy setups.

Each builder takes a seed and returns a :class:`Setup` (model, batch, optimizer, loss_fn).
``BROKEN`` maps name -> (builder, expected codes, preset); ``HEALTHY`` name -> (builder, preset).
Used by ``benchmarks/doctor_zoo.py`` and ``tests/doctor``. Sizes are small (CPU, seconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


@dataclass
class Setup:
    """One diagnosed setup. ``batch`` is what the doctor sees; ``train``/``test`` (lists of
    batches), when given, are what ``doctor_zoo.py --outcomes`` trains and scores on (else it
    trains full-batch on ``batch`` and scores the fit); ``steps`` overrides its step budget."""

    model: nn.Module
    batch: Any
    optimizer: Any = None
    loss_fn: Any = None
    train: list | None = None
    test: list | None = None
    steps: int | None = None


N = 256


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp(widths: list[int], act: Callable[[], nn.Module], init: str | float = "kaiming",
         bias: float = 0.0, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        last = i == len(widths) - 2
        with torch.no_grad():
            if init == "kaiming":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
                if last:
                    lin.weight.mul_(1 / math.sqrt(2))
            elif init == "xavier":
                nn.init.xavier_normal_(lin.weight, gain=5 / 3 if not last else 1.0)
            elif init == "lecun":
                nn.init.normal_(lin.weight, 0, 1 / math.sqrt(widths[i]))
            elif isinstance(init, float):
                nn.init.normal_(lin.weight, 0, init / math.sqrt(widths[i]))
            if init != "default":
                lin.bias.fill_(0.0 if last else bias)
        layers.append(lin)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


def _cls_data(seed: int, d: int = 32, c: int = 10, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return x, y


def _bag(seed: int, n_features: int = 2 ** 16, nnz: int = 12, n: int = N):
    g = _gen(seed)
    idx = torch.randint(0, n_features, (n * nnz,), generator=g)
    offsets = torch.arange(0, n * nnz, nnz)
    w = torch.randint(1, 4, (n * nnz,), generator=g).float()
    y = torch.randint(0, 20, (n,), generator=g)
    return (idx, offsets, w), y


class BagNet(nn.Module):
    def __init__(self, n_features: int, std: float | None, depth: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.EmbeddingBag(n_features, 64, mode="sum")
        if std is not None:
            nn.init.normal_(self.emb.weight, 0, std)
        self.body = _mlp([64] * depth + [20], nn.ReLU, seed=seed)

    def forward(self, idx, offsets, weights):
        return self.body(torch.relu(self.emb(idx, offsets, per_sample_weights=weights)))


# ---------------------------------------------------------------------------------- healthy
def h_mlp_kaiming(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 128, 10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9))


def h_mlp_deep_kaiming(seed):
    x, y = _cls_data(seed)
    m = _mlp([32] + [128] * 12 + [10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.01))


def h_tanh_xavier(seed):
    g = _gen(seed)
    x = torch.randn(N, 16, generator=g)
    y = torch.randn(N, 1, generator=g)
    m = _mlp([16] + [64] * 6 + [1], nn.Tanh, init="xavier", seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.01))


def h_gelu_adam(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.GELU, seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-3))


class SmallCNN(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.f = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.f(x)


def h_cnn_bn(seed):
    g = _gen(seed)
    x = torch.randn(64, 3, 12, 12, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    m = SmallCNN(seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9))


class TinyTransformer(nn.Module):
    def __init__(self, vocab=500, d=32, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 5)

    def forward(self, ids):
        return self.head(self.enc(self.emb(ids)).mean(1))


def h_transformer(seed):
    g = _gen(seed)
    ids = torch.randint(0, 500, (64, 16), generator=g)
    y = torch.randint(0, 5, (64,), generator=g)
    m = TinyTransformer(seed=seed)
    return Setup(m, (ids, y), torch.optim.Adam(m.parameters(), lr=1e-3))


class LSTMNet(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(300, 32)
        self.rnn = nn.LSTM(32, 64, batch_first=True)
        self.head = nn.Linear(64, 4)

    def forward(self, ids):
        out, _ = self.rnn(self.emb(ids))
        return self.head(out[:, -1])


def h_lstm(seed):
    g = _gen(seed)
    ids = torch.randint(0, 300, (64, 20), generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    m = LSTMNet(seed)
    return Setup(m, (ids, y), torch.optim.Adam(m.parameters(), lr=1e-3))


class ResMLP(nn.Module):
    def __init__(self, d=64, blocks=6, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.inp = nn.Linear(32, d)
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            b = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
            nn.init.kaiming_normal_(b[1].weight, nonlinearity="relu")
            nn.init.normal_(b[3].weight, 0, 0.2 / math.sqrt(d))
            self.blocks.append(b)
        self.out = nn.Linear(d, 10)

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = h + b(h)
        return self.out(h)


def h_residual(seed):
    x, y = _cls_data(seed)
    m = ResMLP(seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-3))


class EmbModel(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(1000, 32)
        self.mlp = _mlp([32, 64, 3], nn.ReLU, seed=seed)

    def forward(self, ids):
        return self.mlp(self.emb(ids).mean(1))


def h_embedding(seed):
    g = _gen(seed)
    ids = torch.randint(0, 1000, (N, 8), generator=g)
    y = torch.randint(0, 3, (N,), generator=g)
    m = EmbModel(seed)
    return Setup(m, (ids, y), torch.optim.SGD(m.parameters(), lr=0.1))


def h_sparse_bag_kaiming(seed):
    batch = _bag(seed, 2 ** 16)
    m = BagNet(2 ** 16, math.sqrt(2 / 2 ** 16), seed=seed)
    return Setup(m, batch, torch.optim.Adam(m.parameters(), lr=1e-3))


def _csr(seed: int, n_features: int = 2 ** 15, nnz: int = 10, n: int = N):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, n_features, n * nnz)
    vals = rng.integers(1, 4, n * nnz).astype(np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n_features))


class SparseNet(nn.Module):
    def __init__(self, n_features: int, std: float | None, seed: int = 0):
        from initwise.nn import SparseLinear

        super().__init__()
        torch.manual_seed(seed)
        self.inp = SparseLinear(n_features, 64)
        if std is not None:
            nn.init.normal_(self.inp.weight, 0, std)
        self.body = _mlp([64, 64, 5], nn.ReLU, seed=seed)

    def forward(self, x):
        return self.body(torch.relu(self.inp(x)))


def h_sparse_linear(seed):
    x = _csr(seed)
    y = np.random.default_rng(seed).integers(0, 5, N)
    m = SparseNet(2 ** 15, math.sqrt(2 / 2 ** 15), seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05))


def h_binary_bce(seed):
    g = _gen(seed)
    x = torch.randn(N, 24, generator=g)
    y = (torch.rand(N, 1, generator=g) < 0.4).float()
    m = _mlp([24, 64, 64, 1], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-3))


def h_tabular_standardized(seed):
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(3, 2, (N, 16))
    x = (raw - raw.mean(0)) / raw.std(0)
    y = rng.integers(0, 12, N)
    m = _mlp([16, 128, 128, 128, 12], nn.ReLU, seed=seed)
    return Setup(m, (x.astype(np.float32), y), torch.optim.SGD(m.parameters(), lr=0.01))


class DictModel(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.net = _mlp([20, 64, 64, 6], nn.SiLU, seed=seed)

    def forward(self, features, mask=None):
        return {"logits": self.net(features), "hidden": None}


def h_dict_io(seed):
    g = _gen(seed)
    x = torch.randn(N, 20, generator=g)
    y = torch.randint(0, 6, (N,), generator=g)
    m = DictModel(seed)
    return Setup(m, {"features": x, "labels": y}, torch.optim.Adam(m.parameters(), lr=1e-3))


def h_torch_default_shallow(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 64, 10], nn.ReLU, init="default", seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.1))


def h_deep20_small_batch(seed):
    x, y = _cls_data(seed, n=32)
    m = _mlp([32] + [128] * 20 + [10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9))


class FixupMLP(nn.Module):
    """Residual MLP without normalization, branch outputs zero-initialized (Fixup/SkipInit)."""

    def __init__(self, d=64, blocks=8, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.inp = nn.Linear(32, d)
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            b = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
            nn.init.kaiming_normal_(b[0].weight, nonlinearity="relu")
            nn.init.zeros_(b[2].weight)
            nn.init.zeros_(b[2].bias)
            self.blocks.append(b)
        self.out = nn.Linear(d, 10)

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = h + b(torch.relu(h))
        return self.out(h)


def h_fixup(seed):
    x, y = _cls_data(seed)
    m = FixupMLP(seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05))


def h_zero_head(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    nn.init.zeros_(m[-1].weight)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05))


class PlainCNN(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        convs = [nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1),
                 nn.Conv2d(16, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)]
        for c in convs:
            nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
            nn.init.zeros_(c.bias)
        self.f = nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(), nn.MaxPool2d(2),
                               convs[2], nn.ReLU(), convs[3], nn.ReLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.f(x)


def h_cnn_kaiming(seed):
    g = _gen(seed)
    x = torch.randn(32, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    m = PlainCNN(seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9))


def h_tanh_lecun(seed):
    x, y = _cls_data(seed)
    m = _mlp([32] + [128] * 10 + [10], nn.Tanh, init="lecun", seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-3))


class GRUNet(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.GRU(12, 48, num_layers=2, batch_first=True)
        self.head = nn.Linear(48, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def h_gru_regression(seed):
    g = _gen(seed)
    x = torch.randn(64, 15, 12, generator=g)
    y = torch.randn(64, 1, generator=g)
    m = GRUNet(seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-3))


def h_leaky_mlp(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 256, 256, 256, 10], lambda: nn.LeakyReLU(0.1), seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=0.05))


def h_sparse_bag_datainit(seed):
    import warnings

    from initwise.datainit import init

    batch = _bag(seed, 2 ** 16)
    m = BagNet(2 ** 16, None, depth=4, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init(m, batch, generator=seed)
    return Setup(m, batch, torch.optim.Adam(m.parameters(), lr=1e-3))


def h_tabular_raw_datainit(seed):
    import warnings

    from initwise.datainit import init

    s = b_unscaled_tabular(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init(s.model, s.batch, generator=seed)
    s.optimizer = torch.optim.Adam(s.model.parameters(), lr=1e-3)
    return s


HEALTHY: dict[str, tuple[Callable[[int], Setup], str]] = {
    "mlp_kaiming": (h_mlp_kaiming, "full"),
    "mlp_deep12_kaiming": (h_mlp_deep_kaiming, "full"),
    "tanh_xavier_6": (h_tanh_xavier, "full"),
    "gelu_adam": (h_gelu_adam, "full"),
    "cnn_batchnorm": (h_cnn_bn, "full"),
    "transformer_encoder": (h_transformer, "full"),
    "lstm": (h_lstm, "full"),
    "residual_mlp": (h_residual, "full"),
    "embedding_model": (h_embedding, "full"),
    "sparse_bag_kaiming": (h_sparse_bag_kaiming, "full"),
    "sparse_linear_kaiming": (h_sparse_linear, "full"),
    "binary_bce": (h_binary_bce, "full"),
    "tabular_standardized": (h_tabular_standardized, "full"),
    "dict_io_silu": (h_dict_io, "full"),
    "torch_default_shallow": (h_torch_default_shallow, "full"),
    "mlp_deep20_batch32": (h_deep20_small_batch, "full"),
    "fixup_residual_zero_branch": (h_fixup, "full"),
    "zero_init_head": (h_zero_head, "full"),
    "cnn_kaiming_no_norm": (h_cnn_kaiming, "full"),
    "tanh_lecun_10": (h_tanh_lecun, "full"),
    "gru_regression": (h_gru_regression, "full"),
    "leaky_relu_wide": (h_leaky_mlp, "full"),
    "sparse_bag_datainit": (h_sparse_bag_datainit, "full"),
}


# ---------------------------------------------------------------------------------- broken
def b_sparse_bag_default(seed):
    return Setup(BagNet(2 ** 16, None, seed=seed), _bag(seed, 2 ** 16))


def b_sparse_linear_unit(seed):
    x = _csr(seed)
    y = np.random.default_rng(seed).integers(0, 5, N)
    return Setup(SparseNet(2 ** 15, 1.0, seed), (x, y))


def b_sparse_dense_layout(seed):
    x = torch.from_numpy(_csr(seed, 4096, 8).toarray())
    y = torch.randint(0, 5, (N,), generator=_gen(seed))
    m = _mlp([4096, 64, 64, 5], nn.ReLU, seed=seed)
    nn.init.normal_(m[0].weight, 0, 1.0)
    return Setup(m, (x, y))


def b_tanh_chaotic(seed):
    g = _gen(seed)
    x = torch.randn(N, 32, generator=g)
    y = torch.randn(N, 1, generator=g)
    m = _mlp([32] + [64] * 30 + [1], nn.Tanh, init=3.0, seed=seed)
    return Setup(m, (x, y))


def b_tanh_ordered(seed):
    g = _gen(seed)
    x = torch.randn(N, 32, generator=g)
    y = torch.randn(N, 1, generator=g)
    m = _mlp([32] + [64] * 30 + [1], nn.Tanh, init=0.5, seed=seed)
    return Setup(m, (x, y))


def b_relu_negative_bias(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 128, 10], nn.ReLU, bias=-3.0, seed=seed)
    return Setup(m, (x, y))


def b_unscaled_tabular(seed):
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, 9, 16)
    x = (rng.lognormal(0, 1, (N, 16)) * scales).astype(np.float32)
    y = rng.integers(0, 12, N)
    return Setup(_mlp([16, 128, 128, 12], nn.ReLU, seed=seed), (x, y))


def b_nan_feature(seed):
    x, y = _cls_data(seed)
    x[:, 7] = float("nan")
    return Setup(_mlp([32, 64, 10], nn.ReLU, seed=seed), (x, y))


def b_logits_x100(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    with torch.no_grad():
        m[-1].weight.mul_(100)
    return Setup(m, (x, y))


def b_wrong_loss(seed):
    g = _gen(seed)
    x = torch.randn(N, 24, generator=g)
    y = (torch.rand(N, 1, generator=g) < 0.5).float()
    m = _mlp([24, 64, 64, 1], nn.ReLU, seed=seed)
    with torch.no_grad():
        m[-1].weight.mul_(3)
    return Setup(m, (x, y), loss_fn="mse")


class TwoBranch(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.main = _mlp([32, 64, 10], nn.ReLU, seed=seed)
        self.aux = nn.Linear(32, 10)

    def forward(self, x):
        return self.main(x)


def b_unused_branch(seed):
    x, y = _cls_data(seed)
    return Setup(TwoBranch(seed), (x, y))


def b_exploding_lr(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=50.0))


def b_adam_lr_one(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1.0))


def b_lr_zero(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    return Setup(m, (x, y), torch.optim.Adam(m.parameters(), lr=1e-12))


def b_bf16(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed).to(torch.bfloat16)
    return Setup(m, (x.to(torch.bfloat16), y), torch.optim.SGD(m.parameters(), lr=1e-3))


def b_label_imbalance(seed):
    g = _gen(seed)
    x = torch.randn(N, 24, generator=g)
    y = (torch.rand(N, generator=g) < 0.01).long()
    y[:2] = 1
    return Setup(_mlp([24, 64, 64, 2], nn.ReLU, seed=seed), (x, y))


def b_bce_rare(seed):
    g = _gen(seed)
    x = torch.randn(N, 24, generator=g)
    y = (torch.rand(N, 1, generator=g) < 0.01).float()
    y[:2] = 1
    return Setup(_mlp([24, 64, 64, 1], nn.ReLU, seed=seed), (x, y))


def b_torch_default_deep(seed):
    x, y = _cls_data(seed)
    return Setup(_mlp([32] + [128] * 10 + [10], nn.ReLU, init="default", seed=seed), (x, y))


def b_relu_exploding(seed):
    x, y = _cls_data(seed)
    return Setup(_mlp([32] + [128] * 10 + [10], nn.ReLU, init=2 * math.sqrt(2), seed=seed),
                 (x, y))


def b_positive_bias_collapse(seed):
    x, y = _cls_data(seed)
    return Setup(_mlp([32] + [128] * 6 + [10], nn.ReLU, init=0.2, bias=5.0, seed=seed), (x, y))


def b_uncentered(seed):
    g = _gen(seed)
    x = torch.randn(N, 32, generator=g) + 10.0
    y = torch.randint(0, 10, (N,), generator=g)
    return Setup(_mlp([32, 128, 128, 10], nn.ReLU, seed=seed), (x, y))


def b_constant_features(seed):
    x, y = _cls_data(seed, d=80)
    x[:, 20:] = 0.0
    return Setup(_mlp([80, 128, 128, 10], nn.ReLU, seed=seed), (x, y))


def b_sigmoid_saturated(seed):
    g = _gen(seed)
    x = torch.randn(N, 32, generator=g)
    y = torch.randn(N, 1, generator=g)
    return Setup(_mlp([32, 64, 64, 64, 1], nn.Sigmoid, init=10.0, seed=seed), (x, y))


def b_mse_raw_targets(seed):
    g = _gen(seed)
    x = torch.randn(N, 16, generator=g)
    y = 50.0 + torch.randn(N, 1, generator=g)
    return Setup(_mlp([16, 64, 64, 1], nn.ReLU, seed=seed), (x, y))


class DeadCNN(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        with torch.no_grad():
            self.c2.bias.fill_(-5.0)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.head(h.mean((2, 3)))


def b_dead_cnn(seed):
    g = _gen(seed)
    x = torch.randn(64, 3, 12, 12, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    return Setup(DeadCNN(seed), (x, y))


def b_nan_weight(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 64, 64, 10], nn.ReLU, seed=seed)
    with torch.no_grad():
        m[2].weight[0, 0] = float("nan")
    return Setup(m, (x, y))


def b_tanh_deep_theory(seed):
    """20 tanh layers, sigma_w = 1, sigma_b = 1: ordered phase, trainable depth 6 xi_c ~ 6.5."""
    g = _gen(seed)
    x = torch.randn(N, 32, generator=g)
    y = torch.randn(N, 1, generator=g)
    m = _mlp([32] + [64] * 20 + [1], nn.Tanh, init=1.0, seed=seed)
    with torch.no_grad():
        for lin in m[:-1:2]:
            lin.bias.normal_(0, 1.0, generator=g)
    return Setup(m, (x, y), torch.optim.SGD(m.parameters(), lr=1e-3))


BROKEN: dict[str, tuple[Callable[[int], Setup], set[str], str]] = {
    "sparse_bag_default_init": (b_sparse_bag_default, {"data.sparse_fan_in"}, "standard"),
    "sparse_linear_unit_normal": (b_sparse_linear_unit, {"data.sparse_fan_in"}, "standard"),
    "sparse_dense_layout_unit": (b_sparse_dense_layout, {"data.sparse_fan_in"}, "standard"),
    "tanh30_chaotic_sw3": (b_tanh_chaotic, {"units.saturated", "grad.exploding"}, "standard"),
    "tanh30_ordered_sw05": (b_tanh_ordered, {"signal.vanishing"}, "standard"),
    "relu_negative_bias": (b_relu_negative_bias, {"units.dead"}, "standard"),
    "unscaled_tabular": (b_unscaled_tabular, {"data.unscaled"}, "standard"),
    "nan_feature": (b_nan_feature, {"data.nonfinite", "loss.nonfinite"}, "standard"),
    "logits_x100": (b_logits_x100, {"output.logit_scale", "loss.init_mismatch"}, "standard"),
    "wrong_loss_mse_on_binary": (b_wrong_loss, {"loss.init_mismatch"}, "standard"),
    "unused_branch": (b_unused_branch, {"grad.none"}, "standard"),
    "exploding_lr_sgd": (b_exploding_lr, {"update.ratio"}, "full"),
    "exploding_lr_adam": (b_adam_lr_one, {"update.ratio"}, "full"),
    "zero_lr": (b_lr_zero, {"update.ratio"}, "full"),
    "bf16_underflow": (b_bf16, {"dtype.underflow"}, "full"),
    "label_imbalance_99_1": (b_label_imbalance, {"data.label_imbalance", "loss.init_mismatch"},
                             "standard"),
    "bce_rare_positive": (b_bce_rare, {"data.label_imbalance", "loss.init_mismatch"},
                          "standard"),
    "torch_default_deep10": (b_torch_default_deep, {"signal.vanishing"}, "standard"),
    "relu_exploding_gain": (b_relu_exploding, {"signal.exploding"}, "standard"),
    "positive_bias_collapse": (b_positive_bias_collapse, {"signal.correlation_collapse"},
                               "standard"),
    "uncentered_inputs": (b_uncentered, {"data.uncentered"}, "standard"),
    "constant_features": (b_constant_features, {"data.constant_feature"}, "standard"),
    "sigmoid_saturated": (b_sigmoid_saturated, {"units.saturated"}, "standard"),
    "mse_raw_targets": (b_mse_raw_targets, {"loss.init_mismatch"}, "standard"),
    "dead_cnn": (b_dead_cnn, {"units.dead"}, "standard"),
    "nan_weight": (b_nan_weight, {"loss.nonfinite"}, "standard"),
    "tanh20_ordered_bias_theory": (b_tanh_deep_theory, {"theory.depth"}, "full"),
}

#: Setups that are neither planted pitfalls nor healthy references: what the doctor says about
#: them is reported by ``doctor_zoo.py`` (not scored).
OBSERVATIONS: dict[str, tuple[Callable[[int], Setup], str]] = {
    "datainit_on_raw_tabular_adam": (h_tabular_raw_datainit, "full"),
}


def b_sigmoid_deep(seed):
    x, y = _cls_data(seed)
    torch.manual_seed(seed)
    m = _mlp([32] + [128] * 15 + [10], nn.Sigmoid, init=1.0, seed=seed)
    return Setup(m, (x, y))


BROKEN["sigmoid15_vanishing_grad"] = (b_sigmoid_deep, {"grad.vanishing"}, "standard")


def b_cnn_raw_pixels(seed):
    g = _gen(seed)
    x = torch.randint(0, 256, (32, 3, 16, 16), generator=g).float()
    y = torch.randint(0, 10, (32,), generator=g)
    return Setup(PlainCNN(seed), (x, y))


BROKEN["cnn_raw_pixels_0_255"] = (b_cnn_raw_pixels, {"data.unscaled"}, "standard")


def b_head_replaced_after_optimizer(seed):
    x, y = _cls_data(seed)
    m = _mlp([32, 128, 128, 10], nn.ReLU, seed=seed)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m[-1] = nn.Linear(128, 10)  # fine-tuning idiom gone wrong: new head after the optimizer
    return Setup(m, (x, y), opt)


BROKEN["head_replaced_after_optimizer"] = (b_head_replaced_after_optimizer, {"update.missing"},
                                           "standard")


# ---------------------------------------------------------------------------------- outcomes
# Setups that span the gap between the zoo's healthy and broken ones, for
# ``doctor_zoo.py --outcomes``: each has held-out data, so the outcome is a test accuracy.
# ``OUTCOME_TASKS`` maps name -> (builder, preset, task); setups of one task share data, model
# shape and budget and differ only in the init ("default": torch's; "datainit":
# ``initwise.init`` on 4 training batches).

def _datainit(s: Setup, seed: int) -> Setup:
    import warnings

    from initwise.datainit import init

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init(s.model, iter(s.train[:4]), batches=4, generator=seed)
    return s


def _demo_small(seed: int, depth: int, n_features: int = 4096) -> Setup:
    """The demo's model and data at reduced size: stdlib_text hashed to 4,096 columns,
    SparseLinear(4096, 128) + depth x Linear(128) + ReLU, torch's default init, Adam 1e-3, two
    epochs at batch 256 (the demo's recipe, dense gradients)."""
    from initwise.data.builtin import stdlib_text
    from initwise.demo import build_mlp

    data = stdlib_text(n_features, seed=0)
    train, test = data.split(0.2, seed=0)
    batches = list(train.batches(256, shuffle=True, seed=seed, layout="sparse"))
    batches += list(train.batches(256, shuffle=True, seed=seed + 1, layout="sparse"))
    m = build_mlp(n_features, data.n_classes, depth=depth, width=128, seed=seed,
                  sparse_grad=False)
    return Setup(m, batches[0], torch.optim.Adam(m.parameters(), lr=1e-3), train=batches,
                 test=list(test.batches(1024, layout="sparse")), steps=len(batches))


def _teacher_data(seed: int, d: int = 32, c: int = 10, n_train: int = 2048, n_test: int = 1024):
    g = _gen(1000 + seed)
    w1 = torch.randn(d, 64, generator=g) / math.sqrt(d)
    w2 = torch.randn(64, c, generator=g)
    x = torch.randn(n_train + n_test, d, generator=g)
    y = (torch.tanh(3 * x @ w1) @ w2).argmax(1)
    train = [(x[i:i + 128], y[i:i + 128]) for i in range(0, n_train, 128)]
    return train, [(x[n_train:], y[n_train:])]


def _teacher_mlp(seed: int, act: str, depth: int) -> Setup:
    """A depth-``depth`` MLP (width 128, torch's default init) on a random tanh teacher's
    10 classes (2,048 train / 1,024 test rows), Adam 1e-3, 200 steps at batch 128."""
    train, test = _teacher_data(seed)
    fn = nn.ReLU if act == "relu" else nn.Tanh
    m = _mlp([32] + [128] * depth + [10], fn, init="default", seed=seed)
    return Setup(m, train[0], torch.optim.Adam(m.parameters(), lr=1e-3), train=train,
                 test=test, steps=200)


def _variants(task: str, build: Callable[[int], Setup], preset: str = "standard"
              ) -> dict[str, tuple[Callable[[int], Setup], str, str]]:
    return {f"{task}_default": (build, preset, task),
            f"{task}_datainit": (lambda seed: _datainit(build(seed), seed), preset, task)}


OUTCOME_TASKS: dict[str, tuple[Callable[[int], Setup], str, str]] = {}
for _depth in (2, 4, 8):
    OUTCOME_TASKS.update(_variants(f"demo4096_depth{_depth}",
                                   lambda seed, d=_depth: _demo_small(seed, d)))
for _act in ("relu", "tanh"):
    for _depth in (4, 8, 16):
        OUTCOME_TASKS.update(_variants(f"teacher_{_act}{_depth}",
                                       lambda seed, a=_act, d=_depth: _teacher_mlp(seed, a, d)))

#: Setups only diagnosed (too large to train in the outcome budget): name -> (builder,
#: preset, the outcome measured elsewhere)
VERDICT_ONLY: dict[str, tuple[Callable[[int], Setup], str, str]] = {
    "demo_262144_depth8_default": (lambda seed: _demo_small(seed, 8, n_features=2 ** 18),
                                   "standard", "10.8 % vs 60.0 % test accuracy (the demo)"),
}
