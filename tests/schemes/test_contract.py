"""The torch contract every scheme keeps: in place, returns the tensor, no autograd, meta-safe."""

import pytest
import torch

import initwise.schemes as S

ARGS = {
    "constant_": (0.5,), "scale_": (2.0,), "scale_to_std_": (0.1,), "sparse_": (3,),
}
SHAPE = {"eye_": (6, 4)}
SCHEMES = sorted(n for n in S.__all__ if n.endswith("_"))


def test_the_catalogue_is_complete():
    wanted = {"uniform_", "normal_", "trunc_normal_", "variance_scaling_", "xavier_normal_",
              "xavier_uniform_", "glorot_normal_", "glorot_uniform_", "kaiming_normal_",
              "kaiming_uniform_", "he_normal_", "he_uniform_", "lecun_normal_", "lecun_uniform_",
              "orthogonal_", "delta_orthogonal_", "identity_", "dirac_", "sparse_", "zero_",
              "zeros_", "ones_", "constant_", "scale_"}
    assert wanted <= set(SCHEMES)


@pytest.mark.parametrize("name", SCHEMES)
def test_in_place_returns_tensor_without_autograd_history(name):
    w = torch.nn.Parameter(torch.full(SHAPE.get(name, (6, 4, 3)), 0.25))
    out = getattr(S, name)(w, *ARGS.get(name, ()))
    assert out is w and out.grad_fn is None and w.requires_grad and w.is_leaf
    assert not bool((w == 0.25).all())  # it wrote into w (no scheme here leaves 0.25 everywhere)


@pytest.mark.parametrize("name", SCHEMES)
def test_meta_tensors_are_accepted(name):
    if name == "scale_to_std_":
        pytest.skip("needs values: a data-dependent rescale has nothing to read on meta")
    w = torch.empty(SHAPE.get(name, (6, 4, 3)), device="meta")
    assert getattr(S, name)(w, *ARGS.get(name, ())) is w


@pytest.mark.parametrize("name", SCHEMES)
def test_docstring_states_property_and_reference(name):
    doc = getattr(S, name).__doc__
    assert doc and "Returns:" in doc
    fills = {"uniform_", "normal_", "constant_", "zeros_", "ones_", "scale_", "scale_to_std_",
             "eye_", "trunc_normal_"}
    if name not in fills:
        assert "References:" in doc, name
