"""Slow, obviously-correct twins of initwise.graph's analysis (sets instead of bitmasks)."""

from __future__ import annotations


def ancestors(nodes) -> list[set[int]]:
    """For each node, the set of all nodes it (transitively) consumed, by explicit DFS."""
    out = []
    for n in nodes:
        seen: set[int] = set()
        stack = list(n.inputs)
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(nodes[i].inputs)
        out.append(seen)
    return out


def residual_branches(nodes) -> dict[int, set[int]]:
    """For each add whose two operands fork from a common node, the branch-only node set:
    the operand side whose exclusive ancestry holds more layers."""
    anc = ancestors(nodes)
    layers = {n.index for n in nodes if n.role == "layer"}
    out = {}
    for n in nodes:
        ops = list(dict.fromkeys(n.inputs))
        if n.role != "add" or len(ops) < 2:
            continue
        a, b = anc[ops[0]] | {ops[0]}, anc[ops[1]] | {ops[1]}
        if not a & b:
            continue
        ea, eb = len((a - b) & layers), len((b - a) & layers)
        if ea != eb:
            out[n.index] = (a - b) if ea > eb else (b - a)
    return out
