"""Hugging Face ``Conv1D`` (GPT-2's projections, weight ``(in, out)``) and HF's RMS norms in the
layer registry: known by qualified class name, without ``import initwise`` importing transformers.

Tiny configs only (hidden 32, 2 layers); nothing is downloaded. transformers comes from the
``test`` extra; without it these tests skip.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import initwise
from initwise.layers import layer_kind, layer_type
from initwise.schemes import fans

transformers = pytest.importorskip("transformers")
from transformers.pytorch_utils import Conv1D  # noqa: E402


def _gpt2(seed: int = 0) -> nn.Module:
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2, n_positions=32,
                                 bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg)


def _ids(seed: int = 0, shape: tuple[int, int] = (8, 12)) -> torch.Tensor:
    return torch.randint(0, 64, shape, generator=torch.Generator().manual_seed(seed))


def test_conv1d_is_a_linear_layer_with_in_out_fans():
    layer = Conv1D(nf=6, nx=4)  # weight (4, 6): y = x @ W + b, 4 inputs, 6 outputs
    t = layer_type(layer)
    assert layer_kind(layer) == "linear"
    assert (t.unit_dim, t.axis(layer)) == (-1, 1)
    assert tuple(fans(layer)) == (4, 6, 1)
    assert tuple(fans(layer, "bias")) == (4, 6, 1)
    # a bare tensor has no layout: torch's rule (fan_in = shape[1]) is all that can be said
    assert tuple(fans(layer.weight)) == (6, 4, 1)


def test_conv1d_fans_refuse_an_unknown_parameter():
    layer = Conv1D(nf=6, nx=4)
    layer.scale = nn.Parameter(torch.ones(6))
    with pytest.raises(ValueError, match=r"Conv1D\.scale.*knows \['weight', 'bias'\]"):
        fans(layer, "scale")


def test_lecun_on_gpt2_draws_conv1d_with_its_true_fan_in():
    model = _gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about an unknown layer
        initwise.apply(model, "lecun", seed=0)
    w = model.transformer.h[0].attn.c_attn.weight  # (32 in, 96 out)
    assert tuple(w.shape) == (32, 96)
    # LeCun: std 1/sqrt(fan_in) = 1/sqrt(32) = 0.177 (torch's tensor rule would give 1/sqrt(96))
    assert float(w.detach().std()) == pytest.approx(1 / math.sqrt(32), rel=0.05)


def test_init_and_apply_on_gpt2_say_nothing_about_conv1d():
    # "generic": the per-layer rules, which must know every layer ("auto" keeps GPT-2's own)
    for call in (lambda m: initwise.apply(m, "generic", seed=0),
                 lambda m: initwise.init(m, {"input_ids": _ids(), "labels": _ids()},
                                         policy="generic", seed=0)):
        model = _gpt2()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(model)
        text = " ".join(str(w.message) for w in caught)
        assert "Conv1D" not in text and "does not cover" not in text, text


def test_init_calibrates_conv1d_units_along_axis_1():
    # square first layer: only the registry can tell its unit axis; uncentered inputs leave units
    # of a structural draw dead on every row, which the walk revives along the unit axis
    torch.manual_seed(0)
    net = nn.Sequential(Conv1D(nf=16, nx=16), nn.ReLU(), Conv1D(nf=3, nx=16))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(256, 16, generator=g) + 1, torch.randint(0, 3, (256,), generator=g)
    report = initwise.init(net, (x, y), policy="generic", seed=0)  # "auto" would keep it
    first = report.layer("0")
    assert first.module_type == "Conv1D" and first.converged
    with torch.no_grad():
        pre = net[0](x)  # (256, 16): units along the weight's axis 1
    assert float(pre.pow(2).mean().sqrt()) == pytest.approx(first.pre_std, rel=0.02)
    assert float(pre.mean(0).abs().max()) < 1e-4  # every unit centred on the batch
    assert bool((pre > 0).any(0).all())  # and alive


@pytest.mark.parametrize("module, cls", [
    ("transformers.models.llama.modeling_llama", "LlamaRMSNorm"),
    ("transformers.models.t5.modeling_t5", "T5LayerNorm"),
])
def test_hf_rms_norms_are_norms(module, cls):
    norm = getattr(__import__(module, fromlist=[cls]), cls)(8)
    assert layer_kind(norm) == "norm"
    with torch.no_grad():
        norm.weight.fill_(3.0)
    initwise.apply(norm, "generic", seed=0)
    assert torch.equal(norm.weight, torch.ones(8))


def test_gemma_rms_norm_is_left_unknown():
    # its weight is an offset (1 + weight, initialized to 0): a norm's (1, 0) would double it
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
    assert layer_type(GemmaRMSNorm(8)) is None


def test_importing_initwise_and_looking_up_layers_imports_no_transformers():
    code = ("import sys, torch, initwise, initwise.layers as L; "
            "L.layer_type(torch.nn.Linear(2, 2)); L.layer_kind(torch.nn.LayerNorm(2)); "
            "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_apply_on_llama_and_t5_knows_every_parametrized_module():
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=32))
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=64, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2))
    for model in (llama, t5):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            initwise.apply(model, "generic", seed=0)
        assert not [str(w.message) for w in caught], [str(w.message) for w in caught]
