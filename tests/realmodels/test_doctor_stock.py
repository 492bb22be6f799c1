"""The doctor does not call a healthy stock model broken (issue 15).

Freshly built tiny models (hidden 32, 2 layers or blocks; nothing downloaded) in their authors'
own init train fine; the doctor must report no warning or error on them. The regressions:

* ``grad.vanishing`` on BERT, DistilBERT, RoBERTa, BART: an attention key's relative gradient
  was compared with the FFN's and the pooler's (3e-5 x: an error), a product of the query's
  small weights, not a decay through depth;
* ``units.dead`` at 100 % on every timm ResNet block's ``bn2``: the zero-initialized last BN
  (Goyal et al. 2017) outputs exactly 0 while the ReLU after it reads the residual sum;
* ``theory.depth`` (preset "full") on every Transformer of 4 blocks: parallel FFN layers taken
  for one plain chain.

And the recall they must keep: a real decay through repeated blocks, a dead ReLU at a block's
end, a deep plain chain. Hugging Face models need the ``test`` extra, timm / torchvision the
``bench`` extra; without them those cases skip.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initwise
from initwise.doctor.checks_grad import depth_role

V, T, B, H = 64, 16, 16, 32


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def _labels(seed: int = 1, n: int = 4) -> torch.Tensor:
    return torch.randint(0, n, (B,), generator=torch.Generator().manual_seed(seed))


def _images(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.randn(B, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _hf(name: str, layers: int = 2) -> tuple[nn.Module, dict]:
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    enc = dict(vocab_size=V, hidden_size=H, num_hidden_layers=layers, num_attention_heads=2,
               intermediate_size=4 * H, max_position_embeddings=64, num_labels=4)
    cls_batch = {"input_ids": _ids(), "labels": _labels()}
    if name == "bert":
        return tf.BertForSequenceClassification(tf.BertConfig(**enc)), cls_batch
    if name == "roberta":
        return tf.RobertaForSequenceClassification(tf.RobertaConfig(**enc)), cls_batch
    if name == "distilbert":
        return tf.DistilBertForSequenceClassification(tf.DistilBertConfig(
            vocab_size=V, dim=H, n_layers=layers, n_heads=2, hidden_dim=4 * H,
            max_position_embeddings=64, num_labels=4)), cls_batch
    x = _ids()
    if name == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(
            vocab_size=V, n_embd=H, n_layer=layers, n_head=2, n_positions=64, bos_token_id=0,
            eos_token_id=0)), {"input_ids": x, "labels": x}
    if name == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(
            vocab_size=V, hidden_size=H, num_hidden_layers=layers, num_attention_heads=2,
            num_key_value_heads=2, intermediate_size=4 * H, max_position_embeddings=64)), \
            {"input_ids": x, "labels": x}
    if name == "t5":
        return tf.T5ForConditionalGeneration(tf.T5Config(
            vocab_size=V, d_model=H, d_kv=16, d_ff=4 * H, num_layers=layers, num_heads=2,
            decoder_start_token_id=0)), {"input_ids": x, "labels": _ids(2)}
    return tf.BartForConditionalGeneration(tf.BartConfig(
        vocab_size=V, d_model=H, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=4 * H,
        decoder_ffn_dim=4 * H, max_position_embeddings=64)), {"input_ids": x, "labels": _ids(2)}


class _Encoder(nn.Module):
    def __init__(self, norm_first: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, H)
        layer = nn.TransformerEncoderLayer(H, 2, 4 * H, batch_first=True, norm_first=norm_first)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(H, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(x)).mean(1))


class _LSTMLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.rnn = nn.Embedding(V, H), nn.LSTM(H, H, num_layers=2, batch_first=True)
        self.head = nn.Linear(H, V)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(x))[0])


class _Block(nn.Module):
    """timm's ResNet BasicBlock: ``conv-bn-relu-conv-bn, += shortcut, relu``; ``bn2``'s scale
    zero-initialized as timm does (``zero_init_last``)."""

    def __init__(self, c: int, bias: float = 0.0) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.act1, self.act2 = nn.ReLU(inplace=True), nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        nn.init.zeros_(self.bn2.weight)
        nn.init.constant_(self.bn1.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        x += shortcut
        return self.act2(x)


class _ResNet(nn.Module):
    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(_Block(8, bias), _Block(8, bias))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer1(self.stem(x)))


def _alarms(model: nn.Module, batch, checks: str = "standard") -> list[str]:
    d = initwise.doctor(model, batch, checks=checks, on_unknown="skip")
    return [f"{f.severity} {f.check} at {f.where}: {f.evidence}" for f in d.findings
            if f.severity in ("warning", "error")]


@pytest.mark.parametrize("name", ["bert", "distilbert", "roberta", "bart"])
def test_attention_keys_are_not_a_vanishing_gradient(name):
    # before the fix: grad.vanishing ERROR at the attention key (2.7e-5 to 3.4e-5 x a later
    # layer); every query/key of the stack measures the same, so depth shows no decay
    model, batch = _hf(name)
    assert _alarms(model, batch) == []


@pytest.mark.parametrize("name", ["gpt2", "llama", "t5"])
def test_stock_language_models_are_healthy(name):
    model, batch = _hf(name)
    assert _alarms(model, batch) == []


@pytest.mark.parametrize("name", ["gpt2", "bart"])
def test_parallel_ffn_layers_are_no_plain_chain_for_the_theory(name):
    model, batch = _hf(name, layers=4)
    assert _alarms(model, batch, checks="full") == []


@pytest.mark.parametrize("norm_first", [False, True])
def test_torch_transformer_encoder_is_healthy(norm_first):
    torch.manual_seed(0)
    assert _alarms(_Encoder(norm_first), (_ids(), _labels())) == []


def test_lstm_lm_is_healthy():
    torch.manual_seed(0)
    x = _ids()
    assert _alarms(_LSTMLM(), (x[:, :-1], x[:, 1:])) == []


def test_zero_initialized_last_bn_is_not_dead_units():
    net, x, y = _ResNet(), _images(size=16), _labels()
    assert _alarms(net, (x, y)) == []
    # the branch does learn: the loss gradient reaches bn2's zero scale
    loss = nn.functional.cross_entropy(net(x), y)
    grad = torch.autograd.grad(loss, net.layer1[0].bn2.weight)[0]
    assert float(grad.abs().max()) > 1e-4


def test_a_dead_relu_inside_a_block_is_still_found():
    d = initwise.doctor(_ResNet(bias=-100.0), (_images(size=16), _labels()))
    dead = next(f for f in d.findings if f.check == "units.dead")
    assert dead.severity == "error" and dead.where == "layer1.0.bn1"


def test_depth_role_groups_the_same_layer_of_each_block():
    assert depth_role("encoder.layer.11.attention.self.key") == "encoder.layer.#.attention.self.key"
    assert depth_role("h.0.mlp.c_fc") == depth_role("h.7.mlp.c_fc") != depth_role("h.0.attn.c_attn")


class _SigmoidStack(nn.Module):
    """Repeated blocks (Linear -> sigmoid, Linear -> sigmoid): the gradient decays through
    depth as in a plain sigmoid chain, seen between the same layers of successive blocks."""

    def __init__(self, blocks: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(32, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid())
            for _ in range(blocks))
        self.head = nn.Linear(32, 4)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def test_a_decay_through_repeated_blocks_is_still_found():
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))
    d = initwise.doctor(_SigmoidStack(), (x, y))
    f = next(f for f in d.findings if f.check == "grad.vanishing")
    assert f.severity == "error" and f.where.startswith("blocks.0.")
    later = f.evidence.split("the later ")[1].split(" ")[0]  # compared with the same layer
    assert later != f.where and depth_role(later) == depth_role(f.where)


@pytest.mark.parametrize("arch", ["resnet18", "vit_tiny_patch16_224", "convnext_atto"])
def test_timm_models_are_healthy(arch):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    kw = {"img_size": 32} if arch.startswith("vit") else {}
    model = timm.create_model(arch, num_classes=4, **kw)
    assert _alarms(model, (_images(), _labels())) == []


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_models_are_healthy(arch):
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    assert _alarms(getattr(models, arch)(num_classes=4), (_images(), _labels())) == []
