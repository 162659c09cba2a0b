"""A genai-format model folder: genai_config.json, the decoder .onnx (+ .onnx.data), tokenizer.json.

Every name the engine feeds or reads comes from genai_config.json, as onnxruntime-genai does, so a
published Phi-3 folder (cpu, cuda or DirectML build) and the embedded tiny model load the same way.
"""

from __future__ import annotations

import json
import mmap
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.model.graph_check import check_graph_io, declared_from_session
from harness.model.length_inputs import SEQLENS_INPUT, TOTAL_LENGTH_INPUT

CONFIG_NAME = "genai_config.json"
TOKENIZER_NAME = "tokenizer.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"


@dataclass(frozen=True)
class DecoderNames:
    """Input/output names of the decoder graph; ``%d`` patterns take the layer index."""

    input_ids: str
    attention_mask: str
    position_ids: str | None
    past_key: str
    past_value: str
    logits: str
    present_key: str
    present_value: str

    def past(self, layer: int) -> tuple[str, str]:
        return self.past_key % layer, self.past_value % layer

    def present(self, layer: int) -> tuple[str, str]:
        return self.present_key % layer, self.present_value % layer


@dataclass(frozen=True)
class ModelConfig:
    model_type: str
    vocab_size: int
    context_length: int
    max_length: int
    bos_token_id: int
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    hidden_size: int
    filename: str
    names: DecoderNames
    past_present_share_buffer: bool
    provider_options: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    config: ModelConfig
    onnx_path: Path
    tokenizer_path: Path
    tokenizer_config_path: Path | None


def load_model_folder(path: Path | str) -> ModelFolder:
    """Read and check a model folder; every problem is a one-line HarnessError naming the fix."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise HarnessError(
            f"model folder {folder} does not exist: pass --model with a Phi-3 ONNX folder "
            "(one holding genai_config.json), or leave it out to use the embedded tiny model"
        )
    config = parse_genai_config(folder / CONFIG_NAME)
    onnx_path = folder / config.filename
    if not onnx_path.is_file():
        raise HarnessError(
            f"{onnx_path} is missing (named by {CONFIG_NAME} model.decoder.filename): "
            "copy the whole model folder, or fix the filename in genai_config.json"
        )
    _check_external_data(onnx_path)
    tokenizer_path = folder / TOKENIZER_NAME
    if not tokenizer_path.is_file():
        raise HarnessError(
            f"{tokenizer_path} is missing: copy tokenizer.json (and tokenizer_config.json) "
            "from the published model folder"
        )
    tokenizer_config = folder / TOKENIZER_CONFIG_NAME
    return ModelFolder(
        path=folder,
        config=config,
        onnx_path=onnx_path,
        tokenizer_path=tokenizer_path,
        tokenizer_config_path=tokenizer_config if tokenizer_config.is_file() else None,
    )


def parse_genai_config(config_path: Path) -> ModelConfig:
    if not config_path.is_file():
        raise HarnessError(
            f"{config_path} is missing: a model folder needs genai_config.json "
            "(use the published Phi-3 ONNX folder as it is, or 'phi3-harness tiny-model')"
        )
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HarnessError(f"{config_path} is not valid JSON ({error}): restore the file from the model folder") from None
    refuse_pipeline(raw, config_path)
    reader = _ConfigReader(raw, config_path)
    return ModelConfig(
        model_type=reader.get("model.type", str),
        vocab_size=reader.get("model.vocab_size", int),
        context_length=reader.get("model.context_length", int),
        max_length=reader.get("search.max_length", int, default=None)
        or reader.get("model.context_length", int),
        bos_token_id=reader.get("model.bos_token_id", int, default=1),
        eos_token_ids=_int_tuple(reader.get("model.eos_token_id", (int, list))),
        pad_token_id=reader.get("model.pad_token_id", int, default=0),
        num_layers=reader.get("model.decoder.num_hidden_layers", int),
        num_heads=reader.get("model.decoder.num_attention_heads", int),
        num_kv_heads=reader.get("model.decoder.num_key_value_heads", int),
        head_size=reader.get("model.decoder.head_size", int),
        hidden_size=reader.get("model.decoder.hidden_size", int),
        filename=reader.get("model.decoder.filename", str),
        names=DecoderNames(
            input_ids=reader.get("model.decoder.inputs.input_ids", str),
            attention_mask=reader.get("model.decoder.inputs.attention_mask", str),
            position_ids=reader.get("model.decoder.inputs.position_ids", str, default=None),
            past_key=reader.get("model.decoder.inputs.past_key_names", str),
            past_value=reader.get("model.decoder.inputs.past_value_names", str),
            logits=reader.get("model.decoder.outputs.logits", str),
            present_key=reader.get("model.decoder.outputs.present_key_names", str),
            present_value=reader.get("model.decoder.outputs.present_value_names", str),
        ),
        past_present_share_buffer=reader.get("search.past_present_share_buffer", bool, default=False),
        provider_options=tuple(
            reader.get("model.decoder.session_options.provider_options", list, default=[])
        ),
    )


def pipeline_stages(raw: Any) -> list[str] | None:
    """Stage names of a decoder-pipeline genai config (None for a single-decoder config).

    onnxruntime-genai's ``decoder-pipeline`` type (the published QNN Phi-3 folders) splits the
    model into graphs run one after another - embeddings, EPContext context/iterator graphs, lm_head
    - listed under ``model.decoder.pipeline`` as a list of {stage: {...}} objects or one object.
    """
    model = raw.get("model") if isinstance(raw, dict) else None
    decoder = model.get("decoder") if isinstance(model, dict) else None
    pipeline = decoder.get("pipeline") if isinstance(decoder, dict) else None
    if not (isinstance(model, dict) and model.get("type") == "decoder-pipeline") and pipeline is None:
        return None
    entries = pipeline if isinstance(pipeline, list) else [pipeline]
    return [str(stage) for entry in entries if isinstance(entry, dict) for stage in entry]


def refuse_pipeline(raw: Any, config_path: Path) -> None:
    """A decoder-pipeline folder is recognised and refused in one line, before any key is missed."""
    stages = pipeline_stages(raw)
    if stages is None:
        return
    graphs = f" ({', '.join(stages)})" if stages else ""
    raise HarnessError(
        f"{config_path} is a decoder-pipeline model{graphs}, the layout of the published QNN folders: "
        "this engine runs single-decoder folders (model.decoder.filename) only: use the cpu, cuda or "
        "directml Phi-3 folder, or run this one with onnxruntime-genai"
    )


def check_session_io(folder: ModelFolder, session: Any) -> None:
    """The graph's inputs and outputs must be the ones genai_config.json names, of the sizes it says."""
    check_graph_io(declared_from_session(session.get_inputs()), declared_from_session(session.get_outputs()),
                   folder.config, folder.onnx_path)
    names = folder.config.names
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    # the lengths edit (length_inputs.py) replaces the mask with GroupQueryAttention's two lengths
    fed_lengths = [SEQLENS_INPUT, TOTAL_LENGTH_INPUT]
    expected_inputs = [names.input_ids, *(fed_lengths if SEQLENS_INPUT in inputs else [names.attention_mask])]
    expected_outputs = [names.logits]
    for layer in range(folder.config.num_layers):
        expected_inputs += names.past(layer)
        expected_outputs += names.present(layer)
    if names.position_ids:
        expected_inputs.append(names.position_ids)
    for kind, expected, actual in (("input", expected_inputs, inputs), ("output", expected_outputs, outputs)):
        missing = [name for name in expected if name not in actual]
        if missing:
            raise HarnessError(
                f"{folder.onnx_path.name} has no {kind} {missing[0]!r} named in {CONFIG_NAME} "
                f"(graph {kind}s: {', '.join(sorted(actual)[:6])}...): the config does not belong to this model"
            )
    extra = inputs - set(expected_inputs)
    if extra:
        raise HarnessError(
            f"{folder.onnx_path.name} takes input {sorted(extra)[0]!r} that {CONFIG_NAME} does not name: "
            "the config does not belong to this model"
        )


