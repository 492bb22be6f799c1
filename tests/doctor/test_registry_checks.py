"""Checks as values: one owner per code, clashes refused with the owner named, unregister,
scoped registration, run_checks verifying codes, and CHECK_CODES enforced for the built-ins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initwise.doctor import (
    CHECK_CODES,
    CHECKS,
    Check,
    CheckRegistry,
    Finding,
    doctor,
    register_check,
    registered_checks,
    run_checks,
    unregister_check,
)
from initwise.doctor.registry import BUILTIN_CHECKS


def _finding(code: str, where: str = "model") -> Finding:
    return Finding(check=code, severity="warning", where=where, evidence="measured", why="-",
                   fix="-")


def _vanishing_net() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A 10-layer ReLU MLP with tiny weights: signal.vanishing (and grad findings) fire."""
    g = torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(9):
        layers += [nn.Linear(16, 16), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(16, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05, generator=g)
    batch = (torch.randn(64, 16, generator=g), torch.randint(0, 3, (64,), generator=g))
    return net, batch


def test_union_of_builtin_codes_is_check_codes_and_each_code_has_one_owner():
    codes = [c for check in BUILTIN_CHECKS for c in check.codes]
    assert sorted(codes) == sorted(CHECK_CODES) and len(codes) == len(set(codes)) == 22
    reg = CheckRegistry.builtin()
    assert reg.owner("signal.vanishing") == reg.owner("signal.exploding") == \
        "initwise.signal_scale"
    assert reg.owner("loss.nonfinite") == reg.owner("loss.init_mismatch") == "initwise.loss"
    assert reg.owner("grad.exploding") == "initwise.grad_scale"
    assert set(reg.codes()) == set(CHECK_CODES)


def test_clash_is_refused_naming_the_owner_and_unregister_restores_the_builtin():
    reg = CheckRegistry.builtin()
    mine = Check(name="team.vanishing", codes=("signal.vanishing",), fn=lambda m: [])
    with pytest.raises(ValueError, match=r"owned by check 'initwise\.signal_scale'.*overwrite"):
        reg.register(mine)
    reg.register(mine, overwrite=True)
    assert reg.owner("signal.vanishing") == "team.vanishing"
    assert reg.owner("signal.exploding") == "initwise.signal_scale"  # its other code stays
    reg.unregister("team.vanishing")
    assert reg.owner("signal.vanishing") == "initwise.signal_scale"
    assert [c.name for c in reg] == [c.name for c in BUILTIN_CHECKS]
    with pytest.raises(KeyError, match="no check named 'team.vanishing'"):
        reg.unregister("team.vanishing")


def test_register_check_overwrite_replaces_only_the_owner_of_that_code():
    net, batch = _vanishing_net()
    base = doctor(net, batch)
    assert "signal.vanishing" in base.codes
    register_check("signal.vanishing", lambda m: [_finding("signal.vanishing", "mine")],
                   overwrite=True)
    try:
        d = doctor(net, batch)
        vanishing = [f for f in d.findings if f.check == "signal.vanishing"]
        assert [f.where for f in vanishing] == ["mine"]  # the built-in's finding is dropped
        others = {f.check for f in base.findings} - {"signal.vanishing"}
        assert others <= d.codes  # no other code of any built-in check is lost
    finally:
        unregister_check("signal.vanishing")
    assert CHECKS.owner("signal.vanishing") == "initwise.signal_scale"
    assert doctor(net, batch).to_dict() == base.to_dict()


def test_default_register_check_refuses_a_builtin_code():
    with pytest.raises(ValueError, match="owned by check 'initwise.units_dead'"):
        register_check("units.dead", lambda m: [])


def test_registered_is_scoped_and_cleans_up_on_error():
    extra = Check(name="team.width", codes=("team.width",),
                  fn=lambda m: [_finding("team.width")])
    before = list(CHECKS)
    with pytest.raises(RuntimeError, match="boom"):
        with registered_checks(extra):
            assert "team.width" in CHECKS
            raise RuntimeError("boom")
    assert list(CHECKS) == before and "team.width" not in CHECKS


def test_run_checks_rejects_an_undeclared_code_naming_the_check():
    liar = Check(name="team.liar", codes=("team.a",), fn=lambda m: [_finding("team.b")])
    with pytest.raises(ValueError, match=r"check 'team\.liar' emitted .*'team\.b'"):
        run_checks(object(), liar)
    junk = Check(name="team.junk", codes=("team.a",), fn=lambda m: ["not a finding"])
    with pytest.raises(TypeError, match="team.junk"):
        run_checks(object(), [junk])


def test_a_run_carries_its_own_checks_and_filters_by_preset_phase_needs():
    seen = []
    a = Check(name="a", codes=("t.a",), fn=lambda m: seen.append("a") or [_finding("t.a")],
              phase={"init", "train"})
    b = Check(name="b", codes=("t.b",), fn=lambda m: seen.append("b") or [_finding("t.b")],
              preset="full", needs={"forward", "grad", "update"})
    assert [f.check for f in run_checks(object(), [a, b])] == ["t.a"]
    assert [f.check for f in run_checks(object(), [a, b], preset="full")] == ["t.a", "t.b"]
    assert [f.check for f in run_checks(object(), [a, b], preset="full", phase="train")] == \
        ["t.a"]
    reg = CheckRegistry([a, b])
    assert [c.name for c in reg.checks_for(needs_available={"forward"})] == ["a"]
    assert "a" not in CHECKS  # nothing leaked into the default registry
    with pytest.raises(ValueError, match="owned by check 'a'"):
        CheckRegistry([a, Check(name="c", codes=("t.a",), fn=lambda m: [])])
    with pytest.raises(ValueError, match="phase"):
        reg.checks_for(phase="eval")


def test_builtin_phases_and_presets():
    reg = CheckRegistry.builtin()
    train = {c.name for c in reg.checks_for(phase="train", preset="full")}
    assert {"initwise.signal_scale", "initwise.units_dead", "initwise.grad_scale",
            "initwise.update_ratio"} <= train
    assert not {"initwise.loss", "initwise.logit_scale", "initwise.theory_depth"} & train
    quick = {c.name for c in reg.checks_for(preset="quick")}
    assert "initwise.grad_none" not in quick and "initwise.data_nonfinite" in quick
    assert len(reg.checks_for(preset="full")) == len(BUILTIN_CHECKS) == 19


def test_check_validates_its_fields():
    with pytest.raises(ValueError, match="unknown needs"):
        Check(name="x", codes=("x",), fn=lambda m: [], needs={"hessian"})
    with pytest.raises(ValueError, match="preset"):
        Check(name="x", codes=("x",), fn=lambda m: [], preset="slow")
    with pytest.raises(TypeError, match="callable"):
        Check(name="x", codes=("x",), fn=3)
    c = Check(name="x", codes="x", fn=lambda m: [])
    assert c.codes == ("x",) and c.needs == frozenset({"forward"})
