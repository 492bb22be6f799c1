"""UnitStats against direct computation on the concatenated outputs (the slow twin)."""

import math

import torch

from initwise.activations import activation_facts
from initwise.measure import UnitStats


def _tanh_stats() -> UnitStats:
    tanh = activation_facts("tanh")
    return UnitStats(tanh.sat_threshold, tanh.torch_fn)


def test_unit_stats_match_direct_computation():
    g = torch.Generator().manual_seed(0)
    chunks = [torch.randn(40, 6, generator=g) * torch.arange(1, 7) - 1.0 for _ in range(3)]
    acc = _tanh_stats()
    for c in chunks:  # three calls, as a module shared / called repeatedly
        acc.update(c, -1)
    z = torch.cat(chunks).double()
    var = z.var(0, unbiased=False)
    assert math.isclose(acc.pre_std(), math.sqrt(var.mean()), rel_tol=1e-12)
    assert math.isclose(acc.signal_fraction(), float(var.sum() / (z ** 2).mean(0).sum()),
                        rel_tol=1e-12)
    thr = math.atanh(math.sqrt(0.9))
    assert math.isclose(acc.saturated_fraction(), float((z.abs() > thr).double().mean()))
    assert math.isclose(acc.post_std(), float(torch.tanh(z).std(unbiased=False)), rel_tol=1e-9)
    assert acc.calls == 3 and acc.rows == 120
    assert torch.allclose(acc.mean(), z.mean(0), rtol=1e-12)
    assert torch.allclose(acc.var(), var, rtol=1e-12)
    assert torch.equal(acc.zmax, z.amax(0)) and torch.equal(acc.zmin, z.amin(0))
    assert acc.elems == z.numel() and acc.positive == int((z > 0).sum())


def test_merge_equals_one_pass():
    g = torch.Generator().manual_seed(1)
    chunks = [torch.randn(17, 5, generator=g) for _ in range(4)]
    one = _tanh_stats()
    for c in chunks:
        one.update(c)
    a, b = _tanh_stats(), _tanh_stats()
    for c in chunks[:2]:
        a.update(c)
    for c in chunks[2:]:
        b.update(c)
    a.merge(b)
    assert a.count == one.count and a.calls == one.calls
    for name in ("s1", "s2", "zmax", "zmin", "sat"):
        assert torch.allclose(getattr(a, name), getattr(one, name), rtol=1e-12), name
    assert math.isclose(a.post_std(), one.post_std(), rel_tol=1e-12)


def test_dead_means_never_active_on_any_sample():
    z = torch.full((50, 4), -1.0)
    z[:, 0] = torch.randn(50)  # half-zero after ReLU: healthy
    z[7, 1] = 0.5  # active on exactly one sample: alive
    acc = UnitStats()
    acc.update(z, -1)
    assert acc.dead_units() == 2


def test_conv_units_are_channels():
    y = torch.randn(5, 3, 4, 4)
    y[:, 1] = -torch.rand(5, 4, 4)
    acc = UnitStats()
    acc.update(y, 1)
    assert acc.units == 3 and acc.dead_units() == 1


def test_nonfinite_elements_are_counted_not_summed():
    z = torch.ones(4, 3)
    z[0, 0], z[1, 2] = float("nan"), float("inf")
    acc = UnitStats()
    acc.update(z)
    assert acc.nonfinite == 2 and acc.elems == 10
    assert torch.equal(acc.s1, torch.tensor([3.0, 4.0, 3.0], dtype=torch.float64))


def test_empty_batch_keeps_the_unit_count():
    acc = UnitStats()
    acc.update(torch.zeros(0, 7))
    assert acc.units == 7 and acc.empty and acc.calls == 1
