"""GroupQueryAttention's two length inputs fed by the engine: the attention mask's reformat goes.

A genai-format decoder takes ``attention_mask`` [batch, total] and turns it, in six nodes, into
the two values every GroupQueryAttention reads: ``seqlens_k`` = ReduceSum(mask) - 1 as int32 and
``total_sequence_length`` = Shape(mask)[1] as int32. The engine runs one unpadded sequence, so its
mask is all ones and the two are total - 1 and total. The edit removes the six nodes (and the
constants only they used) and the mask input, and declares the two values as inputs, which the
engine writes in place before each Run: no mask bound per step, six kernels fewer per step. On the
tiny model a decode step went from 241 to 220 µs (fp32) and from 192 to 181 µs (int4), same
tokens (2026-12-03, one thread, interleaved).

The edit is made only where the graph is exactly that: the mask read by nothing but the ReduceSum
and the Shape, each intermediate value read only by the next node, the constants 1 and axes [1],
and the two results read only by GroupQueryAttention nodes as their inputs 5 and 6. The one
exception is the int64 length the Gather gives: a LongRoPE graph compares it with its switch
(model/rope_switch.py), so where anything else reads it, one Cast of the fed total takes the
Gather's place. Anything else (another exporter's mask handling) leaves the mask as it is, with
the reason.

The CPU provider only: on CUDA and DirectML GroupQueryAttention reads ``seqlens_k`` from device
memory and ``total_sequence_length`` from host memory, a path the harness has not run on their
hardware (docs/ARCHITECTURE.md, "targets/engine.py").
"""

from __future__ import annotations

from collections import Counter
from typing import Any

SEQLENS_INPUT = "phi3_harness_seqlens_k"  # int32 [batch]: total length - 1 per sequence
TOTAL_LENGTH_INPUT = "phi3_harness_total_sequence_length"  # int32 scalar: past + new tokens
_SEQLENS_SLOT, _TOTAL_SLOT = 5, 6  # GroupQueryAttention's input positions (com.microsoft)
_INT32 = 6  # onnx TensorProto.INT32


class NotMatched(Exception):
    """The graph's mask handling is not the builder's six nodes; says where it differs."""


def feed_lengths_directly(model: Any, mask_name: str) -> None:
    """Edit ``model`` (a ModelProto) in place; NotMatched, with the model untouched, when it cannot."""
    from onnx import TensorProto, helper

    graph = model.graph
    consumers = _consumers(graph)
    nodes, seqlens, total = _mask_reformat(graph, mask_name, consumers)
    for value, slot in ((seqlens, _SEQLENS_SLOT), (total, _TOTAL_SLOT)):
        for node in consumers.get(value, []):
            if node.op_type != "GroupQueryAttention" or list(node.input).index(value) != slot:
                raise NotMatched(f"{value!r} is read by {node.op_type} {node.name!r}, "
                                 f"not only as GroupQueryAttention's input {slot}")
    length_int64 = nodes[4].output[0]  # the Gather's: kept for readers other than the int32 Cast
    keep_int64 = any(nodes[5].output[0] not in reader.output for reader in consumers.get(length_int64, []))
    reads = Counter(name for node in graph.node for name in node.input)
    reads.subtract(name for node in nodes for name in node.input)
    for node in nodes:
        graph.node.remove(node)
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in (seqlens, total):
                node.input[index] = SEQLENS_INPUT if name == seqlens else TOTAL_LENGTH_INPUT
    if keep_int64:  # first in the file: it reads a graph input only, so topological order holds
        graph.node.insert(0, helper.make_node("Cast", [TOTAL_LENGTH_INPUT], [length_int64], to=TensorProto.INT64,
                                              name="/phi3_harness/lengths/total_int64"))
    outputs = {value.name for value in graph.output}
    orphans = [t for t in graph.initializer if t.name in _constant_inputs(nodes) and reads[t.name] <= 0 and t.name not in outputs]
    for tensor in orphans:  # ORT warns about every unused initializer on every load
        graph.initializer.remove(tensor)
    batch = _batch_dim(graph, mask_name)
    graph.input.remove(next(value for value in graph.input if value.name == mask_name))
    graph.input.append(helper.make_tensor_value_info(SEQLENS_INPUT, TensorProto.INT32, [batch]))
    graph.input.append(helper.make_tensor_value_info(TOTAL_LENGTH_INPUT, TensorProto.INT32, []))


