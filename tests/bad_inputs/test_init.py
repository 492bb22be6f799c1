"""Bad inputs to `initwise.init`: each case refuses with the message's key words and leaves the
model and the caller's RNG exactly as they were, or is a documented handling with a warning."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import initwise


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


def _init(model, data, **kw):
    kw.setdefault("generator", 0)
    return lambda: initwise.init(model, data, **kw)


# --- poisoned data --------------------------------------------------------------------------

def _with_nan_dense():
    x, y = _data()
    x[3, 2] = float("nan")
    return (x, y), ("batch 0", "row 3, column 2", "NaN/Inf", "impute")


def _with_inf_coo():
    x, y = _data()
    coo = x.to_sparse()
    coo._values()[5] = float("inf")
    return (coo, y), ("batch 0", "row 1, column 1", "inf")


def _with_nan_csr():
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        csr = x.to_sparse_csr()
    csr.values()[7] = float("nan")
    return (csr, y), ("batch 0", "row 1, column 3", "nan")


def _with_nan_scipy():
    x, y = _data()
    s = sp.csr_matrix(x.numpy())
    s.data[9] = np.nan
    return (s, y), ("batch 0", "row 2, column 1", "NaN/Inf")


def _with_nan_ndarray():
    x, y = _data()
    a = x.numpy().copy()
    a[0, 0] = np.inf
    return (a, y.numpy()), ("row 0, column 0", "inf")


def _with_nan_in_dict():
    x, y = _data()
    x[1, 1] = float("nan")
    return ({"x": x}, y), ("inputs['x']", "row 1, column 1")


def _with_nan_in_batch_2():
    batches = [_data(seed=s) for s in range(4)]
    batches[2][0][5, 0] = float("-inf")
    return batches, ("batch 2", "row 5, column 0", "-inf")


def _with_nan_target():
    x, _ = _data()
    y = torch.randn(32, 3)
    y[4, 1] = float("nan")
    return (x, y), ("batch 0", "targets", "row 4, column 1", "fix the labels")


def _with_inf_target():
    x, _ = _data()
    y = torch.randn(32, 3)
    y[0, 0] = float("inf")
    return (x, y), ("targets", "inf")


def _empty():
    x, y = _data()
    return (x[:0], y[:0]), ("batch 0", "0 rows", "non-empty batch")


def _empty_second():
    (x, y), (x2, y2) = _data(), _data(seed=1)
    return [(x, y), (x2[:0], y2[:0])], ("batch 1", "0 rows")


def _one_row():
    x, y = _data()
    return (x[:1], y[:1]), ("batch too small", "1 row", "at least 2 rows")


def _one_row_sparse():
    x, y = _data()
    return (sp.csr_matrix(x[:1].numpy()), y[:1]), ("batch too small", "1 row")


def _all_ignored():
    x, _ = _data()
    return (x, torch.full((32,), -100)), ("ignore index -100", "real labels")


def _all_ignored_in_every_batch():
    return [(x, torch.full_like(y, -100)) for x, y in (_data(seed=s) for s in range(3))], \
        ("3 calibration batch", "-100")


def _label_too_large():
    x, y = _data()
    y[6] = 7
    return (x, y), ("batch 0", "label 7", "out of range for 3 classes", "[0, 2]")


def _label_negative():
    x, y = _data()
    y[0] = -1
    return (x, y), ("label -1", "out of range", "-100 to ignore")


def _label_range_in_batch_1():
    (x, y), (x2, y2) = _data(), _data(seed=1)
    y2[3] = 3
    return [(x, y), (x2, y2)], ("batch 1", "label 3")


POISONED = {
    "nan_dense": _with_nan_dense, "inf_coo": _with_inf_coo, "nan_csr": _with_nan_csr,
    "nan_scipy_csr": _with_nan_scipy, "inf_ndarray": _with_nan_ndarray,
    "nan_dict_input": _with_nan_in_dict, "inf_in_batch_2": _with_nan_in_batch_2,
    "nan_regression_target": _with_nan_target, "inf_regression_target": _with_inf_target,
    "empty_batch": _empty, "empty_second_batch": _empty_second, "one_row": _one_row,
    "one_row_sparse": _one_row_sparse, "all_labels_ignored": _all_ignored,
    "all_labels_ignored_every_batch": _all_ignored_in_every_batch,
    "label_too_large": _label_too_large, "label_negative": _label_negative,
    "label_out_of_range_batch_1": _label_range_in_batch_1,
}


@pytest.mark.parametrize("case", sorted(POISONED))
def test_poisoned_data_is_refused(case, refuse):
    data, words = POISONED[case]()
    net = _mlp()
    refuse(net, _init(net, data), ValueError, "init", *words)


# --- torch's own errors, with context -------------------------------------------------------

class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(F.relu(self.conv(x)).mean((2, 3)))


class _Emb(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(10, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.emb(ids))


def test_wrong_feature_count_names_batch_layer_and_expected_width(refuse):
    net = _mlp(n_in=5)
    refuse(net, _init(net, _data()), ValueError, "init: batch 0", "layer '0' (Linear)",
           "expects 5 input features", "gives 4", "mat1 and mat2")


def test_wrong_feature_count_in_a_later_batch_names_that_batch(refuse):
    net = _mlp()
    batches = [_data(), (torch.randn(16, 6), torch.randint(0, 3, (16,)))]
    refuse(net, _init(net, batches), ValueError, "init: batch 1", "expects 4", "gives 6")


def test_wrong_channel_count_names_the_convolution(refuse):
    net = _Conv()
    data = (torch.randn(8, 1, 6, 6), torch.randint(0, 2, (8,)))
    refuse(net, _init(net, data), ValueError, "layer 'conv' (Conv2d)", "expects 3 input channels",
           "gives 1")


def test_embedding_ids_beyond_the_table(refuse):
    net = _Emb()
    data = (torch.tensor([[1, 2], [3, 12], [4, 5]]), torch.tensor([0, 1, 0]))
    refuse(net, _init(net, data), ValueError, "layer 'emb'", "num_embeddings=10", "index 12")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_and_bool_inputs_into_a_float_model(dtype, refuse):
    net = _mlp()
    x, y = _data()
    refuse(net, _init(net, ((x > 0).to(dtype), y)), TypeError, "init: batch 0",
           "torch.float32 parameters", f"received {dtype}", "x.float()")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_half_and_double_inputs_say_the_dtype_the_model_expects(dtype, refuse):
    net = _mlp()
    x, y = _data()
    refuse(net, _init(net, (x.to(dtype), y)), TypeError, "the model expects torch.float32",
           f"model.to({dtype})")


def test_meta_device_model(refuse):
    net = nn.Linear(4, 3, device="meta")
    refuse(net, _init(net, _data()), ValueError, "meta device", "to_empty", "initwise.init")


def test_unmaterialized_lazy_linear(refuse):
    net = nn.Sequential(nn.LazyLinear(3))
    refuse(net, _init(net, _data()), ValueError, "lazy", "not materialized",
           "run one forward pass", "then call initwise.init")


def test_a_model_error_keeps_its_type_and_gains_a_note(refuse):
    class Raises(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            raise KeyError("user bug")

    net = Raises()
    snap_msg = refuse(net, _init(net, _data()), KeyError, "user bug")
    assert "user bug" in snap_msg


def test_targets_that_fit_no_loss(refuse):
    net = _mlp()
    x, _ = _data()
    refuse(net, _init(net, (x, torch.randint(0, 3, (32, 5)))), ValueError, "targets",
           "loss='ce'|'bce'|'mse'")


# --- wrong arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("data, exc, words", [
    ("train.csv", TypeError, ("got a path", "initwise.data.load")),
    (Path("train.svm"), TypeError, ("initwise.data.load",)),
    (np.array([[1, "a", 2.5, None]] * 8, dtype=object), TypeError,
     ("dtype object", "astype(np.float32)")),
    (5, TypeError, ("expected a batch", "got int")),
    ([], ValueError, ("yielded no batch",)),
])
def test_data_that_is_not_a_batch(data, exc, words, refuse):
    net = _mlp()
    refuse(net, _init(net, data), exc, *words)


@pytest.mark.parametrize("kw, exc, words", [
    ({"loss": "hinge"}, ValueError, ("loss='hinge'", "'ce'")),
    ({"target": -1.0}, ValueError, ("target=-1.0", "positive")),
    ({"target": "lsuv"}, ValueError, ("'auto'", "'critical'")),
    ({"batches": 0}, ValueError, ("batches=0", "positive integer")),
    ({"max_iters": 0}, ValueError, ("max_iters=0",)),
    ({"tol": 2.0}, ValueError, ("tol=2.0", "(0, 1)")),
    ({"on_unknown": "maybe"}, ValueError, ("on_unknown", "'warn'")),
    ({"include_frozen": "yes"}, TypeError, ("include_frozen", "bool")),
    ({"generator": True}, TypeError, ("generator",)),
    ({"generator": 2**70}, ValueError, ("generator",)),
    ({"generator": 0, "seed": 1}, ValueError, ("not both",)),
    ({"calibrate": {"nothing.*": False}}, ValueError, ("nothing.*",)),
    ({"calibrate": {"0": "no"}}, TypeError, ("calibrate['0']", "True or False")),
    ({"overrides": {"missing": "xavier_normal"}}, ValueError, ("missing",)),
])
def test_bad_options(kw, exc, words, refuse):
    net = _mlp()
    refuse(net, _init(net, _data(), **kw), exc, "init" if "overrides" not in kw else "", *words)


@pytest.mark.parametrize("model, words", [
    ("not a model", ("torch.nn.Module", "str")),
    (torch.jit.script(nn.Linear(4, 3)), ("TorchScript", "eager nn.Module")),
])
def test_models_that_cannot_be_initialized(model, words, refuse):
    refuse(model, _init(model, _data()), TypeError, *words)


def test_unknown_layer_with_on_unknown_error(refuse):
    class WithLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 8, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    net = WithLSTM()
    data = (torch.randn(16, 5, 4), torch.randint(0, 2, (16,)))
    refuse(net, _init(net, data, on_unknown="error"), ValueError, "'rnn'", "LSTM",
           "on_unknown='warn'")


# --- documented handlings (warned) ----------------------------------------------------------

def _full_ce(net, x, y) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(net(x), y))


def test_a_class_sorted_loader_gets_the_uniform_prior_and_a_warning():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=g)
    y = torch.arange(3).repeat_interleave(100)
    net = _mlp()
    loader = DataLoader(TensorDataset(x, y), batch_size=25)  # unshuffled: batches of class 0
    with pytest.warns(UserWarning, match="unrepresentative.*1 of the head's 3 classes"):
        rep = initwise.init(net, loader, generator=0)
    assert abs(_full_ce(net, x, y) - math.log(3)) < 0.05  # not 4.47 (class 0's prior)
    assert abs(rep.loss.target - math.log(3)) < 1e-9


def test_batches_that_each_hold_one_class_are_detected():
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 4, generator=g), torch.full((16,), c)) for c in (0, 0, 1, 2)]
    net = _mlp()
    with pytest.warns(UserWarning, match="each batch holds nearly one class"):
        initwise.init(net, batches, generator=0)


def test_a_shuffled_loader_gives_no_unrepresentative_warning():
    x, y = _data(256)
    net = _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        rep = initwise.init(net, DataLoader(TensorDataset(x, y), batch_size=64), generator=0)
    assert not any("unrepresentative" in w for w in rep.warnings)


def test_a_dict_output_without_logits_names_the_key_used():
    class Dict(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = _mlp()

        def forward(self, x):
            return {"features": x, "out": self.m(x)}

    with pytest.warns(UserWarning, match=r"output\['features'\].*'logits'"):
        initwise.init(Dict(), _data(), generator=0)


def test_one_hot_float_labels_say_bce_was_inferred():
    x, y = _data()
    with pytest.warns(UserWarning, match=r"one-hot.*BCE.*argmax"):
        rep = initwise.init(_mlp(), (x, F.one_hot(y, 3).float()), generator=0)
    assert rep.loss.kind == "bce"


def test_tensor_dataset_of_inputs_alone_is_accepted():
    x, _ = _data(64)
    rep = initwise.init(_mlp(), DataLoader(TensorDataset(x), batch_size=32), generator=0)
    assert any("no targets" in w for w in rep.warnings)


def test_uncovered_modules_get_one_grouped_warning():
    torch.manual_seed(0)

    class LM(nn.Module):  # recurrent layers keep their structural init: reported, grouped
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(50, 16), nn.Linear(16, 50)
            self.rnns = nn.ModuleList(nn.GRU(16, 16, batch_first=True) for _ in range(4))

        def forward(self, ids):
            h = self.emb(ids)
            for rnn in self.rnns:
                h = rnn(h)[0]
            return self.head(h)

    ids = torch.randint(0, 50, (8, 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        initwise.init(LM(), (ids, torch.randint(0, 50, (8, 6))), generator=0)
    grouped = [str(w.message) for w in caught if "not calibrated" in str(w.message)]
    assert len(grouped) == 1 and grouped[0].startswith("init: 4 layer(s)")
    assert all(f"'rnns.{i}'" in grouped[0] for i in range(4))


# --- the caller's RNG and the model's own buffers -------------------------------------------

def test_a_shuffled_loader_does_not_advance_the_global_rng():
    x, y = _data(128)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    a, b = _mlp(), _mlp()  # (building a module draws from the global RNG)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    initwise.init(a, loader, generator=0)
    assert torch.equal(torch.get_rng_state(), state)
    initwise.init(b, loader)  # a seed derived from the RNG, which is not advanced
    assert torch.equal(torch.get_rng_state(), state)


def test_a_loader_failing_mid_way_does_not_advance_the_rng_nor_change_the_model(refuse):
    x, y = _data(128)
    x[100, 1] = float("nan")
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)
    net = _mlp()
    torch.manual_seed(5)
    refuse(net, _init(net, loader), ValueError, "batch 3", "row 4, column 1")


class _Counting(nn.Module):
    """A forward that updates its own buffers: a step counter and an EMA of the input mean."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("ema", torch.zeros(4))

    def forward(self, x):
        self.steps += 1
        self.ema.mul_(0.9).add_(0.1 * x.mean(0))
        return self.body(x)


