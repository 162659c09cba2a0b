"""genai_config.json against the decoder graph it names, before any Run.

A config copied from another build (other layer count, head size, KV heads or KV dtype) otherwise
loads fine and fails at the first Run with an ONNX Runtime shape error deep in a suite. The
graph's declared inputs and outputs (from the ONNX Runtime session, or from the ONNX file without
its weights) name the mismatch and the config key at load time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from harness.errors import HarnessError
from harness.model.graph_io import GraphFormatError, graph_io

CONFIG_NAME = "genai_config.json"
KV_TYPES = ("float32", "float16")  # what the engine's KV cache holds
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16",
              "tensor(double)": "float64", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int64)": "int64"}
_ONNX_TYPES = {1: "float32", 10: "float16", 16: "bfloat16", 11: "float64", 3: "int8", 2: "uint8", 7: "int64"}
MAX_GRAPH_BYTES = 256 * 2**20  # a bigger .onnx holds its weights inline: read it in a session, not here

Declared = dict[str, tuple[list[Any], str]]  # name -> (shape: ints for fixed dims, else names/None; dtype)


def declared_from_session(values: Iterable[Any]) -> Declared:
    """ONNX Runtime NodeArgs (session.get_inputs() / get_outputs())."""
    return {v.name: (list(v.shape or []), _ORT_TYPES.get(v.type, v.type)) for v in values}


def check_graph_file(onnx_path: Path, config: Any) -> None:
    """The same checks from the .onnx file alone (no session, no weights); skipped for inline-weight graphs."""
    if onnx_path.stat().st_size > MAX_GRAPH_BYTES:
        return  # the session check at load covers it
    try:  # the protobuf read directly (graph_io.py): importing onnx costs ~0.8 s of every run's start-up
        inputs, outputs, initializers = graph_io(onnx_path.read_bytes())
    except GraphFormatError as error:
        raise HarnessError(f"{onnx_path} is not a readable ONNX model ({error}): re-copy it") from None
    check_graph_io(_declared(inputs, initializers), _declared(outputs), config, onnx_path)


def _declared(values: dict[str, tuple[list[Any], int]], initializers: set[str] = frozenset()) -> Declared:
    """Graph inputs that are not initializers, with ONNX element types as names."""
    return {name: (shape, _ONNX_TYPES.get(elem_type, f"type {elem_type}"))
            for name, (shape, elem_type) in values.items() if name not in initializers}


def check_graph_io(inputs: Declared, outputs: Declared, config: Any, onnx_path: Path) -> None:
    """Raise a one-line HarnessError naming the config key when the graph's KV and logits do not fit."""
    names = config.names
    past_layers = _count_layers(inputs, names.past_key)
    if past_layers and past_layers != config.num_layers:  # none at all: names differ, the name check says which
        _mismatch(onnx_path, "model.decoder.num_hidden_layers", config.num_layers,
                  f"{past_layers} layers of {names.past_key!r} inputs")
    kv_type = None
    for layer in range(config.num_layers):
        for name in (*names.past(layer), *names.present(layer)):
            shape, dtype = inputs.get(name) or outputs.get(name) or (None, None)
            if shape is None:
                continue  # a missing name is reported with the graph's own list (folder.check_session_io)
            _check_kv_shape(onnx_path, name, shape, config)
            kv_type = kv_type or dtype
            if dtype not in KV_TYPES or dtype != kv_type:
                raise HarnessError(
                    f"{onnx_path.name}: KV tensor {name!r} is {dtype}, the others {kv_type}; the engine needs "
                    "float32 or float16 for all: use a model folder built for ONNX Runtime's cpu, cuda or dml"
                )
    logits = outputs.get(names.logits)
    if logits and len(logits[0]) == 3 and isinstance(logits[0][2], int) and logits[0][2] != config.vocab_size:
        _mismatch(onnx_path, "model.vocab_size", config.vocab_size, f"logits of width {logits[0][2]}")
    if config.num_heads * config.head_size != config.hidden_size:
        raise HarnessError(
            f"{onnx_path.parent / CONFIG_NAME}: model.decoder.num_attention_heads {config.num_heads} x head_size "
            f"{config.head_size} is not hidden_size {config.hidden_size}: restore genai_config.json from the model"
        )


def _count_layers(inputs: Declared, pattern: str) -> int:
    count = 0
    while "%d" in pattern and pattern % count in inputs:
        count += 1
    return count


def _check_kv_shape(onnx_path: Path, name: str, shape: list[Any], config: Any) -> None:
    if len(shape) != 4:
        raise HarnessError(f"{onnx_path.name}: KV tensor {name!r} has {len(shape)} dimensions, expected 4 "
                           "[batch, kv_heads, sequence, head_size]: the model is not a Phi-3 genai export")
    for index, key, expected in ((1, "model.decoder.num_key_value_heads", config.num_kv_heads),
                                 (3, "model.decoder.head_size", config.head_size)):
        if isinstance(shape[index], int) and shape[index] not in (0, expected):
            _mismatch(onnx_path, key, expected, f"{name!r} of shape {shape}")


def _mismatch(onnx_path: Path, key: str, configured: Any, found: str) -> None:
    raise HarnessError(
        f"{onnx_path.parent / CONFIG_NAME} says {key} = {configured} but {onnx_path.name} has {found}: "
        "the config does not belong to this model; copy the model folder again as one piece"
    )
