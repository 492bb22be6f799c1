"""Property tests (hypothesis) over random architectures and random inputs.

Architectures: depth 1-20 blocks of Linear, residual, LayerNorm/BatchNorm, Conv1d, attention,
LSTM/GRU, with random activations, frozen layers and tied weights, behind a dense, sparse
(torch COO into :class:`initwise.nn.SparseLinear`) or EmbeddingBag first layer. Inputs: constant
columns, heavy tails (Student t, 1.5 degrees of freedom), column scales 1e-2..1e3.

Properties: ``init`` never writes a NaN/Inf parameter and never ends above the structural init's
calibration loss -- or above the loss of the constant predictor it aims at, when the structural
head was below it by luck (``initwise.datainit`` rule 8: a random head below the label prior on
the calibration rows is luck, and the head is brought to the prior); ``doctor`` never crashes,
never changes the model and leaves no hook; the same seed gives the same bits.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise
from initwise.datainit._output import shrinkage
from initwise.nn import SparseLinear, has_input_standardization

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given, settings, HealthCheck = hypothesis.given, hypothesis.settings, hypothesis.HealthCheck



def fast(n: int):
    """Derandomized (CI-stable), no example database, ``n`` examples: seconds, not minutes."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
        "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "identity": nn.Identity}
BLOCKS = ("linear", "residual", "layernorm", "batchnorm", "conv", "attention", "lstm", "gru",
          "tied")
