"""Issue 15: a library model's own init is kept (``policy="respect"``, chosen by ``"auto"``),
and the generic rules no longer break what such models do on purpose. Tiny configs only."""

from __future__ import annotations

import math
import types
import warnings

import pytest
import torch
from torch import nn

import initwise
import initwise.datainit as di
from initwise.activations import activation_facts
from initwise.autoinit import own_init_problem
from initwise.graph import trace
from initwise.policy import choose_auto, get_policy, model_library

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


def _tokens(seed: int, n: int, vocab: int = 64, length: int = 12, classes: int = 4,
            probs: tuple[float, ...] | None = None):
    """Classification from tokens: [CLS] (id ``classes``) first, then one marker token (the
    label) somewhere in the sequence."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(classes + 1, vocab, (n, length), generator=g)
    y = torch.randint(0, classes, (n,), generator=g) if probs is None else \
        torch.multinomial(torch.tensor(probs), n, replacement=True, generator=g)
    x[torch.arange(n), torch.randint(1, length, (n,), generator=g)] = y
    x[:, 0] = classes
    return x, y


def _bert(seed: int = 0):
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=16, num_labels=4)
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(cfg)


def _cal(n_batches: int = 4, rows: int = 32, probs: tuple[float, ...] | None = None):
    x, y = _tokens(0, n_batches * rows, probs=probs)
    return [({"input_ids": x[i * rows:(i + 1) * rows]}, y[i * rows:(i + 1) * rows])
            for i in range(n_batches)]


def _held_out_loss(model, seed: int = 7) -> float:
    x, y = _tokens(seed, 256)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=x).logits
    return float(nn.functional.cross_entropy(logits, y))


def test_respect_keeps_every_parameter_of_a_bert_whose_cls_features_are_collapsed():
    """BERT's [CLS] features are nearly the same for every sample at init (near-uniform
    attention): under "respect" its head keeps the model's own zero bias too, since the prior
    removes the gradient that first moves those features (COLLAPSED_LOGITS)."""
    for probs, why in ((None, "within 5% of the label prior"),  # balanced: at the prior
                       ((0.7, 0.1, 0.1, 0.1), "logits barely vary")):  # far above it
        model = _bert()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        rep = di.init(model, _cal(probs=probs), policy="respect", seed=0)
        after = model.state_dict()
        assert [k for k in before if not torch.equal(before[k], after[k])] == []
        assert {r.scheme for r in rep.params} == {"kept"}
        assert all("kept" in lc.note for lc in rep.layers)
        assert why in rep.layer("classifier").note
        assert rep.policy == "respect"


def test_respect_sets_the_prior_of_a_head_reading_varied_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), 512, replacement=True,
                          generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rep = di.init(net, [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)],
                  policy="respect", seed=0)
    changed = [k for k in before if not torch.equal(before[k], net.state_dict()[k])]
    assert set(changed) <= {"2.weight", "2.bias"} and "2.bias" in changed
    with torch.no_grad():  # held-out rows 256..511, never seen by init
        held = float(nn.functional.cross_entropy(net(x[256:]), y[256:]))
    counts = torch.bincount(y[256:], minlength=4).double()
    prior = float(-(counts / counts.sum() * (counts / counts.sum()).log()).sum())
    assert abs(held - prior) < 0.05 * prior
    assert rep.loss.held_out is not None and rep.loss.expected is not None


def test_apply_auto_keeps_a_library_model_and_says_why():
    model = _bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rep = initwise.apply(model, seed=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert rep.policy == "respect" and "transformers" in rep.policy_reason
    assert model_library(nn.Linear(2, 2)) is None


def _fake_library_mlp(depth: int = 6, std: float = 4.0) -> nn.Module:
    """A deep tanh MLP whose class claims to come from transformers, drawn far too large."""
    cls = types.new_class("FakeLibraryMLP", (nn.Sequential,))
    cls.__module__ = "transformers.models.fake"
    layers = []
    for _ in range(depth):
        lin = nn.Linear(32, 32)
        nn.init.normal_(lin.weight, std=std / math.sqrt(32))
        layers += [lin, nn.Tanh()]
    return cls(*layers, nn.Linear(32, 3))


def test_auto_asks_the_doctor_and_falls_back_to_generic_on_a_broken_own_init():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 32, generator=g), torch.randint(0, 3, (128,), generator=g)
    torch.manual_seed(0)
    broken = _fake_library_mlp(std=4.0)
    problem = own_init_problem(broken, (x, y))
    assert problem is not None and "saturated" in problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = initwise.init(broken, (x, y), seed=0)
    assert rep.policy == "generic" and "not healthy" in rep.policy_reason
    torch.manual_seed(0)
    healthy = _fake_library_mlp(std=1.0)
    assert own_init_problem(healthy, (x, y)) is None
    rep = initwise.init(healthy, (x, y), seed=0)
    assert rep.policy == "respect" and "healthy" in rep.policy_reason
    pol, reason = choose_auto(healthy, get_policy("xavier"))
    assert pol.name == "xavier" and reason == ""


def test_generic_keeps_sequence_tables_and_never_saturates_the_pooler():
    """Regression (issue 15): the 1/sqrt(rows) rule gave BERT's 2-row type table std 0.7
    against the word table's 0.1, and the pooler was scaled into tanh saturation."""
    model = _bert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = di.init(model, _cal(), policy="generic", seed=0)
    emb = model.bert.embeddings
    rms = {n: float(t.weight.detach().pow(2).mean().sqrt()) for n, t in
           (("word", emb.word_embeddings), ("type", emb.token_type_embeddings),
            ("pos", emb.position_embeddings))}
    assert max(rms.values()) / min(rms.values()) < 1.5  # one scale for the summed tables
    notes = {lc.module: lc.note for lc in rep.layers}
    assert "sequence model" in notes["bert.embeddings.token_type_embeddings"]
    pooler = rep.layer("bert.pooler.dense")
    assert pooler.saturated_fraction is not None and pooler.saturated_fraction < 0.1
    fan_in = model.bert.pooler.dense.in_features
    tanh = activation_facts("tanh")
    assert pooler.scale_after <= di._walk.SATURATING_MAX_GAIN * tanh.gain / math.sqrt(fan_in) \
        * 1.001


