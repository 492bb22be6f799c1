"""Input and output forms: huge sparse inputs, dicts, HF-style outputs, LM targets, tied weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import initwise.datainit as di
from initwise.modelio import LossSpec, label_prior_loss
from initwise.nn import SparseLinear

WIDE = 2**24  # a dense (64, 2^24) float batch would be 4 GiB


def _wide_csr(rows: int, nnz: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, WIDE, size=(rows, nnz))
    data = rng.integers(1, 5, size=rows * nnz).astype(np.float32)
    m = sp.csr_matrix((data, (np.repeat(np.arange(rows), nnz), cols.ravel())), (rows, WIDE))
    m.sum_duplicates()
    return m


@pytest.fixture
def no_densify(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a sparse input was densified")

    monkeypatch.setattr(torch.Tensor, "to_dense", refuse)


class _WideNet(nn.Module):
    def __init__(self, bag: bool) -> None:
        super().__init__()
        self.bag = bag
        self.first = nn.EmbeddingBag(WIDE, 2, mode="sum") if bag else SparseLinear(WIDE, 2)
        self.head = nn.Linear(2, 3)

    def forward(self, *x):
        return self.head(torch.relu(self.first(*x)))


@pytest.mark.parametrize("bag", [False, True])
def test_2_to_24_wide_sparse_input_is_never_densified(bag, no_densify):
    x = _wide_csr(64, 12, 0)
    y = np.random.default_rng(1).integers(0, 3, 64)
    torch.manual_seed(0)
    net = _WideNet(bag)
    if bag:
        inputs = (torch.from_numpy(x.indices).long(), torch.from_numpy(x.indptr[:-1]).long(),
                  torch.from_numpy(x.data))
        data = (inputs, torch.from_numpy(y))
    else:
        data = (x, y)  # scipy.sparse goes straight in
    rep = di.init(net, data, generator=0)
    lc = rep.layer("first")
    assert "effective fan-in" in lc.note
    # rule 2: weight std = gain / sqrt(n_rows), ReLU gain sqrt(2), whatever the policy drew
    assert lc.scale_after == pytest.approx((2 / WIDE) ** 0.5, rel=1e-3)
    eff = float(np.asarray(x.multiply(x).sum(1)).mean())
    assert f"effective fan-in {eff:.4g}" in lc.note


class _DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num = nn.Linear(4, 16)
        self.cat = nn.Embedding(10, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, numeric, category):
        return self.head(torch.relu(self.num(numeric) + self.cat(category)))


def test_dict_inputs_call_the_model_with_keywords():
    g = torch.Generator().manual_seed(0)
    batch = {"numeric": torch.randn(64, 4, generator=g) * 1e3,
             "category": torch.randint(0, 10, (64,), generator=g),
             "labels": torch.randint(0, 2, (64,), generator=g)}
    torch.manual_seed(0)
    rep = di.init(_DictNet(), batch, generator=0)
    assert {lc.module for lc in rep.layers} == {"num", "cat", "head"}
    assert abs(rep.loss.after - rep.loss.target) <= 0.05 * rep.loss.target


@dataclass
class _Output:  # the shape of a Hugging Face ModelOutput
    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple


class _HFLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 32)
        self.classifier = nn.Linear(32, 5)

    def forward(self, input_ids):
        h = torch.tanh(self.body(input_ids))
        return _Output(None, self.classifier(h), (h,))


def test_hf_style_output_uses_logits_and_says_so():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 8, generator=g), torch.randint(0, 5, (128,), generator=g)
    torch.manual_seed(0)
    rep = di.init(_HFLike(), {"input_ids": x, "labels": y}, generator=0)
    assert rep.loss.output_source == "output.logits"
    assert abs(rep.loss.after - rep.loss.target) <= 0.05 * rep.loss.target


class _TinyLM(nn.Module):
    def __init__(self, vocab: int, d: int, tied: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)
        self.out = nn.Linear(d, vocab)
        if tied:
            self.out.weight = self.emb.weight

    def forward(self, ids):
        return self.out(torch.relu(self.mix(self.emb(ids))))


@pytest.mark.parametrize("tied", [False, True])
def test_lm_shaped_targets_and_tied_weights(tied):
    vocab = 50
    g = torch.Generator().manual_seed(0)
    probs = 1.0 / torch.arange(1, vocab + 1).double()
    ids = torch.multinomial(probs, 8 * 33, True, generator=g).reshape(8, 33)
    x, y = ids[:, :-1], ids[:, 1:].clone()
    y[0, :5] = -100  # ignored positions
    torch.manual_seed(0)
    net = _TinyLM(vocab, 16, tied)
    rep = di.init(net, (x, y), generator=0)
    prior = label_prior_loss(LossSpec("ce"), y, vocab)
    assert rep.loss.target == pytest.approx(prior)
    assert abs(rep.loss.after - prior) <= 0.05 * prior
    if tied:
        assert net.out.weight is net.emb.weight
        assert "tied" in rep.layer("out").note
        assert any("shares its weight" in w for w in rep.warnings)
