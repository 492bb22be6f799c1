"""Boundary checks of initwise.doctor's public call."""

import pytest
import torch

import initwise


def test_a_torchscript_model_gets_a_clear_error_not_a_hook_failure():
    """Regression: a scripted model failed inside hook registration with a RuntimeError."""
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    with pytest.raises(TypeError, match="TorchScript"):
        initwise.doctor(scripted, torch.randn(4, 3))


def test_a_non_module_is_refused_by_name():
    with pytest.raises(TypeError, match="nn.Module"):
        initwise.doctor(lambda x: x, torch.randn(4, 3))
