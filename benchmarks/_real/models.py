"""The model zoo of the real-models benchmark: small configs of the libraries users train.

Each :class:`ModelSpec` builds its model with the library's own init (``build()`` after
``torch.manual_seed(seed)``), names the task it learns and how its batches look and its loss
is taken (``kind``):

* ``hf_cls``: a Hugging Face ``*ForSequenceClassification``; batches ``{"input_ids": x,
  "labels": y}``, loss = cross-entropy of the model's logits (computed here).
* ``hf_lm``: a Hugging Face causal LM; batches ``{"input_ids": x, "labels": x}``, loss taken
  from the model (it shifts the labels itself), as HF users do.
* ``hf_s2s``: T5; batches ``{"input_ids": src, "decoder_input_ids": shift(tgt), "labels":
  tgt}`` (what ``DataCollatorForSeq2Seq(model=...)`` yields), loss from the model.
* ``torch_cls`` / ``image``: ``(x, y)``, loss = cross-entropy of the logits.
* ``torch_lm``: ``(x[:, :-1], x[:, 1:])``, loss = token cross-entropy of the logits.

Dropout is 0 everywhere (a 100-step budget does not overfit, and train and eval forwards then
agree). Sizes are chosen so the full run fits 25 minutes on 2 cores (see real_models.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from _real.tasks import CLS, PAD, SEQ_LEN, VOCAB, Task
from _real.vision_import import import_torchvision

HIDDEN = 64
LAYERS = 2
HEADS = 2
FFN = 128
N_CLASSES = 4


@dataclass
class ModelSpec:
    """How to build one model and talk to it.

    Attributes:
        name: the benchmark's name for it (``--models``).
        library: ``transformers``, ``timm``, ``torchvision`` or ``torch``.
        task: a key of :data:`_real.tasks.TASKS`.
        kind: ``hf_cls``, ``hf_lm``, ``hf_s2s``, ``torch_cls``, ``torch_lm`` or ``image``.
        build: builds the model with its library's own init (global RNG seeded by the caller).
        config: the small config, for the JSON.
        batch_size: training and calibration batch size.
    """

    name: str
    library: str
    task: str
    kind: str
    build: Callable[[], nn.Module]
    config: dict = field(default_factory=dict)
    batch_size: int = 32

    def available(self) -> str | None:
        """``None`` when the model can be built here, else the reason it is skipped."""
        if self.library == "torch":
            return None
        if importlib.util.find_spec(self.library) is None:
            return f"{self.library} is not installed (pip install -e '.[bench-real]')"
        if self.library in ("timm", "torchvision"):
            try:
                if import_torchvision() is None:
                    return "torchvision is not installed (timm needs it)"
            except RuntimeError as exc:
                return f"torchvision does not import: {exc}"
        return None


def make_batch(spec: ModelSpec, rows: tuple[torch.Tensor, ...]) -> Any:
    """The batch a user of that library would feed, from a task's raw rows."""
    if spec.kind == "hf_cls":
        return {"input_ids": rows[0], "labels": rows[1]}
    if spec.kind == "hf_lm":
        return {"input_ids": rows[0], "labels": rows[0]}
    if spec.kind == "hf_s2s":
        src, tgt = rows
        start = torch.full_like(tgt[:, :1], PAD)
        return {"input_ids": src, "decoder_input_ids": torch.cat([start, tgt[:, :-1]], 1),
                "labels": tgt}
    if spec.kind == "torch_lm":
        return rows[0][:, :-1], rows[0][:, 1:]
    return rows[0], rows[1]


def loss_and_count(spec: ModelSpec, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
    """The training loss (mean over targets) and the number of targets it averages."""
    if spec.kind in ("hf_lm", "hf_s2s"):
        out = model(**batch)
        n = batch["labels"][:, 1:].numel() if spec.kind == "hf_lm" else batch["labels"].numel()
        return out.loss, n
    if spec.kind == "hf_cls":
        logits = model(input_ids=batch["input_ids"]).logits
        return F.cross_entropy(logits, batch["labels"]), batch["labels"].numel()
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), y.numel()


class TokenTransformer(nn.Module):
    """``nn.TransformerEncoder`` classifier on tokens: embeddings + positions, mean pooling."""

    def __init__(self, norm_first: bool, layers: int = 4, d: int = HIDDEN, heads: int = 4,
                 ffn: int = FFN, n_out: int = N_CLASSES):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(SEQ_LEN, d)
        layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False,
                                             norm=nn.LayerNorm(d) if norm_first else None)
        self.head = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        h = self.encoder(self.embed(x) + self.pos(pos))
        return self.head(h.mean(1))


class LSTMLM(nn.Module):
    """An LSTM language model: embedding, one LSTM layer, a linear decoder."""

    def __init__(self, d: int = HIDDEN, hidden: int = 128):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.lstm = nn.LSTM(d, hidden, batch_first=True)
        self.out = nn.Linear(hidden, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.embed(x))[0])