class _ConfigReader:
    """Typed access to dotted keys of genai_config.json with errors that name the key."""

    _MISSING = object()

    def __init__(self, raw: Any, path: Path) -> None:
        self.raw, self.path = raw, path

    def get(self, dotted: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        node = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not self._MISSING:
                    return default
                raise HarnessError(f"{self.path}: required key {dotted!r} is missing: restore genai_config.json")
            node = node[part]
        if isinstance(node, bool) and kind is int or not isinstance(node, kind):
            raise HarnessError(f"{self.path}: key {dotted!r} has the wrong type ({type(node).__name__}): fix genai_config.json")
        return node


def _int_tuple(value: int | list) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(int(v) for v in value)


# An external-data reference in the ONNX protobuf: StringStringEntryProto {key: "location", value: ...},
# i.e. field 1 (len 8) "location", then field 2 and the value's length. Scanning for it spares
# importing onnx (~90 ms of every command's start-up) just to list the files a graph needs.
_LOCATION_ENTRY = re.compile(rb"\n\x08location\x12([\x01-\x7f])")


def _external_data_locations(onnx_path: Path) -> set[str]:
    locations: set[str] = set()
    with onnx_path.open("rb") as handle:
        if onnx_path.stat().st_size == 0:
            return locations
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:  # a graph with inline weights is GBs
            for match in _LOCATION_ENTRY.finditer(data):
                start = match.end()
                locations.add(data[start : start + match.group(1)[0]].decode("utf-8", errors="replace"))
    return locations


def _check_external_data(onnx_path: Path) -> None:
    """Every external-data file the graph refers to must be beside it."""
    try:
        locations = _external_data_locations(onnx_path)
    except OSError as error:
        raise HarnessError(f"{onnx_path} cannot be read ({error.strerror}): check the file's permissions") from None
    for location in sorted(locations):
        if not (onnx_path.parent / location).is_file():
            raise HarnessError(
                f"{onnx_path.parent / location} is missing (external weights of {onnx_path.name}): "
                "copy the .onnx.data file that came with the model"
            )
