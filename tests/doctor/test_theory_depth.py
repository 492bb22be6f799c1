"""theory.depth: a plain chain deeper than the mean-field trainable depth, and its fix text."""

import math
import warnings

import torch
from torch import nn

from initwise.doctor import doctor
from initwise.doctor.fixes import DATAINIT_SNIPPET


def _chain(act, depth: int, sigma_b: float, seed: int = 0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(depth):
        lin = nn.Linear(32, 32 if i < depth - 1 else 1)
        with torch.no_grad():
            lin.weight.normal_(0, 1 / math.sqrt(32), generator=g)  # sigma_w = 1
            lin.bias.normal_(0, sigma_b, generator=g)
        layers += [lin, act()] if i < depth - 1 else [lin]
    return nn.Sequential(*layers)


def _find(model):
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(256, 32, generator=g), torch.randn(256, 1, generator=g))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = doctor(model, batch, checks="full")
    return next((f for f in d.findings if f.check == "theory.depth"), None)


def test_ordered_tanh_chain_is_flagged_with_the_init_fix():
    f = _find(_chain(nn.Tanh, 20, sigma_b=1.0))  # trainable depth ~6.5 (ordered phase)
    assert f is not None and f.metrics["depth"] == 20 and f.metrics["limit"] < 10
    assert f.fix_id == "initwise.init" and f.automatic and f.fix_code == DATAINIT_SNIPPET
    assert "initwise.init" in f.fix


def test_deep_sigmoid_chain_gets_no_init_fix_and_says_why():
    f = _find(_chain(nn.Sigmoid, 20, sigma_b=0.0))
    assert f is not None
    assert f.fix_id is None and not f.automatic and f.fix_code == ""
    assert "No initialization makes a deep chain of sigmoid units trainable" in f.fix


def test_shallow_tanh_chain_is_not_flagged():
    assert _find(_chain(nn.Tanh, 4, sigma_b=0.0)) is None