def _mask_reformat(graph: Any, mask_name: str, consumers: dict[str, list[Any]]) -> tuple[list[Any], str, str]:
    """The six nodes and the names of their two results, or NotMatched."""
    readers = consumers.get(mask_name, [])
    kinds = sorted(node.op_type for node in readers)
    if kinds != ["ReduceSum", "Shape"]:
        raise NotMatched(f"{mask_name!r} is read by {', '.join(kinds) or 'nothing'}, not by one ReduceSum and one Shape")
    constants = _constants(graph)
    reduce_sum = next(node for node in readers if node.op_type == "ReduceSum")
    shape = next(node for node in readers if node.op_type == "Shape")
    if shape.attribute:
        raise NotMatched(f"Shape {shape.name!r} has start/end attributes")
    if _attribute(reduce_sum, "keepdims", 1) != 0 or _axes(reduce_sum, constants) not in ([1], [-1]):
        raise NotMatched(f"ReduceSum {reduce_sum.name!r} is not a sum over axis 1 without kept dims")
    sub = _only_reader(consumers, reduce_sum, "Sub")
    if sub.input[0] != reduce_sum.output[0] or _scalar(constants, sub.input[1]) != 1:
        raise NotMatched(f"Sub {sub.name!r} does not subtract 1 from the mask's sum")
    seqlens_cast = _only_reader(consumers, sub, "Cast")
    if _attribute(seqlens_cast, "to", None) != _INT32:
        raise NotMatched(f"Cast {seqlens_cast.name!r} does not cast to int32")
    gather = _only_reader(consumers, shape, "Gather")
    if gather.input[0] != shape.output[0] or _attribute(gather, "axis", 0) != 0 or _scalar(constants, gather.input[1]) != 1:
        raise NotMatched(f"Gather {gather.name!r} does not take dimension 1 of the mask's shape")
    # The int64 length may have other readers: LongRoPE graphs compare it with their switch.
    total_cast = next((n for n in consumers.get(gather.output[0], []) if n.op_type == "Cast"
                       and _attribute(n, "to", None) == _INT32), None)
    if total_cast is None:
        raise NotMatched(f"Gather {gather.name!r} is not cast to int32")
    return [reduce_sum, sub, seqlens_cast, shape, gather, total_cast], seqlens_cast.output[0], total_cast.output[0]


def _consumers(graph: Any) -> dict[str, list[Any]]:
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for output in graph.output:  # a graph output counts as a reader that is not the next node
        readers.setdefault(output.name, []).append(_GraphOutput(output.name))
    return readers


class _GraphOutput:
    op_type = "graph output"

    def __init__(self, name: str) -> None:
        self.name = name
        self.input = [name]
        self.output: list[str] = []


def _only_reader(consumers: dict[str, list[Any]], node: Any, op_type: str) -> Any:
    readers = consumers.get(node.output[0], [])
    if len(readers) != 1 or readers[0].op_type != op_type:
        kinds = ", ".join(reader.op_type for reader in readers) or "nothing"
        raise NotMatched(f"{node.op_type} {node.name!r} is read by {kinds}, not by one {op_type}")
    return readers[0]


def _constants(graph: Any) -> dict[str, Any]:
    """Initializer and Constant-node values by name, as numpy arrays."""
    from onnx import numpy_helper

    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer
              if len(tensor.dims) <= 1 and all(d <= 8 for d in tensor.dims)}  # small ones only: never external
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is not None:
                values[node.output[0]] = numpy_helper.to_array(value.t)
    return values


def _constant_inputs(nodes: list[Any]) -> set[str]:
    return {name for node in nodes for name in node.input[1:]}


def _scalar(constants: dict[str, Any], name: str) -> int | None:
    value = constants.get(name)
    return int(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def _axes(node: Any, constants: dict[str, Any]) -> list[int] | None:
    if len(node.input) > 1 and node.input[1]:  # opset 13+: axes as an input
        value = constants.get(node.input[1])
        return [int(v) for v in value.reshape(-1)] if value is not None else None
    axes = next((a for a in node.attribute if a.name == "axes"), None)
    return list(axes.ints) if axes is not None else None


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    found = next((a for a in node.attribute if a.name == name), None)
    return helper.get_attribute_value(found) if found is not None else default


def _batch_dim(graph: Any, mask_name: str) -> str | int:
    """The mask's declared batch dimension (a name or a size), for the seqlens input."""
    mask = next(value for value in graph.input if value.name == mask_name)
    dims = mask.type.tensor_type.shape.dim
    return (dims[0].dim_param or dims[0].dim_value) if dims else "batch_size"
