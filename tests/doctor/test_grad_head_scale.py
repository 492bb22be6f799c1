"""Regression: a small output layer is not a vanishing gradient (grad.vanishing measures the body).

What broke: after ``diagnosis.fix`` on ``tanh20_ordered_bias_theory``, ``initwise.init`` left a
healthy body (tanh at q* = 1, chi_1 = 1.18) and a head shrunk to the loss budget; the last hidden
layer's relative gradient was ~5e-4 x the head's, because that ratio scales as ``||W_out||^2``.
"""

import math
import warnings

import pytest
import torch
import zoo_cases as zoo
from torch import nn

from initwise.doctor import doctor


def _quiet_doctor(model, batch, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return doctor(model, batch, **kw)


def _tanh_net(depth: int, head_scale: float, seed: int = 0, act=nn.Tanh) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(depth + 1):
        lin = nn.Linear(16, 16 if i < depth else 1)
        with torch.no_grad():
            lin.weight.normal_(0, 1 / math.sqrt(16), generator=g)  # LeCun: tanh near critical
            lin.bias.zero_()
            if i == depth:
                lin.weight.mul_(head_scale)
        layers += [lin, act()] if i < depth else [lin]
    return nn.Sequential(*layers)


def test_small_head_is_not_a_vanishing_gradient():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 16, generator=g), torch.randn(64, 1, generator=g)
    net = _tanh_net(6, head_scale=1e-3)
    d = _quiet_doctor(net, (x, y), checks="standard")
    rel = {s.name: s.grad_norm / s.weight_norm for s in d.layers if s.kind == "linear"}
    head = next(s.name for s in d.layers if s.is_output)
    # the case exercises the bug: last hidden vs head is far below the threshold ...
    assert rel["10"] / rel[head] < 1e-4
    # ... but through the body (chi_1 ~ 1 for LeCun tanh) nothing decays
    body = [rel[str(2 * i)] for i in range(6)]
    assert min(body[i] / max(body[i + 1:]) for i in range(5)) > 0.1
    assert "grad.vanishing" not in d.codes_at("error", "warning"), d.plain_text()


def test_genuine_body_decay_is_still_found():
    # sigmoid: slope <= 1/4 shrinks the backward signal per layer while the forward one keeps
    # its common mode 1/2, so the body's relative gradients decay toward the input
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(64, 16, generator=g), torch.randn(64, 1, generator=g)
    net = _tanh_net(12, head_scale=1.0, act=nn.Sigmoid)
    d = _quiet_doctor(net, (x, y), checks="standard")
    f = next(f for f in d.findings if f.check == "grad.vanishing")
    # 3.1e-8: below GRAD_VANISH_ERROR (1e-4), an error since the outcome calibration
    assert f.severity == "error" and f.where != "24", d.plain_text()  # not the head


def test_tanh20_theory_fix_leaves_no_grad_vanishing():
    pytest.importorskip("initwise.datainit")
    fn, _, _ = zoo.BROKEN["tanh20_ordered_bias_theory"]
    s = fn(0)  # "standard" (its zoo preset is "full"): grad.vanishing needs one backward only
    d = _quiet_doctor(s.model, s.batch, checks="standard")
    fixed = {f.check for f in d.findings if f.automatic}
    assert "grad.vanishing" in fixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d.fix(s.model, s.batch)
    after = _quiet_doctor(s.model, s.batch, checks="standard")
    assert not (fixed & after.codes_at("error", "warning")), after.plain_text()