def _hf(cls_name: str, cfg_name: str, **cfg: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import_torchvision()  # transformers imports it when installed: load it safely first
        import transformers

        config = getattr(transformers, cfg_name)(**cfg)
        return getattr(transformers, cls_name)(config)
    return build


def _timm(name: str, **kw: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import_torchvision()
        import timm

        return timm.create_model(name, pretrained=False, num_classes=10, **kw)
    return build


def _tv(name: str, **kw: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        tv = import_torchvision()
        return getattr(tv.models, name)(weights=None, num_classes=10, **kw)
    return build


_BERT = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
             num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=SEQ_LEN + 8,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=N_CLASSES,
             pad_token_id=PAD)
_DISTIL = dict(vocab_size=VOCAB, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN,
               max_position_embeddings=SEQ_LEN + 8, dropout=0.0, attention_dropout=0.0,
               seq_classif_dropout=0.0, num_labels=N_CLASSES, pad_token_id=PAD)
_ROBERTA = dict(_BERT, type_vocab_size=1, max_position_embeddings=SEQ_LEN + 8)
_GPT2 = dict(vocab_size=VOCAB, n_positions=SEQ_LEN + 8, n_embd=HIDDEN, n_layer=LAYERS,
             n_head=HEADS, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=CLS,
             eos_token_id=2)
_LLAMA = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
              num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=HEADS,
              max_position_embeddings=SEQ_LEN + 8, pad_token_id=PAD, bos_token_id=CLS,
              eos_token_id=2)
_T5 = dict(vocab_size=VOCAB, d_model=HIDDEN, d_kv=HIDDEN // HEADS, d_ff=FFN, num_layers=LAYERS,
           num_decoder_layers=LAYERS, num_heads=HEADS, dropout_rate=0.0, pad_token_id=PAD,
           eos_token_id=2, decoder_start_token_id=PAD)

# The image models keep their architectures (widths, depths) at 32x32 inputs; ViT keeps its 16
# pixel patches (2x2 patches + [CLS] token). Batches of 16 images keep the full run within 25
# minutes on 2 cores (resnet18 steps dominate it).
IMAGE_BATCH = 16
SPECS: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("bert", "transformers", "tokens", "hf_cls",
              _hf("BertForSequenceClassification", "BertConfig", **_BERT), _BERT),
    ModelSpec("distilbert", "transformers", "tokens", "hf_cls",
              _hf("DistilBertForSequenceClassification", "DistilBertConfig", **_DISTIL), _DISTIL),
    ModelSpec("roberta", "transformers", "tokens", "hf_cls",
              _hf("RobertaForSequenceClassification", "RobertaConfig", **_ROBERTA), _ROBERTA),
    ModelSpec("gpt2", "transformers", "markov", "hf_lm",
              _hf("GPT2LMHeadModel", "GPT2Config", **_GPT2), _GPT2),
    ModelSpec("t5", "transformers", "markov_s2s", "hf_s2s",
              _hf("T5ForConditionalGeneration", "T5Config", **_T5), _T5),
    ModelSpec("llama", "transformers", "markov", "hf_lm",
              _hf("LlamaForCausalLM", "LlamaConfig", **_LLAMA), _LLAMA),
    ModelSpec("timm_resnet18", "timm", "digits", "image", _timm("resnet18"),
              {"timm": "resnet18", "num_classes": 10}, IMAGE_BATCH),
    ModelSpec("timm_vit_tiny", "timm", "digits", "image",
              _timm("vit_tiny_patch16_224", img_size=32),
              {"timm": "vit_tiny_patch16_224", "img_size": 32, "num_classes": 10}, IMAGE_BATCH),
    ModelSpec("timm_convnext_atto", "timm", "digits", "image", _timm("convnext_atto"),
              {"timm": "convnext_atto", "num_classes": 10}, IMAGE_BATCH),
    ModelSpec("tv_resnet18", "torchvision", "digits", "image", _tv("resnet18"),
              {"torchvision": "resnet18", "num_classes": 10}, IMAGE_BATCH),
    ModelSpec("tv_mobilenet_v3_small", "torchvision", "digits", "image",
              _tv("mobilenet_v3_small", dropout=0.0),
              {"torchvision": "mobilenet_v3_small", "num_classes": 10, "dropout": 0.0},
              IMAGE_BATCH),
    ModelSpec("te_postln", "torch", "tokens", "torch_cls", lambda: TokenTransformer(False),
              {"d_model": HIDDEN, "nhead": 4, "ffn": FFN, "layers": 4, "norm_first": False}),
    ModelSpec("te_preln", "torch", "tokens", "torch_cls", lambda: TokenTransformer(True),
              {"d_model": HIDDEN, "nhead": 4, "ffn": FFN, "layers": 4, "norm_first": True}),
    ModelSpec("lstm_lm", "torch", "markov", "torch_lm", LSTMLM,
              {"embed": HIDDEN, "hidden": 128, "layers": 1}),
]}


def check_task(spec: ModelSpec, task: Task) -> None:
    """Refuse a spec/task pair that cannot go together (a programming error in the zoo)."""
    if task.name != spec.task:
        raise ValueError(f"model {spec.name!r} learns task {spec.task!r}, got {task.name!r}")