H = 8  # hidden width


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread (tiny kernels; two threads on a busy shared core are 1000x slower);
    :func:`test_same_bits_across_thread_counts` sets its own."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Block(nn.Module):
    """One hidden block on (N, H) features."""

    def __init__(self, kind: str, act: str, tie_to: nn.Linear | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.act = ACTS[act]()
        if kind in ("linear", "tied"):
            self.lin = nn.Linear(H, H)
            if kind == "tied" and tie_to is not None:
                self.lin.weight = tie_to.weight
        elif kind == "residual":
            self.a, self.b = nn.Linear(H, H), nn.Linear(H, H)
        elif kind == "layernorm":
            self.norm = nn.LayerNorm(H)
        elif kind == "batchnorm":
            self.norm = nn.BatchNorm1d(H)
        elif kind == "conv":
            self.conv, self.proj = nn.Conv1d(1, 2, 3, padding=1), nn.Linear(2 * H, H)
        elif kind == "attention":
            self.attn = nn.MultiheadAttention(H, 2, batch_first=True)
        else:
            self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(H, H, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kind
        if k in ("linear", "tied"):
            return self.act(self.lin(x))
        if k == "residual":
            return x + self.b(self.act(self.a(x)))
        if k in ("layernorm", "batchnorm"):
            return self.act(self.norm(x))
        if k == "conv":
            return self.proj(self.act(self.conv(x.unsqueeze(1))).flatten(1))
        seq = torch.stack([x, x.flip(0)], 1)  # (N, 2, H)
        if k == "attention":
            return self.attn(seq, seq, seq, need_weights=False)[0][:, -1]
        return self.rnn(seq)[0][:, -1]


class Net(nn.Module):
    def __init__(self, first: str, n_in: int, blocks: list[tuple[str, str]], n_out: int) -> None:
        super().__init__()
        self.first_kind = first
        if first == "dense":
            self.first = nn.Linear(n_in, H)
        elif first == "sparse":
            self.first = SparseLinear(n_in, H)
        else:
            self.first = nn.EmbeddingBag(n_in, H, mode="sum")
        tie = None
        body = []
        for kind, act in blocks:
            b = Block(kind, act, tie)
            if kind == "linear" and tie is None:
                tie = b.lin
            body.append(b)
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(H, n_out)

    def forward(self, x, offsets=None):
        h = self.first(x, offsets) if self.first_kind == "bag" else self.first(x)
        return self.head(self.body(F.relu(h)))


@st.composite
def problems(draw, max_depth: int = 20):
    """(model, batch, loss kind) with a random architecture and random data."""
    seed = draw(st.integers(0, 2**16))
    depth = draw(st.integers(1, max_depth))
    blocks = [(draw(st.sampled_from(BLOCKS)), draw(st.sampled_from(sorted(ACTS))))
              for _ in range(depth)]
    first = draw(st.sampled_from(["dense", "dense", "sparse", "bag"]))
    n_in = draw(st.integers(3, 10))
    kind = draw(st.sampled_from(["ce", "ce", "mse"]))
    n_out = draw(st.integers(2, 4))
    torch.manual_seed(seed)
    net = Net(first, n_in, blocks, n_out)
    frozen = draw(st.lists(st.integers(0, depth - 1), max_size=2))
    for i in frozen:
        for p in net.body[i].parameters():
            p.requires_grad_(False)
    rng = np.random.default_rng(seed)
    n = 24
    if first == "bag":
        idx = torch.from_numpy(rng.integers(0, n_in, 3 * n))
        x = (idx, torch.arange(0, 3 * n, 3))
    else:
        cols = rng.standard_t(1.5, size=(n, n_in)) if draw(st.booleans()) \
            else rng.normal(size=(n, n_in))
        cols *= 10.0 ** rng.uniform(-2, 3, size=n_in)
        cols[:, rng.integers(0, n_in)] = draw(st.sampled_from([0.0, 1.0, 7.5]))  # constant
        if first == "sparse":
            cols[rng.random(cols.shape) < 0.6] = 0.0
        x = torch.tensor(cols, dtype=torch.float32)
        x = x.to_sparse() if first == "sparse" else x
    y = torch.from_numpy(rng.integers(0, n_out, n)) if kind == "ce" else \
        torch.tensor(rng.normal(size=(n, n_out)), dtype=torch.float32)
    return net, (x, y), kind


def _calibration_loss(net: nn.Module, batch, kind: str) -> float:
    """The loss as init measures it: eval mode, batch-statistic norms in train mode."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
    try:
        with torch.no_grad():
            out = net(*batch[0]) if isinstance(batch[0], tuple) else net(batch[0])
    finally:
        for m, t in modes:
            m.training = t
    return float(F.cross_entropy(out, batch[1]) if kind == "ce" else F.mse_loss(out, batch[1]))


def _finite(net: nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in [*net.parameters(), *net.buffers()]
               if t.is_floating_point())


def _no_hooks(net: nn.Module) -> bool:
    """No hook left, but the input standardization's pre-hook that init adds on purpose."""
    return all(not m._forward_hooks and not m._backward_hooks
               and len(m._forward_pre_hooks) == int(has_input_standardization(m))
               for m in net.modules())


@fast(30)
@given(problems())
def test_init_writes_finite_weights_and_never_raises_the_loss(problem):
    net, batch, kind = problem
    structural = copy.deepcopy(net)
    initwise.apply(structural, generator=7, example_inputs=batch[0])
    before = _calibration_loss(structural, batch, kind)
    with _quiet():
        rep = initwise.init(net, batch, generator=7, loss=kind)
    assert _finite(net) and _no_hooks(net)
    after = _calibration_loss(net, batch, kind)
    assert math.isclose(after, rep.loss.after, rel_tol=1e-4, abs_tol=1e-6)
    prior = max(rep.loss.target, _constant_loss(batch[1], kind, net.head.out_features))
    assert after <= max(before, prior) * (1 + 0.005) + 1e-5, (before, after, prior)


def _constant_loss(y: torch.Tensor, kind: str, n_out: int) -> float:
    """The loss of the constant logits init sets (cross-entropy: the class frequencies shrunk
    toward uniform by the sample's size, so above the label entropy on a small batch)."""
    if kind != "ce":
        return float(y.var(0, unbiased=False).mean())
    counts = torch.bincount(y, minlength=n_out).double()
    a = shrinkage(counts)
    logp = ((counts + a) / (counts.sum() + a * n_out)).log()
    return float(-(counts * logp).sum() / counts.sum())


@fast(10)
@given(problems(max_depth=6))
def test_init_same_seed_same_bits(problem):
    net, batch, kind = problem
    twin = copy.deepcopy(net)
    with _quiet():
        initwise.init(net, batch, generator=3, loss=kind)
        initwise.init(twin, batch, generator=3, loss=kind)
    for (n, a), b in zip(net.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), n


@fast(30)
@given(problems(), st.sampled_from(["quick", "standard"]))
def test_doctor_never_crashes_nor_changes_the_model(problem, preset):
    net, batch, _ = problem
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in net.named_buffers()}
    modes = [m.training for m in net.modules()]
    rng = torch.get_rng_state()
    with _quiet():
        d1 = initwise.doctor(net, batch, checks=preset)
        d2 = initwise.doctor(net, batch, checks=preset)
    assert all(torch.equal(p, params[n]) for n, p in net.named_parameters())
    assert all(torch.equal(b, buffers[n]) for n, b in net.named_buffers())
    assert [m.training for m in net.modules()] == modes and _no_hooks(net)
    assert torch.equal(torch.get_rng_state(), rng)
    assert d1.codes == d2.codes  # same seed, same diagnosis


def test_same_bits_across_thread_counts():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 12, generator=g) * 30, torch.randint(0, 3, (256,), generator=g)
    torch.manual_seed(0)
    base = Net("dense", 12, [("linear", "relu"), ("residual", "gelu"), ("layernorm", "tanh")],
               3)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            net = copy.deepcopy(base)
            with _quiet():
                initwise.init(net, (x, y), generator=1)
            out.append(net.state_dict())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, out[1][k]) for k, a in out[0].items())


class _quiet:
    """Silence initwise's warnings (expected on random architectures)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
