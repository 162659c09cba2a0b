"""A decoder graph's declared inputs and outputs, read from the .onnx file's protobuf without ``onnx``.

``run`` checks genai_config.json against the graph before it starts the suites (graph_check.py).
Importing the onnx package for that cost ~0.8 s of CPU on every ``run`` (its ml_dtypes extension);
the check needs a few fields of ModelProto, read here from the protobuf wire format directly:

    ModelProto.graph (7) -> GraphProto.input (11), .output (12), .initializer (5) -> TensorProto.name (8)
    ValueInfoProto.name (1), .type (2) -> TypeProto.tensor_type (1) -> .elem_type (1), .shape (2)
    TensorShapeProto.dim (1) -> .dim_value (1) | .dim_param (2)

(field numbers from onnx/onnx.proto). Everything else, weights included, is skipped unread.
``model_metadata`` reads ModelProto.metadata_props (14) -> StringStringEntryProto key (1), value (2)
(the harness's cached graph edits say there what they did). ``graph_nodes`` reads the top-level
nodes the same way (for rope_switch.py):

    GraphProto.node (1) -> NodeProto.input (1), .output (2), .op_type (4), .attribute (5)
    AttributeProto.name (1), .t (5) -> TensorProto.dims (1), .data_type (2), .int32_data (5),
    .int64_data (7), .raw_data (9); and scalar integer initializers (GraphProto.initializer, 5)
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any, Iterator

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_INT32, _INT64 = 6, 7  # TensorProto.DataType


class GraphFormatError(ValueError):
    """The bytes are not a well-formed protobuf message (a truncated or non-ONNX file)."""


def graph_io(data: bytes) -> tuple[dict[str, tuple[list[Any], int]], dict[str, tuple[list[Any], int]], set[str]]:
    """(inputs, outputs, initializer names) of the ModelProto in ``data``; each value is (shape, elem_type):
    a shape entry is the dim_value (int) or dim_param (str, "" when neither is set), as ``onnx`` gives them."""
    inputs: dict[str, tuple[list[Any], int]] = {}
    outputs: dict[str, tuple[list[Any], int]] = {}
    initializers: set[str] = set()
    for field, graph in _fields(memoryview(data)):
        if field != 7:
            continue
        for number, value in _fields(graph):
            if number in (11, 12):
                name, declared = _value_info(value)
                (inputs if number == 11 else outputs)[name] = declared
            elif number == 5:
                initializers.add(_string(_last(value, 8, memoryview(b""))))
    return inputs, outputs, initializers


def model_metadata(data: bytes) -> dict[str, str]:
    """ModelProto.metadata_props of the model in ``data``, as a dict."""
    return {_string(_last(entry, 1, memoryview(b""))): _string(_last(entry, 2, memoryview(b"")))
            for field, entry in _fields(memoryview(data)) if field == 14}


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    value: int | None  # a Constant node's "value" when it is one integer, else None


def graph_nodes(data: bytes | mmap.mmap) -> tuple[list[Node], dict[str, int]]:
    """(the main graph's nodes in file order, its one-integer initializers by name); subgraphs are not entered."""
    nodes: list[Node] = []
    integers: dict[str, int] = {}
    for field, graph in _fields(memoryview(data)):
        if field != 7:
            continue
        for number, value in _fields(graph):
            if number == 1:
                nodes.append(_node(value))
            elif number == 5 and (named := _tensor_integer(value)) is not None:
                integers[named[0]] = named[1]
    return nodes, integers


def _node(message: memoryview) -> Node:
    inputs, outputs, op_type, value = [], [], "", None
    for number, field_value in _fields(message):
        if number in (1, 2):
            (inputs if number == 1 else outputs).append(_string(field_value))
        elif number == 4:
            op_type = _string(field_value)
        elif number == 5 and _string(_last(field_value, 1, memoryview(b""))) == "value":
            tensor = _last(field_value, 5, None)
            named = _tensor_integer(tensor) if tensor is not None else None
            value = named[1] if named is not None else None
    return Node(op_type, tuple(inputs), tuple(outputs), value)


def _tensor_integer(message: memoryview) -> tuple[str, int] | None:
    """(name, value) of a TensorProto holding exactly one int32/int64, else None (weights included)."""
    name, data_type, dims, ints, raw = "", 0, [], [], None
    for number, value in _fields(message):
        if number == 1 and isinstance(value, int):
            dims.append(value)
        elif number == 2:
            data_type = value
        elif number in (5, 7):
            ints.extend(_packed_varints(value) if isinstance(value, memoryview) else [value])
        elif number == 8:
            name = _string(value)
        elif number == 9:
            raw = bytes(value)
    if data_type not in (_INT32, _INT64) or any(d != 1 for d in dims):
        return None
    if raw is not None:
        width = 8 if data_type == _INT64 else 4
        return (name, int.from_bytes(raw, "little", signed=True)) if len(raw) == width else None
    if len(ints) != 1:
        return None
    return name, ints[0] - (1 << 64) if ints[0] >= 1 << 63 else ints[0]  # negatives: 64-bit two's complement


def _packed_varints(message: memoryview) -> list[int]:
    values, position = [], 0
    while position < len(message):
        value, position = _varint(message, position)
        values.append(value)
    return values


def _value_info(message: memoryview) -> tuple[str, tuple[list[Any], int]]:
    name, elem_type, shape = "", 0, []
    for number, value in _fields(message):
        if number == 1:
            name = _string(value)
        elif number == 2:
            tensor = _last(value, 1, None)
            if tensor is not None:
                elem_type = _last(tensor, 1, 0)
                dims = _last(tensor, 2, None)
                shape = [_dimension(d) for n, d in _fields(dims) if n == 1] if dims is not None else []
    return name, (shape, elem_type)


def _dimension(message: memoryview) -> Any:
    value: Any = ""
    for number, field_value in _fields(message):
        if number == 1:
            value = field_value - (1 << 64) if field_value >= 1 << 63 else field_value  # int64
        elif number == 2:
            value = _string(field_value)
    return value


def _last(message: memoryview, wanted: int, default: Any) -> Any:
    """A singular field's value: the last one on the wire wins (a repeated message is not merged)."""
    found = default
    for number, value in _fields(message):
        if number == wanted:
            found = value
    return found


def _string(value: Any) -> str:
    if not isinstance(value, memoryview):
        raise GraphFormatError("a string field is not length-delimited")
    return bytes(value).decode("utf-8", "replace")


def _fields(message: memoryview) -> Iterator[tuple[int, Any]]:
    """(field number, value) pairs: ints for varints, memoryviews for length-delimited fields."""
    position, end = 0, len(message)
    while position < end:
        key, position = _varint(message, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(message, position)
        elif wire == _BYTES:
            length, position = _varint(message, position)
            if position + length > end:
                raise GraphFormatError("a field runs past the end of its message")
            value, position = message[position:position + length], position + length
        elif wire in (_FIXED64, _FIXED32):
            position += 8 if wire == _FIXED64 else 4
            value = None
        else:
            raise GraphFormatError(f"unknown protobuf wire type {wire}")
        if number == 0 or position > end:
            raise GraphFormatError("not a protobuf message")
        yield number, value


def _varint(message: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(message) or shift > 63:
            raise GraphFormatError("a truncated varint")
        byte = message[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
