"""Hugging Face LM batches ``{"input_ids": x, "labels": y}`` are scored as the model scores them.

A causal LM (GPT-2, Llama, ``BertLMHeadModel(is_decoder=True)``) shifts internally: its logits at
position t are scored against ``labels[:, t + 1]``; a masked LM and a seq2seq model (T5, BART) score
them aligned. initwise's loss (``modelio``, the doctor's ``loss_at_init``, init's loss before)
must equal the model's own ``model(**batch).loss``, ``-100`` labels ignored. Tiny configs (hidden
32, 1-2 layers), nothing downloaded; transformers from the ``test`` extra, else skipped.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initwise
from initwise.modelio import (
    LossSpec,
    call_model,
    compute_loss,
    extract_logits,
    infer_loss,
    label_prior_loss,
    label_shift,
    split_batch,
)

tf = pytest.importorskip("transformers")

V, H = 64, 32


def _ids(seed: int, shape: tuple[int, int] = (6, 10)) -> torch.Tensor:
    return torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))


def _padded(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[:2, -3:] = -100  # padding, ignored by the model's loss
    return y


def _causal(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=V, n_embd=H, n_layer=2, n_head=2,
                                                n_positions=32, bos_token_id=0, eos_token_id=0))
    if name == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(
            vocab_size=V, hidden_size=H, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, intermediate_size=64, max_position_embeddings=32))
    return tf.BertLMHeadModel(tf.BertConfig(
        vocab_size=V, hidden_size=H, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, is_decoder=True))


def _aligned(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "bert_mlm":
        return tf.BertForMaskedLM(tf.BertConfig(
            vocab_size=V, hidden_size=H, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=32))
    if name == "t5":
        return tf.T5ForConditionalGeneration(tf.T5Config(
            vocab_size=V, d_model=H, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
            decoder_start_token_id=0))
    return tf.BartForConditionalGeneration(tf.BartConfig(
        vocab_size=V, d_model=H, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=32))


def _initwise_losses(model: nn.Module, batch: dict) -> tuple[float, float, float]:
    """(modelio's loss, the doctor's loss at init, init's loss before) on ``batch``."""
    with torch.no_grad():
        inputs, targets = split_batch(batch, model)
        out = call_model(model, inputs)
        logits, _ = extract_logits(out)
        ours = float(compute_loss(infer_loss(logits, targets, output=out), logits, targets))
    doctor = initwise.doctor(model, batch).summary["loss_at_init"]
    with warnings.catch_warnings():  # what init then does to these heads is not tested here
        warnings.simplefilter("ignore", UserWarning)
        before = initwise.init(model, batch, seed=0).loss.before
    return ours, doctor, before


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert_decoder"])
def test_causal_lm_loss_equals_the_models_own(name):
    model = _causal(name).eval()
    x = _ids(0)
    batch = {"input_ids": x, "labels": _padded(x)}
    with torch.no_grad():
        own = float(model(**batch).loss)
        logits = model(input_ids=x).logits
    unshifted = float(F.cross_entropy(logits.reshape(-1, V), batch["labels"].reshape(-1)))
    assert abs(unshifted - own) > 1e-3  # 100 x the tolerance: the test tells them apart
    for got in _initwise_losses(model, batch):
        assert got == pytest.approx(own, abs=1e-5)


@pytest.mark.parametrize("name", ["bert_mlm", "t5", "bart"])
def test_masked_and_seq2seq_lm_losses_stay_aligned(name):
    model = _aligned(name).eval()
    x, y = _ids(1), _ids(2)
    if name == "bert_mlm":
        y = torch.where(torch.rand(y.shape, generator=torch.Generator().manual_seed(3)) < 0.3,
                        y, torch.full_like(y, -100))  # only masked positions are scored
    else:
        y = _padded(y)
    batch = {"input_ids": x, "labels": y}  # seq2seq: no decoder inputs, as users pass them
    with torch.no_grad():
        out = model(**batch)
        own = float(out.loss)
        shifted = float(compute_loss(LossSpec("ce", shift=1), out.logits, y))
    assert abs(shifted - own) > 1e-3
    for got in _initwise_losses(model, batch):
        assert got == pytest.approx(own, abs=1e-5)


class _OwnLoss(nn.Module):
    """A non-Hugging-Face LM whose output carries its own loss, shifted or not."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.emb, self.head = nn.Embedding(V, H), nn.Linear(H, V)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> SimpleNamespace:
        logits = self.head(self.emb(input_ids))
        s = self.shift
        loss = F.cross_entropy(logits[:, :logits.shape[1] - s].reshape(-1, V),
                               labels[:, s:].reshape(-1))
        return SimpleNamespace(logits=logits, loss=loss)


@pytest.mark.parametrize("shift", [0, 1])
def test_the_models_own_loss_decides_the_alignment(shift):
    torch.manual_seed(0)
    model, x = _OwnLoss(shift), _ids(4)
    with torch.no_grad():
        out = model(x, x)
    assert label_shift(out, out.logits, x) == shift
    spec = infer_loss(out.logits, x, output=out)
    assert float(compute_loss(spec, out.logits, x)) == pytest.approx(float(out.loss), abs=1e-6)


def test_without_an_output_sequence_targets_are_aligned():
    logits, y = torch.zeros(2, 5, V), _ids(5, (2, 5))
    assert infer_loss(logits, y).shift == 0
    assert label_shift(None, logits, y) == 0


def test_the_prior_counts_the_targets_the_model_scores():
    y = torch.tensor([[3, 7, 7, 7], [5, 7, 7, 7]])  # the first position is never a target
    assert label_prior_loss(LossSpec("ce", shift=1), y, V) == 0.0
    # unshifted: classes 3, 5, 7 with counts 1, 1, 6
    p = torch.tensor([1, 1, 6]) / 8
    assert label_prior_loss(LossSpec("ce"), y, V) == pytest.approx(float(-(p * p.log()).sum()))
    assert math.isclose(label_prior_loss(LossSpec("ce"), y, V), 0.7356, rel_tol=1e-3)
