"""Where a graph's rotary caches switch from the short to the long RoPE factors (Phi-3 LongRoPE).

Phi-3-mini-128k, Phi-3.5-mini and Phi-4-mini scale RoPE with short factors while the sequence fits
the original context (``original_max_position_embeddings``, 4096) and long factors beyond it. The
onnxruntime-genai model builder's cpu and cuda graphs carry both cos/sin cache pairs and pick one per
Run: ``If(Greater(total_sequence_length, 4096))`` feeding GroupQueryAttention's caches. Keys cached
under one factor are wrong under the other, so an engine has to:

- feed a prompt longer than the switch in one Run (chunks up to the switch would use the short
  factors for the prompt's first positions), and
- when generation first crosses the switch, drop the cache and feed the whole sequence again,

as onnxruntime-genai does (generators.cpp: rewind to 0 and append the sequence at length 4097) and
transformers' Phi-3 does (it discards the cache there). DirectML builds carry the long caches only,
with no If: nothing switches there and ``switch_length`` is None.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from harness.model.graph_io import GraphFormatError, Node, graph_nodes

_ROTARY_CONSUMERS = frozenset({"GroupQueryAttention", "RotaryEmbedding"})


def switch_length(onnx_path: Path) -> int | None:
    """The total sequence length above which the graph's Runs use other rotary caches, or None."""
    try:  # mapped, not read: the If's cos/sin caches sit in model.onnx itself (~100 MB at 128k context)
        with open(onnx_path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            nodes, integers = graph_nodes(mapped)
    except (OSError, ValueError, GraphFormatError):
        return None  # ONNX Runtime has loaded this file already; an unreadable one just has no switch found
    return rope_switch_in(nodes, integers)


def rope_switch_in(nodes: list[Node], integers: dict[str, int]) -> int | None:
    """An If on Greater(x, constant C) whose outputs are rotary caches: C, else None."""
    producers = {output: node for node in nodes for output in node.outputs}
    constants = {**integers, **{n.outputs[0]: n.value for n in nodes if n.op_type == "Constant" and n.value is not None}}
    consumed_by: dict[str, set[str]] = {}
    for node in nodes:
        for name in node.inputs:
            consumed_by.setdefault(name, set()).add(node.op_type)
    for node in nodes:
        condition = producers.get(node.inputs[0]) if node.op_type == "If" and node.inputs else None
        if condition is None or condition.op_type != "Greater" or len(condition.inputs) != 2:
            continue
        threshold = constants.get(condition.inputs[1])
        feeds_rotary = any(consumed_by.get(output, set()) & _ROTARY_CONSUMERS for output in node.outputs)
        if threshold is not None and feeds_rotary:
            return threshold
    return None
