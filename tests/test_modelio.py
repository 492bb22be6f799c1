"""Tests of initwise.modelio: batch forms, model outputs, loss inference, label-prior loss."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from initwise import modelio


def test_split_batch_forms():
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    assert modelio.split_batch((x, y)) == (x, y)
    assert modelio.split_batch([x, y])[1] is y
    assert modelio.split_batch(x) == (x, None)
    inputs, targets = modelio.split_batch({"input_ids": x, "labels": y})
    assert set(inputs) == {"input_ids"} and targets is y
    assert modelio.split_batch({"a": x}) == ({"a": x}, None)
    (a, b), t = modelio.split_batch(((x, x), y))
    assert a is x and t is y
    with pytest.raises(TypeError, match="batch: expected"):
        modelio.split_batch("not a batch")


def test_to_torch_keeps_scipy_sparse_sparse():
    m = sp.random(4, 1 << 20, density=1e-5, format="csr", random_state=0, dtype=np.float64)
    t = modelio.to_torch(m)
    assert t.layout == torch.sparse_csr and t.shape == (4, 1 << 20)
    assert t.values().numel() == m.nnz and t.dtype == torch.float32
    assert torch.equal(t.crow_indices(), torch.from_numpy(m.indptr.astype(np.int64)))
    assert modelio.to_torch(np.arange(3)).dtype == torch.int64
    assert modelio.to_torch(np.ones(3)).dtype == torch.float32
    d = modelio.to_torch({"a": np.ones(2), "b": (np.arange(2),)})
    assert d["a"].dtype == torch.float32 and d["b"][0].dtype == torch.int64


class _Out:
    def __init__(self, logits):
        self.logits = logits
        self.loss = None


def test_extract_logits_sources():
    t = torch.ones(2, 3)
    assert modelio.extract_logits(t) == (t, "output")
    assert modelio.extract_logits(_Out(t))[1] == "output.logits"
    assert modelio.extract_logits({"hidden": t * 2, "logits": t})[0] is t
    assert modelio.extract_logits({"h": t})[1] == "output['h']"
    assert modelio.extract_logits((None, t))[1] == "output[1]"
    with pytest.raises(TypeError, match="model output"):
        modelio.extract_logits((None, "x"))


def test_call_model_dispatch():
    class M(nn.Module):
        def forward(self, a, b=None):
            return a if b is None else a + b

    m, x = M(), torch.ones(2)
    assert torch.equal(modelio.call_model(m, x), x)
    assert torch.equal(modelio.call_model(m, (x, x)), 2 * x)
    assert torch.equal(modelio.call_model(m, {"a": x, "b": x}), 2 * x)


def test_infer_loss_kinds():
    logits = torch.zeros(4, 3)
    assert modelio.infer_loss(logits, torch.tensor([0, 1, 2, 0])).kind == "ce"
    assert modelio.infer_loss(logits, torch.randint(0, 2, (4, 3)).float()).kind == "bce"
    assert modelio.infer_loss(logits, torch.randn(4, 3)).kind == "mse"
    lm = modelio.infer_loss(torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long))
    assert lm.kind == "ce" and lm.class_dim == -1
    seg = modelio.infer_loss(torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))
    assert seg.class_dim == 1
    with pytest.raises(ValueError, match="valid values"):
        modelio.infer_loss(logits, torch.zeros(4, dtype=torch.long), loss="hinge")
    with pytest.raises(ValueError, match="do not fit"):
        modelio.infer_loss(torch.zeros(4, 3), torch.zeros(5, 2, dtype=torch.long), loss="ce")


def test_label_prior_loss_matches_loss_of_log_prior_bias():
    """CE of constant logits = log prior equals the class-frequency entropy (the target)."""
    y = torch.tensor([0, 0, 0, 1, 2, 2, 0, 1])
    spec = modelio.infer_loss(torch.zeros(8, 4), y)
    prior = torch.bincount(y, minlength=4).double() / 8
    logits = prior.clamp_min(1e-30).log().float().expand(8, 4)
    ce = modelio.compute_loss(spec, logits, y).item()
    assert modelio.label_prior_loss(spec, y, 4) == pytest.approx(ce, rel=1e-6)
    p = np.array([4, 2, 2]) / 8
    assert modelio.label_prior_loss(spec, y, 4) == pytest.approx(-(p * np.log(p)).sum())


def test_label_prior_loss_bce_and_mse():
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    spec = modelio.LossSpec("bce")
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert modelio.label_prior_loss(spec, y, 2) == pytest.approx((h(0.75) + h(0.25)) / 2)
    yr = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert modelio.label_prior_loss(modelio.LossSpec("mse"), yr, 1) == pytest.approx(3.5)


def test_iter_batches():
    x = torch.zeros(2, 2)
    assert len(list(modelio.iter_batches((x, x)))) == 1
    loader = [(x, x)] * 10
    assert len(list(modelio.iter_batches(loader, max_batches=4))) == 4
    with pytest.raises(ValueError, match="no batch"):
        list(modelio.iter_batches([]))
    with pytest.raises(ValueError, match="batches"):
        list(modelio.iter_batches(loader, max_batches=0))
    with pytest.raises(TypeError, match="data"):
        list(modelio.iter_batches(3))


def test_iter_batches_over_a_dataset_is_shuffled_and_sparse():
    from initwise.data import Dataset

    X = sp.random(600, 1 << 18, density=1e-4, format="csr", random_state=0)
    y = np.repeat(np.arange(3), 200)  # sorted by class: the first rows are all class 0
    batches = list(modelio.iter_batches(Dataset(X, y), max_batches=2))
    assert len(batches) == 2
    xb, yb = batches[0]
    assert xb.layout == torch.sparse_csr and xb.shape == (256, 1 << 18)
    assert len(set(yb.tolist())) == 3
    again = next(modelio.iter_batches(Dataset(X, y)))
    assert torch.equal(again[1], yb)


def test_a_list_of_two_batches_is_two_batches_not_one():
    """Regression: [(x0, y0), (x1, y1)] was read as one (inputs, targets) batch."""
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    batches = list(modelio.iter_batches([(x, y), (x + 1, y)]))
    assert len(batches) == 2 and torch.equal(batches[1][0], x + 1)
    with pytest.raises(TypeError, match="batch"):
        modelio.split_batch([(x, y), (x, y)])
    (a, b), t = modelio.split_batch(((x, x), y))  # several positional inputs still work
    assert t is y


def test_select_output_applies_the_same_rule_to_any_leaf_type():
    """The eager (tensor) and symbolic (fx node) callers share one rule for the logits."""
    leaf = lambda v: isinstance(v, str)  # noqa: E731 - stand-in for a graph node
    assert modelio.select_output("z", leaf) == ("z", "output")
    assert modelio.select_output({"h": "a", "logits": "b"}, leaf) == ("b", "output['logits']")
    assert modelio.select_output((1, "c"), leaf) == ("c", "output[1]")
    assert modelio.select_output(_Out("d"), leaf) == ("d", "output.logits")
    assert modelio.select_output((1, 2), leaf) is None
