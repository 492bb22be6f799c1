"""Tests for initwise.graph: traced and structural data-flow facts per layer."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initwise.graph import layer_modules, trace, trace_structure

torch.set_num_threads(1)

_REF = Path(__file__).resolve().parent / "reference" / "graph_ref.py"
_SPEC = importlib.util.spec_from_file_location("graph_ref", _REF)
ref = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ref)


def _facts(graph):
    return [(n.name, n.kind, n.activation, n.followed_by_norm, n.residual, n.is_output)
            for n in graph.layers]


class FunctionalGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(F.gelu(self.fc1(x), approximate="tanh"))))


class ResidualMLP(nn.Module):
    def __init__(self, width: int = 6, blocks: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.a = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.b = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        x = self.inp(x)
        for a, b in zip(self.a, self.b):
            x = x + b(a(x).relu())
        return self.head(x)


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(x)))
        return self.fc(self.drop(h.mean((2, 3))))


def test_mlp_with_relu_modules():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    g = trace(net, torch.randn(3, 4))
    assert g.method == "trace" and g.output_source == "output"
    assert _facts(g) == [
        ("0", "linear", "relu", None, False, False),
        ("2", "linear", "relu", None, False, False),
        ("4", "linear", None, None, False, True),
    ]
    assert [n.order for n in g.layers] == [0, 1, 2]
    assert g.layer("2").parents == ("0",) and g.layer("0").parents == ("<input>",)
    assert isinstance(g.layer("0").activation_fn, nn.ReLU)


def test_functional_activations_and_slope():
    g = trace(FunctionalGelu(), torch.randn(2, 5))
    assert [(n.name, n.activation) for n in g.layers] == [
        ("fc1", "gelu_tanh"), ("fc2", "tanh"), ("out", None)]
    assert g.layer("fc1").activation_fn.approximate == "tanh"
    net = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    assert trace(net, torch.randn(2, 4)).layer("0").activation_fn.negative_slope == 0.2

    class Fn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.out(F.leaky_relu(self.fc(x), negative_slope=0.3))

    fn = trace(Fn(), torch.randn(2, 4)).layer("fc")
    assert fn.activation == "leaky_relu" and fn.activation_fn.negative_slope == 0.3


def test_tensor_methods_and_inplace_ops():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            h = self.a(x)
            h.relu_()                      # in-place method
            h = self.b(h).view(2, 3).sigmoid()  # view first: a transparent op
            return self.c(h)

    g = trace(M(), torch.randn(2, 3))
    assert [(n.name, n.activation) for n in g.layers] == [("a", "relu"), ("b", "sigmoid"),
                                                         ("c", None)]
    assert g.layer("b").parents == ("a",)


def test_cnn_with_batchnorm_restores_buffers_and_rng():
    net = ConvBN().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 6, 6)
    rng = torch.get_rng_state()
    g = trace(net, x)
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew inside fork_rng
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training and net.bn.training
    assert _facts(g) == [
        ("conv", "conv", "relu", "batchnorm", False, False),
        ("bn", "norm", "relu", None, False, False),
        ("fc", "linear", None, None, False, True),
    ]


def test_residual_mlp_marks_the_last_layer_of_each_block():
    g = trace(ResidualMLP(), torch.randn(3, 4))
    res = {n.name: n.residual for n in g.layers}
    assert res == {"inp": False, "a.0": False, "b.0": True, "a.1": False, "b.1": True,
                   "head": False}
    assert g.layer("a.0").activation == "relu"


def test_projection_shortcut_is_not_the_branch():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2, self.short = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(4, 6)

        def forward(self, x):
            out = self.c2(F.relu(self.c1(x)))
            out += self.short(x)  # in-place add, projection shortcut
            return F.relu(out)

    g = trace(Block(), torch.randn(2, 4))
    assert {n.name: n.residual for n in g.layers} == {"c1": False, "c2": True, "short": False}
    assert g.layer("c2").activation == "relu" and g.layer("short").activation == "relu"


def test_independent_sum_is_not_residual():
    class TokPos(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok, self.pos, self.out = nn.Embedding(10, 4), nn.Embedding(5, 4), nn.Linear(4, 3)

        def forward(self, ids):
            return self.out(self.tok(ids) + self.pos(torch.arange(ids.shape[1])))

    g = trace(TokPos(), torch.randint(0, 10, (2, 5)))
    assert not any(n.residual for n in g.layers)
    assert [n.kind for n in g.layers] == ["embedding", "embedding", "linear"]


def test_shared_module_called_twice_and_tied_weights():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.block = nn.Linear(4, 4)
            self.alias = self.block  # registered twice
            self.lm_head = nn.Linear(4, 10, bias=False)
            self.lm_head.weight = self.emb.weight

        def forward(self, ids):
            h = self.emb(ids)
            h = torch.tanh(self.block(h))
            h = torch.tanh(self.alias(h))
            return self.lm_head(h)

    g = trace(Tied(), torch.randint(0, 10, (2, 3)))
    blk = g.layer("block")
    assert blk.calls == 2 and blk.aliases == ("alias",) and blk.activation == "tanh"
    assert g.layer("alias") is blk
    assert [n.name for n in g.layers] == ["emb", "block", "lm_head"]
    assert g.output_layers == ["lm_head"]


def test_mha_and_lstm_are_leaves():
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.lstm = nn.LSTM(8, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            a, _ = self.attn(x, x, x)
            h, (hn, cn) = self.lstm(x + a)
            return self.head(F.silu(h[:, -1]))

    net = Seq().eval()
    g = trace(net, torch.randn(2, 5, 8))
    assert _facts(g) == [
        ("attn", "attention", None, None, True, False),
        ("lstm", "rnn", "silu", None, False, False),
        ("head", "linear", None, None, False, True),
    ]
    assert g.unused == []  # attn.out_proj belongs to attn, not an unused layer
    assert "attn.out_proj" not in layer_modules(net)


def test_dict_inputs_and_hf_like_output():
    @dataclasses.dataclass
    class Output:
        loss: torch.Tensor | None
        logits: torch.Tensor

    class HF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.EmbeddingBag(20, 4, mode="sum")
            self.dense = nn.Linear(3, 4)
            self.classifier = nn.Linear(4, 2)

        def forward(self, input_ids, offsets, dense):
            h = self.emb(input_ids, offsets) + self.dense(dense)
            return Output(None, self.classifier(F.elu(h, alpha=0.5)))

    inputs = {"input_ids": torch.tensor([1, 2, 3, 4]), "offsets": torch.tensor([0, 2]),
              "dense": torch.randn(2, 3)}
    g = trace(HF(), inputs)
    assert g.output_source == "output.logits"
    assert [(n.name, n.kind, n.activation) for n in g.layers] == [
        ("emb", "embedding_bag", "elu"), ("dense", "linear", "elu"), ("classifier", "linear", None)]
    assert g.layer("emb").activation_fn.alpha == 0.5
    assert g.output_layers == ["classifier"]


def test_sparse_tensor_input():
    class SparseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(30, 8) * 0.1)  # a custom layer with its own weight
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            return self.out(torch.relu(torch.sparse.mm(x, self.w)))

    x = (torch.rand(4, 30) * (torch.rand(4, 30) < 0.1)).to_sparse_coo()
    g = trace(SparseNet(), x)
    assert [n.name for n in g.layers] == ["out"]  # the root holds params but has a child layer
    assert g.layer("out").is_output


def test_custom_leaf_module_is_a_layer_of_kind_other():
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.gamma

    net = nn.Sequential(nn.Linear(4, 4), Scale(), nn.GELU(), nn.Linear(4, 1))
    g = trace(net, torch.randn(2, 4))
    assert [(n.name, n.kind, n.activation) for n in g.layers] == [
        ("0", "linear", None), ("1", "other", "gelu"), ("3", "linear", None)]


def test_unused_layers_are_listed():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.spare = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    g = trace(M(), torch.randn(1, 2))
    assert g.unused == ["spare"] and [n.name for n in g.layers] == ["used"]


def test_error_mid_forward_leaves_no_hooks_and_restores_mode():
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            self.eval()  # a forward that changes the mode, then fails
            self.bn(self.fc(x))
            raise RuntimeError("boom")

    net = Boom().train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    depth = torch._C._len_torch_function_stack()
    with pytest.raises(RuntimeError, match="boom"):
        trace(net, torch.randn(3, 4))
    assert torch._C._len_torch_function_stack() == depth
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert net.training and net.bn.training
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_bad_models_raise_clear_errors():
    with pytest.raises(TypeError, match="nn.Module"):
        trace(lambda x: x, torch.randn(2))
    with pytest.raises(ValueError, match="lazy"):
        trace(nn.Sequential(nn.LazyLinear(3)), torch.randn(2, 4))
    with pytest.raises(ValueError, match="to_empty"):
        trace(nn.Linear(2, 2, device="meta"), torch.randn(1, 2))


def test_output_holding_no_tensor_raises_type_error():
    class NoTensor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return {"n": int(self.fc(x).numel())}

    with pytest.raises(TypeError, match="model output"):
        trace(NoTensor(), torch.randn(1, 2))


@pytest.mark.parametrize("net", [ResidualMLP(), ConvBN(), FunctionalGelu()], ids=type)
def test_structure_fx_agrees_with_trace(net):
    x = torch.randn(2, 3, 5, 5) if isinstance(net, ConvBN) else torch.randn(2, 4 if isinstance(
        net, ResidualMLP) else 5)
    traced, fx = trace(net, x), trace_structure(net)
    assert fx.method == "fx" and fx.warnings == []
    assert _facts(fx) == _facts(traced)


def test_structure_falls_back_to_sequential_adjacency():
    class Dynamic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3))
            self.extra = nn.Linear(3, 3)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                x = self.extra(x)
            return self.body(x)

    g = trace_structure(Dynamic())
    assert g.method == "sequential" and "fx" in g.warnings[0]
    assert [(n.name, n.activation) for n in g.layers] == [
        ("body.0", "tanh"), ("body.2", None), ("extra", None)]
    meta = nn.Sequential(nn.Linear(3, 3, device="meta"), nn.SELU(), nn.Linear(3, 1, device="meta"))
    gm = trace_structure(meta)
    assert gm.method == "fx" and gm.layer("0").activation == "selu" and gm.layer("2").is_output


def test_single_layer_model():
    g = trace(nn.Linear(3, 2), torch.randn(1, 3))
    assert _facts(g) == [("", "linear", None, None, False, True)]
    assert _facts(trace_structure(nn.Linear(3, 2))) == _facts(g)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_transformer_encoder_layers(norm_first):
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, norm_first=norm_first,
                                       activation="gelu")
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    g = trace(enc, torch.randn(2, 5, 16))
    l0 = {n.name.split(".", 2)[2]: n for n in g.layers if n.name.startswith("layers.0.")}
    assert l0["self_attn"].kind == "attention" and l0["self_attn"].residual
    assert l0["linear1"].activation == "gelu" and not l0["linear1"].residual
    assert l0["linear2"].residual
    # the norm after x + f(x) normalizes the stream, not f's output
    assert l0["self_attn"].followed_by_norm is None and l0["linear2"].followed_by_norm is None
    assert not l0["norm1"].residual and l0["norm1"].calls == 1
    # pre-norm without a final norm: every branch reaches the output through the stream
    expected = [f"layers.{i}.{m}" for i in (0, 1) for m in ("self_attn", "linear2")]
    assert g.output_layers == (expected if norm_first else ["layers.1.norm2"])


def test_analysis_matches_the_slow_twin():
    from initwise.graph._model import _ancestry, _residual_branches

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2, self.short = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(4, 6)

        def forward(self, x):
            out = self.c2(F.relu(self.c1(x)))
            return F.relu(out + self.short(x))

    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                enable_nested_tensor=False)
    cases = [(ResidualMLP(blocks=3), torch.randn(2, 4)), (Block(), torch.randn(2, 4)),
             (enc, torch.randn(2, 3, 8)), (ConvBN(), torch.randn(1, 3, 4, 4))]
    for net, x in cases:
        nodes = trace(net, x).nodes
        fast = _ancestry(nodes)
        slow = ref.ancestors(nodes)
        assert [{i for i in range(len(nodes)) if m >> i & 1} for m in fast] == slow
        layer_mask = sum(1 << n.index for n in nodes if n.role == "layer")
        fast_br = _residual_branches(nodes, fast, layer_mask)
        assert {k: {i for i in range(len(nodes)) if m >> i & 1} for k, m in fast_br.items()} \
            == ref.residual_branches(nodes)


def test_resnet_basic_block_with_inplace_relu():
    class BasicBlock(nn.Module):  # torchvision's layout: post-activation, inplace ReLU
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout)) if stride > 1 else None

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True),
                        BasicBlock(4, 4, 1), BasicBlock(4, 8, 2), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 2)).train()
    g = trace(net, torch.randn(2, 3, 8, 8))
    facts = {n.name: (n.activation, n.followed_by_norm, n.residual) for n in g.layers}
    assert facts["2.conv1"] == ("relu", "batchnorm", False)
    assert facts["2.conv2"] == ("relu", "batchnorm", True)
    assert facts["2.bn2"] == ("relu", None, True)  # zero-init-residual candidates
    assert facts["3.downsample.0"] == ("relu", "batchnorm", False)  # the projection is the skip
    assert facts["3.bn2"][2] and not facts["3.downsample.1"][2]
    assert g.layer("2.conv1").parents == ("0",)  # through the inplace ReLU
    assert g.output_layers == ["6"]


def test_trace_does_not_write_unchanged_parameters():
    net = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    x = torch.randn(4, 3)
    loss = net(x).pow(2).sum()  # an autograd graph that saved the weights
    versions = [p._version for p in net.parameters()]
    trace(net, x)
    assert [p._version for p in net.parameters()] == versions
    loss.backward()  # still valid


def test_trace_checks_large_parameters_by_version_counter(monkeypatch):
    """Large parameters are not copied by a trace (cost), only version-checked: an in-place
    write to one inside forward is reported, not silently kept."""
    import initwise.graph as graph_mod

    monkeypatch.setattr(graph_mod, "TRACE_COPY_LIMIT", 10)

    class _Writer(nn.Module):
        def __init__(self, write: bool) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 4)
            self.write = write

        def forward(self, x):
            if self.write:
                self.lin.weight.mul_(2.0)
            return self.lin(x)

    torch.manual_seed(0)
    ok = _Writer(False)
    before = ok.lin.weight.detach().clone()
    graph_mod.trace(ok, torch.randn(3, 8))
    assert torch.equal(ok.lin.weight, before)
    with pytest.raises(RuntimeError, match=r"lin\.weight"):
        graph_mod.trace(_Writer(True), torch.randn(3, 8))


class _TwoOutputs(nn.Module):
    """Returns its logits and, in a dict, a hidden tensor (as feature extractors do)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        z = torch.relu(self.a(x))
        return {"logits": self.b(z), "features": z}


@pytest.mark.parametrize("use_trace", [True, False])
def test_graph_records_every_returned_tensor(use_trace):
    model = _TwoOutputs()
    graph = trace(model, torch.randn(3, 4)) if use_trace else trace_structure(model)
    kinds = sorted((graph.nodes[i].role, graph.nodes[i].target) for i in graph.returned)
    assert kinds == [("activation", kinds[0][1]), ("layer", "b")]
    seq = trace_structure(nn.Sequential(nn.Linear(4, 2), nn.ReLU()))
    assert [seq.nodes[i].role for i in seq.returned] == ["activation"]
