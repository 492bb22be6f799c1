"""The graph data types and the analysis that turns recorded nodes into per-layer facts.

The tracers (``_runtime``: one real forward; ``_structure``: torch.fx or ``nn.Sequential``)
produce a flat list of :class:`Node` in execution order, each pointing at the nodes whose outputs
it consumed. :func:`build_graph` derives, for every layer, the activation that follows it, whether
a norm consumes it first, whether its branch is added to a skip path, and whether it feeds the
model's output.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["LayerNode", "ModelGraph", "Node", "build_graph", "consumers_of"]

_OUTPUT_PASS_STOPS = frozenset({"softmax", "log_softmax", "softmin"})


@dataclass
class Node:
    """One recorded operation.

    Attributes:
        index: position in execution order.
        op: ``"input"``, ``"module"`` (a leaf module call) or ``"function"`` (a torch function).
        target: the module's qualified name, the function's normalized name, or the input label.
        role: ``"layer"``, ``"activation"``, ``"norm"`` (functional norm), ``"add"``, ``"stop"``
            (a feature-mixing or softmax-like function), ``"op"`` (anything else), ``"input"``.
        inputs: indices of the nodes whose outputs this node consumed, in argument order.
        kind: the layer kind for layer nodes (see :data:`initwise.graph.LAYER_KINDS`).
        norm: the norm family (``"batchnorm"``...) for norm layers and norm functions.
        activation: the activation name for activation nodes.
        activation_fn: the activation module or function (for ``resolve_activation``).
        module: the module of a module node.
    """

    index: int
    op: str
    target: str
    role: str
    inputs: tuple[int, ...] = ()
    kind: str | None = None
    norm: str | None = None
    activation: str | None = None
    activation_fn: Any = None
    module: nn.Module | None = field(default=None, repr=False)


@dataclass
class LayerNode:
    """What the graph knows about one layer (a module, however many times it was called).

    Attributes:
        name: qualified module name (the first name under which the module is registered).
        module: the module itself.
        kind: ``"linear"``, ``"conv"``, ``"conv_transpose"``, ``"embedding"``,
            ``"embedding_bag"``, ``"bilinear"``, ``"rnn"``, ``"attention"``, ``"norm"``,
            ``"other"``.
        order: rank of the module's first call among layers (0 = first executed).
        activation: first nonlinearity applied to the output before the next (non-norm) layer.
        activation_fn: the activation module or function (input of ``resolve_activation``).
        followed_by_norm: norm family consuming the output before any nonlinearity, or ``None``.
        residual: the output (through elementwise ops/norms) is added to a skip path.
        is_output: the output reaches the model output without passing through another layer.
        calls: how many times the module was called in the forward.
        aliases: other qualified names of the same module object (shared modules).
        parents: the nearest upstream layers (``"<input>"`` for the model input).
    """

    name: str
    module: nn.Module = field(repr=False)
    kind: str
    order: int
    activation: str | None = None
    activation_fn: Any = field(default=None, repr=False)
    followed_by_norm: str | None = None
    residual: bool = False
    is_output: bool = False
    calls: int = 1
    aliases: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()


@dataclass
class ModelGraph:
    """A model's layers in execution order with their data-flow facts.

    Attributes:
        layers: :class:`LayerNode` per layer, in execution order.
        nodes: the raw recorded nodes (execution order).
        output_source: which part of the model output was used (``"output"``,
            ``"output.logits"``...; see :func:`initwise.modelio.extract_logits`), or ``""``.
        method: how the graph was obtained: ``"trace"`` (real forward), ``"fx"``
            (torch.fx symbolic trace), ``"sequential"`` (nn.Sequential adjacency) or
            ``"modules"`` (no data flow known: layers in registration order, no facts).
        unused: layers registered in the model but never called.
        warnings: why a less precise method was used, and similar notes.
        returned: indices of the nodes whose tensors the model returns (all of them: the
            logits and any other output, e.g. features returned beside the logits).
    """

    layers: list[LayerNode] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list, repr=False)
    output_source: str = ""
    method: str = "trace"
    unused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    returned: tuple[int, ...] = ()

    def layer(self, name: str) -> LayerNode:
        """The layer named ``name`` (or one of its aliases).

        Raises:
            KeyError: naming the layer and listing the known layer names.
        """
        for node in self.layers:
            if node.name == name or name in node.aliases:
                return node
        known = ", ".join(n.name for n in self.layers)
        raise KeyError(f"no layer {name!r} in this graph; layers: {known}.")

    @property
    def output_layers(self) -> list[str]:
        """Names of the layers that feed the model output."""
        return [n.name for n in self.layers if n.is_output]

    def __iter__(self) -> Iterator[LayerNode]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def table(self) -> str:
        """A plain-text table of the layers."""
        head = f"ModelGraph (method={self.method}, output={self.output_source or '-'})"
        rows = [
            f"{n.order:>3}  {n.name:<28} {n.kind:<14} act={n.activation or '-':<10} "
            f"norm={n.followed_by_norm or '-':<12} res={'y' if n.residual else 'n'} "
            f"out={'y' if n.is_output else 'n'} calls={n.calls}"
            for n in self.layers
        ]
        return "\n".join([head, *rows])

    def __str__(self) -> str:
        return self.table()


def consumers_of(nodes: list[Node]) -> list[list[int]]:
    """For each node (by index), the nodes that consumed its output, in execution order."""
    consumers: list[list[int]] = [[] for _ in nodes]
    for n in nodes:
        for i in dict.fromkeys(n.inputs):
            consumers[i].append(n.index)
    return consumers


def _is_norm(node: Node) -> bool:
    return node.role == "norm" or (node.role == "layer" and node.kind == "norm")


def _reach(start: int, consumers: list[list[int]], passes: Callable[[Node], bool],
           nodes: list[Node]) -> list[int]:
    """Nodes reachable downstream of ``start``, visiting in execution order; expand if passes."""
    heap = list(dict.fromkeys(consumers[start]))
    heapq.heapify(heap)
    seen = set(heap)
    out: list[int] = []
    while heap:
        j = heapq.heappop(heap)
        out.append(j)
        if passes(nodes[j]):
            for k in consumers[j]:
                if k not in seen:
                    seen.add(k)
                    heapq.heappush(heap, k)
    return out


def _pass_act(node: Node) -> bool:
    return node.role in ("op", "add") or _is_norm(node)


def _pass_res(node: Node) -> bool:
    return node.role in ("op", "add", "activation") or _is_norm(node)


def _ancestry(nodes: list[Node]) -> list[int]:
    anc = [0] * len(nodes)
    for n in nodes:
        mask = 0
        for i in n.inputs:
            mask |= anc[i] | (1 << i)
        anc[n.index] = mask
    return anc


def _residual_branches(nodes: list[Node], anc: list[int], layer_mask: int) -> dict[int, int]:
    """For each residual add: the mask of nodes only on its branch (not on its skip path).

    An add of operands A and B is residual when A and B share an ancestor (they fork from a common
    tensor) and one operand's exclusive path holds more layers than the other's: that operand is
    the branch, the other the skip (an identity skip holds none).
    """
    branches: dict[int, int] = {}
    for n in nodes:
        ops = list(dict.fromkeys(n.inputs))
        if n.role != "add" or len(ops) < 2:
            continue
        a, b = (anc[ops[0]] | 1 << ops[0]), (anc[ops[1]] | 1 << ops[1])
        if not a & b:
            continue
        ex_a, ex_b = (a & ~b & layer_mask).bit_count(), (b & ~a & layer_mask).bit_count()
        if ex_a != ex_b:
            branches[n.index] = (a & ~b) if ex_a > ex_b else (b & ~a)
    return branches


def _output_layers(nodes: list[Node], output_index: int | None) -> set[int]:
    if output_index is None:
        return set()
    found: set[int] = set()
    stack, seen = [output_index], {output_index}
    while stack:
        n = nodes[stack.pop()]
        if n.role == "layer":
            found.add(n.index)
            continue
        if n.role == "stop" and n.target not in _OUTPUT_PASS_STOPS:
            continue
        for i in n.inputs:
            if i not in seen:
                seen.add(i)
                stack.append(i)
    return found


def _parents(nodes: list[Node], index: int) -> list[str]:
    found: list[str] = []
    stack, seen = list(nodes[index].inputs), set(nodes[index].inputs)
    while stack:
        n = nodes[stack.pop()]
        if n.role in ("layer", "input"):
            found.append(n.target if n.role == "layer" else "<input>")
            continue
        for i in n.inputs:
            if i not in seen:
                seen.add(i)
                stack.append(i)
    return sorted(set(found))


def _call_facts(nodes: list[Node], consumers: list[list[int]], index: int,
                branches: dict[int, int]) -> tuple[Node | None, str | None, bool]:
    """(first activation, first norm, residual) downstream of one layer call.

    The activation search passes through elementwise ops, adds and norms; the norm search also
    stops at residual adds (a norm after ``x + f(x)`` normalizes the stream, not ``f``'s output);
    the residual search passes through activations too.
    """
    act = next((nodes[j] for j in _reach(index, consumers, _pass_act, nodes)
                if nodes[j].role == "activation"), None)

    def pass_norm(node: Node) -> bool:
        return _pass_act(node) and node.index not in branches

    norm = next((nodes[j].norm for j in _reach(index, consumers, pass_norm, nodes)
                 if _is_norm(nodes[j])), None)
    residual = any(
        j in branches and branches[j] >> index & 1
        for j in _reach(index, consumers, _pass_res, nodes)
    )
    return act, norm, residual


def build_graph(nodes: list[Node], output_index: int | None, *, output_source: str = "",
                method: str = "trace", all_layers: dict[str, nn.Module] | None = None,
                aliases: dict[str, tuple[str, ...]] | None = None,
                returned: Any = ()) -> ModelGraph:
    """Derive per-layer facts from recorded nodes (see the module docstring).

    Args:
        nodes: nodes in execution order; ``node.index`` equals its position.
        output_index: the node that produced the model output (``None`` if unknown).
        output_source: text saying which part of the model output was used.
        method: how the nodes were obtained.
        all_layers: every layer module of the model by name, to list the unused ones.
        aliases: other names of shared modules, by first name.
        returned: nodes whose tensors the model returns (``output_index`` is added).

    Returns:
        The :class:`ModelGraph`.
    """
    consumers = consumers_of(nodes)
    anc = _ancestry(nodes)
    layer_mask = sum(1 << n.index for n in nodes if n.role == "layer")
    branches = _residual_branches(nodes, anc, layer_mask)
    outputs = _output_layers(nodes, output_index)
    layers: dict[str, LayerNode] = {}
    for n in nodes:
        if n.role != "layer":
            continue
        act, norm, residual = _call_facts(nodes, consumers, n.index, branches)
        rec = layers.get(n.target)
        if rec is None:
            rec = layers[n.target] = LayerNode(
                n.target, n.module, n.kind or "other", len(layers), calls=0,
                aliases=(aliases or {}).get(n.target, ()),
            )
        rec.calls += 1
        if rec.activation is None and act is not None:
            rec.activation, rec.activation_fn = act.activation, act.activation_fn
        rec.followed_by_norm = rec.followed_by_norm or norm
        rec.residual = rec.residual or residual
        rec.is_output = rec.is_output or n.index in outputs
        rec.parents = tuple(sorted(set(rec.parents) | set(_parents(nodes, n.index))))
    unused = [name for name in (all_layers or {}) if name not in layers]
    back = {i for i in returned if i is not None}
    if output_index is not None:
        back.add(output_index)
    return ModelGraph(list(layers.values()), nodes, output_source, method, unused,
                      returned=tuple(sorted(back)))
