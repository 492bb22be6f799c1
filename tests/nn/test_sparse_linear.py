"""SparseLinear == nn.Linear on the same weights, for every input form, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from initwise.data import Dataset, csr_to_bag
from initwise.nn import SparseLinear, sparse_to_bag

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")

IN, OUT = 23, 5


def _dense_input(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, IN, generator=g, dtype=dtype)
    x = x * (torch.rand(7, IN, generator=g) < 0.2)
    x[3] = 0.0  # an empty row
    return x


def _forms(x: torch.Tensor) -> dict:
    csr = sp.csr_matrix(x.numpy())
    idx, off, w = csr_to_bag(csr, dtype=x.dtype)
    return {
        "coo": x.to_sparse(),
        "csr": x.to_sparse_csr(),
        "bag": (idx, off, w),
        "dense": x,
    }


def _pair(bias=True, dtype=torch.float32, sparse_grad=False):
    torch.manual_seed(0)
    ref = nn.Linear(IN, OUT, bias=bias, dtype=dtype)
    return ref, SparseLinear.from_linear(ref, sparse_grad=sparse_grad)


def test_reset_parameters_draws_nn_linear_bits():
    torch.manual_seed(11)
    ref = nn.Linear(IN, OUT)
    torch.manual_seed(11)
    layer = SparseLinear(IN, OUT)
    assert layer.weight.shape == (IN, OUT)
    assert torch.equal(layer.weight, ref.weight.t()) and torch.equal(layer.bias, ref.bias)
    a, b = SparseLinear(IN, OUT), SparseLinear(IN, OUT)
    state = torch.get_rng_state()
    a.reset_parameters(generator=torch.Generator().manual_seed(3))
    b.reset_parameters(generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.weight, b.weight) and torch.equal(torch.get_rng_state(), state)
    assert a.weight.abs().max() <= 1 / IN**0.5


@pytest.mark.parametrize("form", ["coo", "csr", "bag", "dense"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradients_equal_nn_linear(form, bias, dtype):
    ref, layer = _pair(bias=bias, dtype=dtype)
    x = _dense_input(dtype)
    out, want = layer(_forms(x)[form]), ref(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[3], ref.bias if bias else torch.zeros(OUT, dtype=dtype))
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    (out * g).sum().backward()
    (want * g).sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad.t(), rtol=1e-6, atol=1e-6)
    if bias:
        torch.testing.assert_close(layer.bias.grad, ref.bias.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("form", ["coo", "csr", "bag"])
def test_sparse_grad_is_sparse_and_equal(form):
    ref, layer = _pair(sparse_grad=True)
    x = _dense_input()
    layer(_forms(x)[form]).sum().backward()
    ref(x).sum().backward()
    assert layer.weight.grad.is_sparse
    torch.testing.assert_close(layer.weight.grad.to_dense(), ref.weight.grad.t())
    touched = layer.weight.grad.coalesce().indices()[0].unique()
    assert set(touched.tolist()) <= set(x.nonzero()[:, 1].tolist())
    opt = torch.optim.SparseAdam([layer.weight], lr=0.1)
    before = layer.weight.detach().clone()
    opt.step()
    changed = (layer.weight != before).any(dim=1).nonzero().ravel()
    assert set(changed.tolist()) <= set(x.nonzero()[:, 1].tolist())


def test_duplicates_are_summed():
    ref, layer = _pair()
    coo = torch.sparse_coo_tensor(
        [[0, 0, 1, 0], [4, 4, 2, 9]], [1.0, 2.0, 5.0, -1.0], (2, IN), check_invariants=True
    )
    want = ref(coo.to_dense())
    torch.testing.assert_close(layer(coo), want, rtol=1e-6, atol=1e-6)
    bag = (torch.tensor([4, 9, 4, 2]), torch.tensor([0, 3]), torch.tensor([1.0, -1.0, 2.0, 5.0]))
    torch.testing.assert_close(layer(bag), want, rtol=1e-6, atol=1e-6)


def test_unweighted_bag_and_nd_dense():
    ref, layer = _pair()
    bag = (torch.tensor([1, 2, 2]), torch.tensor([0, 1]))
    x = torch.zeros(2, IN)
    x[0, 1], x[1, 2] = 1.0, 2.0
    torch.testing.assert_close(layer(bag), ref(x))
    x3 = torch.randn(2, 3, IN, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(x3), ref(x3), rtol=1e-6, atol=1e-6)


def test_empty_batch():
    layer = SparseLinear(IN, OUT)
    assert layer(torch.zeros(0, IN).to_sparse_csr()).shape == (0, OUT)
    assert layer(torch.zeros(0, IN).to_sparse()).shape == (0, OUT)
    empty = torch.zeros(0, dtype=torch.int64)
    assert layer((empty, empty)).shape == (0, OUT)


def test_dataset_batches_feed_it_in_every_layout():
    rng = np.random.default_rng(0)
    cols = rng.integers(0, 2**20, size=(40, 12))
    vals = rng.random(40 * 12)
    X = sp.csr_matrix((vals, (np.repeat(np.arange(40), 12), cols.ravel())), shape=(40, 2**20))
    ds = Dataset(X, rng.integers(0, 2, 40))
    layer = SparseLinear(2**20, 3)
    outs = {
        layout: torch.cat([layer(xb) for xb, _ in ds.batches(16, layout=layout)])
        for layout in ("sparse", "bag")
    }
    torch.testing.assert_close(outs["sparse"], outs["bag"])
    W = layer.weight.detach().numpy().astype(np.float64)
    want = ds.X.astype(np.float64) @ W + layer.bias.detach().numpy()
    np.testing.assert_allclose(outs["bag"].detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_fans_are_those_of_the_linear_it_replaces():
    from initwise.schemes.fans import Fans, fans

    layer = SparseLinear(2**18, 64)
    assert fans(layer) == Fans(fan_in=2**18, fan_out=64, receptive_field=1)
    assert fans(layer, "bias") == fans(nn.Linear(2**18, 64, device="meta"), "bias")
    with pytest.raises(ValueError, match="'weight' and 'bias'"):
        layer.initwise_fans("scale")


def test_sparse_to_bag_coo_offsets():
    coo = torch.sparse_coo_tensor(
        [[2, 0, 2], [1, 3, 0]], [1.0, 2.0, 3.0], (4, 5), check_invariants=True
    )
    idx, off, w, last = sparse_to_bag(coo)
    assert idx.tolist() == [3, 0, 1] and off.tolist() == [0, 1, 1, 3]
    assert w.tolist() == [2.0, 3.0, 1.0] and last is False


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: torch.zeros(2, IN + 1), ValueError, "input width 24 != in_features 23"),
        (lambda: torch.zeros(2, IN + 1).to_sparse(), ValueError, r"expected \(batch, 23\)"),
        (lambda: (torch.tensor([1]),), ValueError, "got a 1-tuple"),
        (
            lambda: (
                torch.tensor([1]),
                torch.tensor([0]),
                torch.tensor([1.0], dtype=torch.float64),
            ),
            TypeError,
            "input values are torch.float64 but the weight is torch.float32",
        ),
        (lambda: [[1], [0]], TypeError, "tuple of tensors"),
        # regressions: torch's own messages ("expected m1 and m2 to have the same dtype",
        # "Expected i < index_size") named neither the layer nor the remedy
        (lambda: torch.zeros(2, IN, dtype=torch.float64), TypeError,
         r"input values are torch.float64 .* x.to\(torch.float32\)"),
        (lambda: (torch.tensor([1, IN]), torch.tensor([0])), ValueError,
         r"bag index 23 is outside \[0, 23\) \(in_features\); .*hash or clip"),
        (lambda: (torch.tensor([-1]), torch.tensor([0])), ValueError, "bag index -1 is outside"),
        (lambda: np.zeros((2, IN)), TypeError, "got ndarray"),
    ],
)
def test_input_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        SparseLinear(IN, OUT)(make())


def test_constructor_errors_and_repr():
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        SparseLinear(0, 3)
    with pytest.raises(TypeError, match="expected nn.Linear"):
        SparseLinear.from_linear(nn.Conv1d(1, 1, 1))
    assert repr(SparseLinear(4, 2, bias=False, sparse_grad=True)) == (
        "SparseLinear(in_features=4, out_features=2, bias=False, sparse_grad=True)"
    )
    assert SparseLinear(4, 2, bias=False).bias is None


def test_bias_false_constructs_trains_copies_and_initializes():
    """Regression: ``SparseLinear(n, m, bias=False)`` was reported to raise ``KeyError:
    "attribute 'bias' already exists"``; every path that touches ``bias`` is exercised."""
    import copy

    import initwise.datainit as di

    torch.manual_seed(0)
    layer = SparseLinear(6, 3, bias=False)
    assert layer.bias is None and "bias" not in dict(layer.named_parameters())
    assert SparseLinear(6, 3, False).bias is None
    x = torch.randn(4, 6).relu()
    out = layer(x.to_sparse())
    torch.testing.assert_close(out, x @ layer.weight)
    out.sum().backward()
    assert layer.weight.grad is not None
    twin = SparseLinear.from_linear(nn.Linear(6, 3, bias=False))
    assert twin.bias is None
    clone = copy.deepcopy(layer)
    clone.load_state_dict(layer.state_dict())
    assert list(clone.state_dict()) == ["weight"]
    net = nn.Sequential(SparseLinear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 2))
    rep = di.init(net, (x.to_sparse(), torch.tensor([0, 1, 0, 1])), generator=0)
    assert net[0].bias is None and rep.layers[0].module == "0"