def test_field_embeddings_of_an_mlp_keep_the_sparse_rule():
    class Fields(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Embedding(400, 8), nn.Embedding(100, 8)
            self.mlp = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))

        def forward(self, ids):
            return self.mlp(torch.cat([self.a(ids[:, 0]), self.b(ids[:, 1])], dim=1))

    g = torch.Generator().manual_seed(0)
    ids = torch.stack([torch.randint(0, 400, (256,), generator=g),
                       torch.randint(0, 100, (256,), generator=g)], 1)
    y = torch.randint(0, 2, (256,), generator=g)
    torch.manual_seed(0)
    net = Fields()
    rep = di.init(net, (ids, y), seed=0)
    assert rep.layer("a").scale_after == pytest.approx(1 / math.sqrt(400), rel=1e-3)
    assert rep.layer("b").scale_after == pytest.approx(1 / math.sqrt(100), rel=1e-3)


def test_zero_initialized_norm_is_kept_by_the_generic_rules():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            nn.init.zeros_(self.bn.weight)

        def forward(self, x):
            return torch.relu(x + self.bn(self.conv(x)))

    net = nn.Sequential(Block(), nn.Flatten(), nn.Linear(64, 2))
    rep = initwise.apply(net, seed=0, example_inputs=torch.randn(2, 4, 4, 4))
    assert not net[0].bn.weight.any()
    assert rep.param("0.bn.weight").scheme == "kept"


def test_hugging_face_tanh_gelu_is_read_as_gelu_not_tanh():
    from transformers.activations import NewGELUActivation

    facts = activation_facts(NewGELUActivation())
    assert facts.name == "gelu_tanh" and not facts.saturating
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=16)
    torch.manual_seed(0)
    gpt = transformers.GPT2LMHeadModel(cfg)
    graph = trace(gpt, {"input_ids": torch.randint(0, 64, (2, 8))})
    acts = {n.name: n.activation for n in graph.layers}
    assert acts["transformer.h.0.mlp.c_fc"] == "gelu_tanh"


def test_timm_resnet_zero_init_blocks_survive_init():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=3, zero_init_last=True)
    zero = [n for n, m in model.named_modules()
            if isinstance(m, nn.BatchNorm2d) and not m.weight.any()]
    assert zero  # timm zero-inits each block's last BN
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 3, (8,), generator=g))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = initwise.init(model, data, batches=1, seed=0)
    assert rep.policy == "respect", rep.policy_reason
    assert all(not dict(model.named_modules())[n].weight.any() for n in zero)


def test_progress_lines_per_phase_and_silence(capsys):
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g))
    di.init(net, data, seed=0, verbose=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "init: tracing the model on the calibration batches"
    assert "init: output layer at the label prior" in err and err[-1].startswith("init: done in")
    di.init(net, data, seed=0)  # verbose=None: quick work prints nothing
    di.init(net, data, seed=0, verbose=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="verbose"):
        di.init(net, data, verbose="yes")


def test_doctor_progress_lines(capsys):
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g))
    initwise.doctor(net, data, verbose=True)
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == ["doctor: tracing the model on the batch",
                       "doctor: measuring a forward and a backward", "doctor: running the checks"]
    initwise.doctor(net, data)
    assert capsys.readouterr().err == ""


def test_attention_branches_are_scaled_like_every_residual_branch():
    """Rule 4 covers attention: nn.MultiheadAttention's output projection is scaled so the
    attention branch has the RMS of the other residual branches (rho / sqrt(L))."""

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(32, 16)
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.encoder(self.embed(x)).mean(1))

    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 32, (64, 8), generator=g), torch.randint(0, 3, (64,), generator=g)
    torch.manual_seed(0)
    net = Encoder()
    rep = di.init(net, (x, y), seed=0)
    attn = [lc for lc in rep.layers if lc.module.endswith("self_attn")]
    assert len(attn) == 2 and all("attention branch" in lc.note for lc in attn)
    n_res = 4  # two attention and two FFN branches
    for lc in attn:
        assert lc.converged and lc.target_std == pytest.approx(1 / math.sqrt(n_res))
    captured = []
    h = net.encoder.layers[1].self_attn.register_forward_hook(
        lambda m, a, out: captured.append(out[0]))
    net.eval()
    with torch.no_grad():
        net(x)
    h.remove()
    rms = float(captured[0].pow(2).mean().sqrt())
    assert rms == pytest.approx(1 / math.sqrt(n_res), rel=0.05)


def test_respect_leaves_a_bias_less_head_alone():
    """Llama-style: no head bias, so no prior to set; "respect" does not re-scale the head."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g) * 3
    y = torch.multinomial(torch.tensor([0.7, 0.1, 0.1, 0.1]), 256, replacement=True,
                          generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4, bias=False))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.warns(UserWarning, match="has no bias"):
        rep = di.init(net, (x, y), policy="respect", seed=0)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert "no bias" in rep.layer("2").note
