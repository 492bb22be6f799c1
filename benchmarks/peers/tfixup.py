"""T-Fixup (Huang, Perez, Ba, Volkovs, ICML 2020): init for Transformers without LayerNorm.

The rule as the paper's Section 3.3 states it, for ``N`` encoder and ``N`` decoder layers:

1. Xavier init for every parameter except the input embeddings; the input embeddings are drawn
   from ``N(0, d ** -0.5)`` (std ``d ** -0.5``, ``d`` the embedding width);
2. in every decoder attention block scale ``v`` and ``w`` (value and output projections), and in
   every decoder MLP block both weight matrices, by ``(9 N) ** -0.25``; the input embeddings
   ``x`` and ``y`` by the same factor;
3. in every encoder attention block scale ``v`` and ``w``, and in every encoder MLP block both
   weight matrices, by ``0.67 * N ** -0.25``.

Then train without LayerNorm and without learning-rate warm-up.

What :func:`tfixup_init` requires of the model: its blocks are ``nn.TransformerEncoderLayer`` /
``nn.TransformerDecoderLayer`` (found by type; ``N`` is counted per stack) with their
LayerNorms removed (:func:`strip_layer_norms` replaces them by ``nn.Identity``); every
``nn.Embedding`` is an input embedding. :class:`TinyTransformer` builds such a model.

Deviations from the reference: Xavier is applied to the query, key and value slices of
PyTorch's packed ``in_proj_weight`` separately (each ``d x d``, as the reference's separate
projections; PyTorch's own init treats the packed ``3d x d`` matrix as one); learned position
tables count as input embeddings; an encoder-only model (no decoder, which the paper does not
treat) scales its embeddings by the encoder factor ``0.67 N ** -0.25``.

Reference:
    Huang, Perez, Ba, Volkovs, "Improving Transformer Optimization Through Better
    Initialization", ICML 2020.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ._cost import Batch, Cost, LossFn, PeerResult

_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


class TinyTransformer(nn.Module):
    """Token + learned position embeddings, ``n_layers`` post-LN encoder layers, mean-pool head.

    Args:
        vocab: token count. d_model: width. n_layers: encoder layers. n_heads: heads.
        n_classes: head outputs. max_len: longest sequence (64). layer_norm: keep the
            encoder layers' LayerNorms (True, a stock post-LN encoder); False strips them
            (T-Fixup's setting). ff: MLP width (``4 * d_model``).
    """

    def __init__(self, vocab: int, d_model: int, n_layers: int, n_heads: int, n_classes: int,
                 *, max_len: int = 64, layer_norm: bool = True, ff: int | None = None) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, n_heads, ff or 4 * d_model, dropout=0.0,
                                       batch_first=True) for _ in range(n_layers)])
        self.head = nn.Linear(d_model, n_classes)
        if not layer_norm:
            strip_layer_norms(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        for layer in self.layers:
            h = layer(h)
        return self.head(h.mean(dim=1))


def strip_layer_norms(model: nn.Module) -> nn.Module:
    """Replace every ``nn.LayerNorm`` in ``model`` by ``nn.Identity``, in place; returns it.

    PyTorch's fused inference path of the Transformer layers reads the norms' parameters, so it
    is switched off on every layer (``activation_relu_or_gelu = 0``, a flag used only to choose
    that path); the layers then run their plain Python forward, also under ``no_grad``.
    """
    if isinstance(model, _LAYERS):
        model.activation_relu_or_gelu = 0
    for name, child in list(model.named_children()):
        if isinstance(child, nn.LayerNorm):
            setattr(model, name, nn.Identity())
        else:
            strip_layer_norms(child)
    return model


def encoder_factor(n_layers: int) -> float:
    """T-Fixup's encoder factor ``0.67 * N ** -0.25``."""
    return 0.67 * n_layers ** -0.25


def decoder_factor(n_layers: int) -> float:
    """T-Fixup's decoder factor ``(9 N) ** -0.25``."""
    return (9 * n_layers) ** -0.25


def _qkv(attn: nn.MultiheadAttention) -> list[torch.Tensor]:
    """Views of the query, key and value rows of the packed ``in_proj_weight``."""
    d = attn.embed_dim
    return [attn.in_proj_weight[i * d:(i + 1) * d] for i in range(3)]


def _xavier_(w: torch.Tensor, gen: torch.Generator) -> None:
    bound = math.sqrt(6.0 / (w.shape[0] + w[0].numel()))
    with torch.no_grad():
        w.uniform_(-bound, bound, generator=gen)


def xavier_phase(model: nn.Module, gen: torch.Generator) -> None:
    """Step 1: Xavier (q/k/v slices apart), zero biases, embeddings ``N(0, d ** -0.5)``."""
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            with torch.no_grad():
                m.weight.normal_(0.0, m.weight.shape[1] ** -0.5, generator=gen)
        elif isinstance(m, nn.MultiheadAttention):
            if m.in_proj_weight is None:
                raise TypeError("tfixup_init: separate q/k/v dims are not supported.")
            for part in _qkv(m):
                _xavier_(part, gen)
            if m.in_proj_bias is not None:
                nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, nn.Linear):
            _xavier_(m.weight, gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _scaled_tensors(layer: nn.Module) -> list[torch.Tensor]:
    """The ``v``, ``w`` and MLP weights of one encoder / decoder layer."""
    attns = [layer.self_attn] + ([layer.multihead_attn]
                                 if isinstance(layer, nn.TransformerDecoderLayer) else [])
    out = []
    for a in attns:
        out += [_qkv(a)[2], a.out_proj.weight]
    return out + [layer.linear1.weight, layer.linear2.weight]


def tfixup_init(model: nn.Module, batches: Iterable[Batch] | None = None, *,
                loss_fn: LossFn | None = None, seed: int = 0) -> PeerResult:
    """T-Fixup's init, in place (data-free: ``batches`` and ``loss_fn`` are ignored).

    Args:
        model: a LayerNorm-free model of ``nn.TransformerEncoderLayer`` /
            ``nn.TransformerDecoderLayer`` blocks (see the module docstring).
        batches: unused. loss_fn: unused. seed: seed of the draws (0).

    Returns:
        PeerResult with zero passes; notes hold the layer counts and factors.

    Raises:
        TypeError: no Transformer layer found.
        ValueError: the model still has LayerNorms (call :func:`strip_layer_norms`).
    """
    cost = Cost("tfixup")
    enc = [m for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    dec = [m for m in model.modules() if isinstance(m, nn.TransformerDecoderLayer)]
    if not enc and not dec:
        raise TypeError(f"tfixup_init: {type(model).__name__} has no nn.TransformerEncoderLayer"
                        " or nn.TransformerDecoderLayer; T-Fixup needs one.")
    norms = [n for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    if norms:
        raise ValueError(f"tfixup_init: T-Fixup is for LayerNorm-free Transformers, found "
                         f"{len(norms)} LayerNorms (first: {norms[0]!r}); call "
                         "strip_layer_norms(model) first.")
    gen = torch.Generator().manual_seed(seed)
    xavier_phase(model, gen)
    f_enc = encoder_factor(len(enc)) if enc else None
    f_dec = decoder_factor(len(dec)) if dec else None
    with torch.no_grad():
        for layers, f in ((enc, f_enc), (dec, f_dec)):
            for layer in layers:
                for t in _scaled_tensors(layer):
                    t.mul_(f)
        f_emb = f_dec if dec else f_enc
        for m in model.modules():
            if isinstance(m, nn.Embedding):
                m.weight.mul_(f_emb)
    return cost.result(n_encoder=len(enc), n_decoder=len(dec), encoder_factor=f_enc,
                       decoder_factor=f_dec, embedding_factor=f_emb)
