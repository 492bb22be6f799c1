"""Atomicity, determinism and cleanliness of initwise.init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initwise.datainit as di
from initwise.state import hook_counts


class _Flaky(nn.Module):
    """Raises on its ``fail_at``-th forward call (after init has started changing weights)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.a = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.b = nn.Linear(16, 3)
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom at batch 3")
        return self.b(self.drop(torch.relu(self.bn(self.a(x)))))


def _batches(n: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(32, 6, generator=g) * 50, torch.randint(0, 3, (32,), generator=g))
            for _ in range(n)]


@pytest.mark.parametrize("fail_at", [3, 12, 20])  # during the "before" pass; mid-calibration
def test_error_mid_forward_leaves_the_model_exactly_as_it_was(fail_at):
    torch.manual_seed(0)
    net = _Flaky(fail_at)
    net.a.weight.requires_grad_(False)
    net.train()
    net.bn.eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    hooks = hook_counts(net)
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"):
        di.init(net, _batches(), generator=0)
    assert net.calls == fail_at
    assert list(net.state_dict()) == list(state)  # no input standardization left behind
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [m.training for m in net.modules()] == modes
    assert not net.a.weight.requires_grad and net.b.weight.requires_grad
    assert hook_counts(net) == hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert torch.equal(torch.get_rng_state(), rng)


def test_success_restores_modes_hooks_and_global_rng():
    torch.manual_seed(0)
    net = _Flaky(-1)
    net.train()
    rng = torch.get_rng_state()
    di.init(net, _batches(), generator=0)
    assert net.training and net.drop.training and net.bn.training
    # the only hook left is the input standardization (inputs x 50: column std 50 > 10)
    from initwise.nn.standardize import _standardize_input

    assert list(net.a._forward_pre_hooks.values()) == [_standardize_input]
    others = [m for m in net.modules() if m is not net.a]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in others)
    assert not net.a._forward_hooks
    assert torch.equal(torch.get_rng_state(), rng)


def test_same_seed_same_bits_other_seed_other_bits():
    def run(seed):
        torch.manual_seed(123)  # the model's own construction
        net = _Flaky(-1)
        di.init(net, _batches(), generator=seed)
        return {k: v.clone() for k, v in net.state_dict().items()}

    a, b, c = run(5), run(5), run(6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["a.weight"], c["a.weight"])


def test_generator_object_and_default_seed_are_deterministic():
    torch.manual_seed(1)
    n1, n2 = _Flaky(-1), _Flaky(-1)
    n2.load_state_dict(n1.state_dict())
    r1 = di.init(n1, _batches())  # seed derived from the global RNG, which is not advanced
    r2 = di.init(n2, _batches())
    assert r1.seed == r2.seed and r1.seed is not None
    assert torch.equal(n1.a.weight, n2.a.weight)
    n3 = _Flaky(-1)
    di.init(n3, _batches(), generator=torch.Generator().manual_seed(r1.seed))
    assert torch.equal(n1.a.weight, n3.a.weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"target": "big"}, "target"), ({"batches": 0}, "batches"), ({"loss": "hinge"}, "loss"),
     ({"on_unknown": "ignore"}, "on_unknown"), ({"tol": 2.0}, "tol"), ({"max_iters": 0}, "max")],
)
def test_bad_options_raise_valueerror_naming_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        di.init(nn.Linear(6, 3), _batches(1), **kwargs)


def test_not_a_module_raises_typeerror():
    with pytest.raises(TypeError, match="nn.Module"):
        di.init(lambda x: x, _batches(1))


def test_a_torchscript_model_is_refused_with_a_clear_error():
    """Regression: TorchScript refuses forward hooks; init must say so, not fail inside a hook."""
    import pytest
    import torch

    from initwise.datainit import init

    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    with pytest.raises(TypeError, match="TorchScript"):
        init(scripted, (torch.randn(8, 3), torch.randint(0, 2, (8,))))
