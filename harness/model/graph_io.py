"""A decoder graph's declared inputs and outputs, read from the .onnx file's protobuf without ``onnx``.

``run`` checks genai_config.json against the graph before it starts the suites (graph_check.py).
Importing the onnx package for that cost ~0.8 s of CPU on every ``run`` (its ml_dtypes extension);
the check needs a few fields of ModelProto, read here from the protobuf wire format directly:

    ModelProto.graph (7) -> GraphProto.input (11), .output (12), .initializer (5) -> TensorProto.name (8)
    ValueInfoProto.name (1), .type (2) -> TypeProto.tensor_type (1) -> .elem_type (1), .shape (2)
    TensorShapeProto.dim (1) -> .dim_value (1) | .dim_param (2)

(field numbers from onnx/onnx.proto). Everything else, weights included, is skipped unread.
"""

from __future__ import annotations

from typing import Any, Iterator

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


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
