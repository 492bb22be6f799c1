"""Bad inputs to `initwise.doctor`: a clear error (key words asserted) and an unchanged model and
RNG, or a finding that names the problem; never "Healthy" for a model that cannot run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import initwise
from initwise.doctor import CHECK_CODES


def _mlp(n_in: int = 4, n_out: int = 3) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, n_out))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def _data(n: int = 32, n_in: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, 3, (n,), generator=g)


def _doctor(model, batch, **kw):
    return lambda: initwise.doctor(model, batch, **kw)


# --- batches that cannot be diagnosed -------------------------------------------------------

def _empty():
    x, y = _data()
    return (x[:0], y[:0]), ("doctor: batch", "0 rows")


def _empty_sparse():
    x, y = _data()
    return (sp.csr_matrix((0, 4), dtype=np.float32), y[:0]), ("0 rows",)


def _one_row():
    x, y = _data()
    return (x[:1], y[:1]), ("batch too small", "at least 2 rows")


def _nan_target():
    x, _ = _data()
    y = torch.randn(32, 3)
    y[2, 0] = float("nan")
    return (x, y), ("targets", "row 2, column 0", "NaN/Inf")


def _all_ignored():
    x, _ = _data()
    return (x, torch.full((32,), -100)), ("ignore index -100", "real labels")


def _label_out_of_range():
    x, y = _data()
    y[9] = 3
    return (x, y), ("label 3", "out of range for 3 classes", "[0, 2]")


def _label_negative():
    x, y = _data()
    y[0] = -2
    return (x, y), ("label -2", "out of range")


REFUSED = {"empty": _empty, "empty_scipy": _empty_sparse, "one_row": _one_row,
           "nan_target": _nan_target, "all_ignored": _all_ignored,
           "label_out_of_range": _label_out_of_range, "label_negative": _label_negative}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_batches_that_cannot_be_diagnosed_are_refused(case, refuse):
    batch, words = REFUSED[case]()
    net = _mlp()
    refuse(net, _doctor(net, batch), ValueError, *words)


# --- a model whose forward raises is never "Healthy" ----------------------------------------

class _RaisesOnFirstCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("only the first call fails")
        return self.lin(x)


class _AlwaysRaises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x) / 0 if x.sum() > 1e9 else self._fail()

    def _fail(self):
        raise ZeroDivisionError("model bug")


def test_a_forward_failing_only_in_the_trace_is_reported_not_healthy(refuse):
    net = _RaisesOnFirstCall()
    refuse(net, _doctor(net, _data()), RuntimeError, "only the first call fails")


def test_a_forward_that_always_raises_keeps_its_exception(refuse):
    net = _AlwaysRaises()
    refuse(net, _doctor(net, _data()), ZeroDivisionError, "model bug")


def test_the_model_error_carries_the_module_it_came_from():
    class Inner(nn.Module):
        def forward(self, x):
            raise LookupError("inner failure")

    net = nn.Sequential(nn.Linear(4, 4), Inner())
    with pytest.raises(LookupError) as info:
        initwise.doctor(net, _data())
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert not hasattr(info.value, "add_note") or "module '1' (Inner)" in notes


def test_wrong_feature_count(refuse):
    net = _mlp(n_in=6)
    refuse(net, _doctor(net, _data()), ValueError, "doctor: batch", "layer '0' (Linear)",
           "expects 6 input features", "gives 4")


def test_wrong_channel_count(refuse):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    refuse(net, _doctor(net, (torch.randn(8, 2, 4, 4), torch.randint(0, 2, (8,)))),
           ValueError, "layer '0' (Conv2d)", "expects 3 input channels", "gives 2")


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float16, torch.float64])
def test_inputs_of_another_dtype(dtype, refuse):
    net = _mlp()
    x, y = _data()
    refuse(net, _doctor(net, ((x > 0).to(dtype) if not dtype.is_floating_point else
                              x.to(dtype), y)), TypeError, "torch.float32 parameters",
           f"received {dtype}")


def test_embedding_index_out_of_range(refuse):
    net = nn.Sequential(nn.Embedding(5, 4), nn.Flatten(), nn.Linear(8, 2))
    refuse(net, _doctor(net, (torch.tensor([[1, 2], [3, 9], [0, 1]]), torch.tensor([0, 1, 0]))),
           ValueError, "num_embeddings=5", "index 9")


def test_meta_device_model(refuse):
    net = nn.Linear(4, 3, device="meta")
    refuse(net, _doctor(net, _data()), ValueError, "meta device", "to_empty")


def test_unmaterialized_lazy_linear(refuse):
    net = nn.Sequential(nn.LazyLinear(3))
    refuse(net, _doctor(net, _data()), ValueError, "lazy", "run one forward pass",
           "initwise.doctor")


# --- wrong arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, words", [
    (lambda: DataLoader(TensorDataset(*_data()), batch_size=8), TypeError,
     ("got DataLoader", "next(iter(loader))")),
    (lambda: [_data(), _data(seed=1)], TypeError, ("list of batches", "data[0]")),
    (lambda: "train.csv", TypeError, ("initwise.data.load",)),
    (lambda: (np.array([["a", 1.0]] * 8, dtype=object), np.zeros(8, dtype=np.int64)),
     TypeError, ("dtype object",)),
    (lambda: 3.5, TypeError, ("got float",)),
])
def test_a_batch_of_the_wrong_kind(make, exc, words, refuse):
    net = _mlp()
    refuse(net, _doctor(net, make()), exc, *words)


@pytest.mark.parametrize("kw, exc, words", [
    ({"checks": "deep"}, ValueError, ("unknown checks preset", "'quick'")),
    ({"on_unknown": "ignore"}, ValueError, ("on_unknown",)),
    ({"seed": -1}, ValueError, ("seed",)),
    ({"seed": "zero"}, TypeError, ("seed",)),
    ({"loss_fn": "hinge"}, ValueError, ("hinge",)),
])
def test_bad_options(kw, exc, words, refuse):
    net = _mlp()
    refuse(net, _doctor(net, _data(), **kw), exc, *words)


def test_a_non_module(refuse):
    refuse(None, _doctor(object(), _data()), TypeError, "torch.nn.Module")


# --- findings and warned handlings ----------------------------------------------------------

def test_a_nan_weight_is_a_finding_naming_the_parameter(snapshot):
    net = _mlp()
    with torch.no_grad():
        net[2].weight[1, 3] = float("nan")
    snap = snapshot(net)
    d = initwise.doctor(net, _data())
    snap.assert_same()
    (f,) = [f for f in d.findings if f.check == "model.nonfinite_weight"]
    assert f.severity == "error" and f.where == "2" and "'2.weight'" in f.evidence
    assert "index [1, 3]" in f.evidence and "model.nonfinite_weight" in CHECK_CODES


def test_an_inf_bias_is_named_too():
    net = _mlp()
    with torch.no_grad():
        net[0].bias[0] = float("inf")
    d = initwise.doctor(net, _data(), checks="quick")
    assert any("'0.bias'" in f.evidence for f in d.findings
               if f.check == "model.nonfinite_weight")


def test_non_finite_inputs_are_diagnosed_as_data_nonfinite(snapshot):
    net = _mlp()
    x, y = _data()
    x[4, 1] = float("nan")
    snap = snapshot(net)
    d = initwise.doctor(net, (x, y))
    snap.assert_same()
    assert "data.nonfinite" in d.codes_at("error")


def test_a_tensor_dataset_batch_of_inputs_alone_is_accepted():
    x, _ = _data()
    batch = next(iter(DataLoader(TensorDataset(x), batch_size=16)))  # [x]
    d = initwise.doctor(_mlp(), batch)
    assert any("no targets" in s for s in d.skipped)


def test_a_dict_output_without_logits_names_the_key_used():
    class Dict(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = _mlp()

        def forward(self, x):
            return {"hidden": x, "scores": self.m(x)}

    with pytest.warns(UserWarning, match=r"output\['hidden'\].*'logits'"):
        initwise.doctor(Dict(), _data())


def test_one_hot_float_labels_say_bce_was_inferred():
    x, y = _data()
    with pytest.warns(UserWarning, match="one-hot.*BCE"):
        d = initwise.doctor(_mlp(), (x, F.one_hot(y, 3).float()))
    assert d.summary["loss_kind"] == "bce"


def test_no_hooks_left_after_an_error():
    net = _mlp(n_in=6)
    with pytest.raises(ValueError):
        initwise.doctor(net, _data())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_a_good_batch_still_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        initwise.doctor(_mlp(), _data())
