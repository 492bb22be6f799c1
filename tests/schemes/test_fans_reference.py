"""fans() against the brute-force counting twin in tests/reference/schemes_ref.py."""

import importlib.util
import itertools
import math
from pathlib import Path

import pytest
from torch import nn

from initwise.schemes import fans

_PATH = Path(__file__).resolve().parents[1] / "reference" / "schemes_ref.py"
_SPEC = importlib.util.spec_from_file_location("schemes_ref", _PATH)
ref = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ref)

CONFIGS = list(itertools.product([1, 3, 4], [1, 2, 3], [1, 2], [1, 2]))  # k, s, dil, groups


def _rounded(x):
    return max(1, math.floor(x + 0.5))


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("k,s,dil,groups", CONFIGS)
def test_conv2d_fans_equal_counted_terms(transposed, k, s, dil, groups):
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    m = cls(4, 6, (k, max(1, k - 1)), stride=(s, 1), dilation=dil, groups=groups)
    counted_in, counted_out = ref.counted_fans(m)
    got = fans(m)
    assert got.fan_in == _rounded(counted_in)
    assert got.fan_out == _rounded(counted_out)


@pytest.mark.parametrize("cls", [nn.Conv1d, nn.ConvTranspose1d, nn.Conv3d, nn.ConvTranspose3d])
def test_conv1d_3d_fans_equal_counted_terms(cls):
    m = cls(2, 4, 3, stride=2)
    counted_in, counted_out = ref.counted_fans(m)
    assert (fans(m).fan_in, fans(m).fan_out) == (_rounded(counted_in), _rounded(counted_out))


def test_linear_fans_equal_counted_terms():
    assert ref.counted_fans(nn.Linear(7, 3)) == (7.0, 3.0)
    assert (fans(nn.Linear(7, 3)).fan_in, fans(nn.Linear(7, 3)).fan_out) == (7, 3)
