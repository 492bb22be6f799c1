"""One generator/seed convention and one on_unknown validator for apply, init and doctor."""

import pytest
import torch
from torch import nn

import initwise
from initwise.options import ON_UNKNOWN, resolve_generator


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, generator=g), torch.randint(0, 2, (32,), generator=g)


@pytest.mark.parametrize("call", [
    lambda m, **kw: initwise.apply(m, seed=0, **kw),
    lambda m, **kw: initwise.init(m, _batch(), seed=0, **kw),
    lambda m, **kw: initwise.doctor(m, _batch(), **kw),
])
def test_every_entry_point_refuses_the_same_bad_on_unknown(call):
    with pytest.raises(ValueError, match=r"on_unknown='ignore'; valid values are \['warn', "
                                         r"'error', 'skip'\]"):
        call(_net(), on_unknown="ignore")


def test_apply_takes_an_int_generator_like_init():
    a, b = _net(), _net()
    initwise.apply(a, generator=7)
    initwise.apply(b, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_without_a_seed_the_global_rng_decides_and_is_not_advanced():
    torch.manual_seed(11)
    state = torch.get_rng_state()
    _, s1 = resolve_generator()
    assert torch.equal(torch.get_rng_state(), state)
    a = _net()
    torch.manual_seed(11)
    ra = initwise.apply(a)
    b = _net()
    torch.manual_seed(11)
    rb = initwise.apply(b)
    assert ra.seed == rb.seed == s1
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_on_unknown_values():
    assert ON_UNKNOWN == ("warn", "error", "skip")