def test_custom_buffers_updated_by_forward_are_restored():
    net = _Counting()
    x, y = _data()
    initwise.init(net, (x * 100 + 5, y), generator=0)
    assert int(net.steps) == 0 and torch.equal(net.ema, torch.zeros(4))
    # the input standardization init adds on purpose stays
    assert hasattr(net.body[0], "initwise_input_shift")


def test_custom_buffers_are_restored_on_error(refuse):
    net = _Counting()
    x, y = _data()
    refuse(net, _init(net, (x, y + 5)), ValueError, "out of range")


def test_frozen_layers_are_left_exactly_as_they_are():
    net = _mlp()
    for p in net[0].parameters():
        p.requires_grad_(False)
    before = [p.detach().clone() for p in net[0].parameters()]
    x, y = _data()
    initwise.init(net, (x * 50, y), generator=0)
    assert all(torch.equal(a, b) for a, b in zip(before, net[0].parameters()))


def test_an_embedding_bag_batch_of_one_bag_is_too_small(refuse):
    net = _BagNet()
    data = ((torch.tensor([1, 2, 3]), torch.tensor([0])), torch.tensor([1]))
    refuse(net, _init(net, data), ValueError, "batch too small", "bag offsets", "1 row")


def test_a_nan_per_sample_weight_is_refused(refuse):
    net = _BagNet()
    psw = torch.ones(6)
    psw[4] = float("nan")
    data = ((torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 2, 4]), psw),
            torch.tensor([0, 1, 0]))
    refuse(net, _init(net, data), ValueError, "inputs[2]", "row 4", "NaN/Inf")


class _BagNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(10, 4, mode="sum")
        self.head = nn.Linear(4, 2)

    def forward(self, ids, offsets, psw=None):
        return self.head(self.emb(ids, offsets, per_sample_weights=psw))


def test_an_additive_attention_mask_may_hold_minus_inf_but_not_nan(refuse):
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.head = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x, attention_mask):
            return self.head(F.relu(self.lin(x)) + attention_mask.clamp_min(-1.0))

    x, y = _data()
    mask = torch.zeros(32, 8)
    mask[:, 7] = float("-inf")
    initwise.init(Masked(), ({"x": x, "attention_mask": mask}, y), generator=0)
    mask[0, 0] = float("nan")
    net = Masked()
    refuse(net, _init(net, ({"x": x, "attention_mask": mask}, y)), ValueError,
           "inputs['attention_mask']", "row 0, column 0")
