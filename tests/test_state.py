"""initwise.state: every kind of state restored bit-exactly; version-only and cheap modes; RNG."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from initwise.state import (
    HOOK_DICTS,
    ModelState,
    guarded,
    hook_counts,
    preserve_rng,
    seeded_rng,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.a = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.bn(self.a(self.emb(idx))))))


def _net() -> Net:
    torch.manual_seed(0)
    net = Net()
    net(torch.randint(0, 10, (8,))).sum().backward()  # grads on every parameter
    net.a.bias.grad = None
    net.a.weight.requires_grad_(False)
    net.eval().bn.train()  # mixed modes
    net.a.register_forward_hook(lambda m, i, o: None)
    return net


def _bits(net: nn.Module) -> dict:
    """Everything observable, as plain values (bit patterns of every tensor)."""
    out = {}
    for name, t in [*net.named_parameters(remove_duplicate=False),
                    *net.named_buffers(remove_duplicate=False)]:
        out[name] = (id(t), t.detach().clone().view(-1).view(torch.uint8) if t.is_floating_point()
                     else t.detach().clone(), t.requires_grad, t.untyped_storage().data_ptr())
        if isinstance(t, nn.Parameter):
            out[name + ".grad"] = (id(t.grad), None if t.grad is None else t.grad.clone())
    for name, m in net.named_modules():
        out[name + ":mode"] = m.training
        out[name + ":hooks"] = [(a, list(getattr(m, a, {}).items())) for a in HOOK_DICTS]
        out[name + ":class"] = type(m)
        out[name + ":children"] = list(m._modules.items())
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, (x, y) in ((k, (a[k], b[k])) for k in a):
        if isinstance(x, tuple):
            for u, v in zip(x, y):
                assert (torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v), k
        else:
            assert x == y, k


def _scramble(net: Net) -> None:
    """Change every kind of state a guarded block may change."""
    with torch.no_grad():
        net.a.weight.add_(1.0)
        net.emb.weight.mul_(-1.0)
        net.bn.running_mean.fill_(3.0)
    net.a.bias.data = torch.randn(3)  # .data replaced, another shape
    net.bn.weight.data = torch.full((6,), 7.0)  # .data replaced, same shape
    net.head.weight = nn.Parameter(torch.zeros(10, 6))  # the tie broken
    net.bn.running_var = torch.zeros(6)  # buffer re-assigned
    net.emb.weight.grad.add_(5.0)  # grad values
    net.bn.bias.grad = torch.ones(6)  # grad object
    net.a.bias.grad = torch.ones(3)
    net.a.weight.requires_grad_(True)
    net.bn.weight.requires_grad_(False)
    net.train().bn.eval()
    net.a.register_parameter("extra", nn.Parameter(torch.ones(2)))
    net.bn.register_buffer("count", torch.zeros(1), persistent=False)
    net.add_module("added", nn.ReLU())
    net.a.register_forward_hook(lambda m, i, o: None, with_kwargs=True, always_call=True)
    net.a.register_forward_pre_hook(lambda m, a, k: None, with_kwargs=True)
    net.bn.register_full_backward_hook(lambda m, gi, go: None)
    net.bn.register_full_backward_pre_hook(lambda m, go: None)
    net.emb._register_state_dict_hook(lambda *a: None)
    net.emb.register_state_dict_pre_hook(lambda *a: None)
    net.emb._register_load_state_dict_pre_hook(lambda *a: None)
    net.emb.register_load_state_dict_post_hook(lambda *a: None)
    net.a._forward_hooks.clear()  # a pre-existing hook removed
    torch.rand(3)


def test_every_kind_of_state_is_restored_bit_exactly():
    net = _net()
    tied, bias_storage = net.emb.weight, net.a.bias.untyped_storage().data_ptr()
    before, rng = _bits(net), torch.get_rng_state()
    state = ModelState.capture(net)
    _scramble(net)
    assert len(state.changed()) > 20
    state.restore()
    assert state.changed() == []
    _same(before, _bits(net))
    assert net.head.weight is tied and net.emb.weight is tied  # tied parameters stay tied
    assert net.a.bias.untyped_storage().data_ptr() == bias_storage  # the same storage
    assert not hasattr(net, "added") and "extra" not in net.a._parameters
    assert "count" not in net.bn._buffers and not net.bn._non_persistent_buffers_set
    assert torch.equal(torch.get_rng_state(), rng)
    assert net.bn._is_full_backward_hook is None


def test_changed_names_what_differs():
    net = _net()
    state = ModelState.capture(net)
    with torch.no_grad():
        net.a.weight.add_(1.0)
    net.bn.register_buffer("count", torch.zeros(1))
    net.a.register_forward_pre_hook(lambda m, i: None)
    net.drop.train()
    torch.rand(1)
    assert state.changed() == [
        "module 'a': _forward_pre_hooks 0 -> 1 hook(s)",
        "module 'bn': buffer 'count' added",
        "module 'drop': training False -> True",
        "tensor 'a.weight': values differ",
        "global CPU RNG state",
    ]


def test_restore_leaves_unchanged_tensors_unwritten_and_keeps_handles_working():
    net = _net()
    handle = net.a.register_forward_pre_hook(lambda m, i: None)
    versions = [p._version for p in net.parameters()]
    with guarded(net, restore="always"):
        net.a.register_forward_hook(lambda m, i, o: None)
    assert [p._version for p in net.parameters()] == versions
    assert len(net.a._forward_pre_hooks) == 1
    handle.remove()  # the restored dict is the one the handle points at
    assert len(net.a._forward_pre_hooks) == 0


def test_a_parametrization_registered_inside_is_removed():
    class Double(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return 2 * w

    net = nn.Sequential(nn.Linear(3, 3))
    weight, cls = net[0].weight, type(net[0])
    with guarded(net, restore="always"):
        parametrize.register_parametrization(net[0], "weight", Double())
        assert parametrize.is_parametrized(net[0])
    assert type(net[0]) is cls and not parametrize.is_parametrized(net[0])
    assert net[0].weight is weight and "parametrizations" not in net[0]._modules


def test_guarded_on_error_restores_only_when_the_block_raises():
    net = _net()
    before = _bits(net)
    with pytest.raises(KeyError):
        with guarded(net):
            _scramble(net)
            raise KeyError("boom")
    _same(before, _bits(net))
    with guarded(net) as state:
        with torch.no_grad():
            net.a.weight.add_(1.0)
    assert state.changed() == ["tensor 'a.weight': values differ"]


def test_version_only_tensor_that_moved_raises_naming_it():
    net = nn.Sequential(nn.Linear(4, 4), nn.Embedding(300, 8))
    before = net[0].weight.detach().clone()
    state = ModelState.capture(net, copy_limit=100)  # the 2400-element table is not copied
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].weight.add_(1.0)
    assert "tensor '1.weight': written in place (version counter moved)" in state.changed()
    with pytest.raises(RuntimeError, match=r"\['1\.weight'\]") as err:
        state.restore()
    assert "0.weight" not in str(err.value)
    assert torch.equal(net[0].weight, before)  # everything else was restored


def test_version_mode_undoes_a_data_replacement_without_copying():
    net = nn.Linear(4, 4)
    w = net.weight.detach().clone()
    state = ModelState.capture(net, values="version")
    net.weight.data = torch.zeros(2)
    assert state.changed() == ["tensor 'weight': storage replaced (.data)"]
    state.restore()
    assert torch.equal(net.weight, w)


class _Counter:
    """Counts calls of the tensor-copying functions (monkeypatched)."""

    NAMES = ("clone", "to", "cpu", "copy_", "contiguous", "__deepcopy__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, getattr(torch.Tensor, name)))
        for name in ("clone", "empty_like", "zeros_like", "get_rng_state"):
            monkeypatch.setattr(torch, name, self._wrap(name, getattr(torch, name)))

    def _wrap(self, name, fn):
        def counted(*args, **kwargs):
            self.calls.append(name)
            return fn(*args, **kwargs)

        return counted


def test_cheap_mode_copies_no_tensor(monkeypatch):
    net = nn.Sequential(nn.Embedding(10**7, 1), nn.Linear(1, 4), nn.BatchNorm1d(4))
    net(torch.tensor([1, 2])).sum().backward()
    counter = _Counter(monkeypatch)
    state = ModelState.capture(net, cheap=True)
    assert counter.calls == []  # no tensor storage allocated
    net.train(False)
    net[1].register_forward_hook(lambda m, i, o: None)
    assert len(state.changed()) == 5  # 4 modes, 1 hook
    state.restore()
    assert counter.calls == [] and state.changed() == []
    ModelState.capture(net, values="none", rng=False)
    assert counter.calls == []
    ModelState.capture(nn.Linear(2, 2))  # the counter sees the copies of the default mode
    assert counter.calls.count("clone") >= 2 and "get_rng_state" in counter.calls


def test_host_copies_restore_on_version_or_storage_change():
    net = nn.Linear(3, 3)
    w = net.weight.detach().clone()
    net.weight.grad = torch.ones(3, 3)
    with guarded(net, restore="always", host=True) as state:
        with torch.no_grad():
            net.weight.mul_(2.0)
        net.weight.grad.add_(1.0)
        assert state.changed() == ["tensor 'weight': values differ",
                                   "tensor 'weight': .grad values differ"]
    assert torch.equal(net.weight, w) and torch.equal(net.weight.grad, torch.ones(3, 3))


def test_hook_counts_cover_every_hook_dict():
    net = _net()
    counts = hook_counts(net)
    assert counts["_forward_hooks"] == 1 and sum(counts.values()) == 1
    with guarded(net, restore="always"):
        _scramble(net)
        assert hook_counts(net)["_forward_hooks_always_called"] == 1
    assert hook_counts(net) == counts


def test_seeded_rng_is_reproducible_and_leaves_the_caller_untouched():
    torch.manual_seed(123)
    caller = torch.get_rng_state()
    with seeded_rng(0):
        a = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), caller)
    assert torch.equal(a, torch.rand(4, generator=torch.Generator().manual_seed(0)))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    with seeded_rng(g1):
        b = torch.rand(4)
    with seeded_rng(g2):
        c = torch.rand(4)
    assert torch.equal(b, c) and not torch.equal(a, b)
    assert torch.equal(g1.get_state(), g2.get_state())  # one draw consumed from each
    assert not torch.equal(g1.get_state(), torch.Generator().manual_seed(5).get_state())
    with pytest.raises(TypeError, match="Generator or an int"):
        with seeded_rng(1.5):
            pass


def test_preserve_rng_restores_also_on_error():
    state = torch.get_rng_state()
    with pytest.raises(ValueError):
        with preserve_rng():
            torch.rand(10)
            raise ValueError
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("kw, err, match", [
    ({"values": "all"}, ValueError, "valid values"),
    ({"copy_limit": -1}, ValueError, "copy_limit"),
    ({"cheap": True, "values": "copy"}, ValueError, "cheap=True"),
    ({"grads": "yes"}, TypeError, "grads must be a bool"),
    ({"devices": [1.0]}, TypeError, "CUDA device indices"),
])
def test_capture_validates_its_options(kw, err, match):
    with pytest.raises(err, match=match):
        ModelState.capture(nn.Linear(2, 2), **kw)


def test_guarded_validates_restore():
    with pytest.raises(ValueError, match="'on_error', 'always'"):
        with guarded(nn.Linear(2, 2), restore="never"):
            pass


def test_doctor_leaves_the_caller_rng_and_gives_the_same_result_with_dropout():
    from initwise.doctor import doctor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3)).train()
    batch = (torch.randn(64, 8), torch.randint(0, 3, (64,)))
    results = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        caller = torch.get_rng_state()
        results.append(doctor(net, batch).to_dict())
        assert torch.equal(torch.get_rng_state(), caller)
    assert results[0] == results[1]
    # dropout really drew: the seed the doctor's forward runs under (0) decides its numbers
    with seeded_rng(0):
        expected = net[2](torch.ones(1000)).eq(0).float().mean()
    assert 0.4 < float(expected) < 0.6


def test_overrides_and_apply_import_no_cycle():
    import inspect

    import initwise.policy._overrides as overrides

    assert "initwise.policy._apply" not in inspect.getsource(overrides)


def test_meta_sparse_and_lazy_tensors_are_handled():
    meta = ModelState.capture(nn.Linear(2, 2, device="meta"))
    assert meta.changed() == []  # no values to compare
    m = nn.Module()
    m.w = nn.Parameter(torch.eye(3).to_sparse())
    state = ModelState.capture(m)
    with torch.no_grad():
        m.w.mul_(2.0)
    assert state.changed() == ["tensor 'w': values differ"]
    state.restore()
    assert torch.equal(m.w.to_dense(), torch.eye(3))
    lazy = nn.LazyLinear(3)
    assert ModelState.capture(lazy).changed() == []  # the uninitialized parameter: object only
