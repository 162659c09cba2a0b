"""The decoder graph with logits for the last position only: all a prefill needs.

A genai-format decoder returns logits for every position it is fed, and the engine samples only
the last one. On the tiny model the lm_head MatMul over a 64-token prompt was 69-73 % of the
prefill (benchmarks/engine_vs_genai.py's floor line); on a real Phi-3 it is ~3 % of the prefill's
arithmetic, but its output for a 4k prompt is 0.5 GB of fp32. The edit puts
``Gather(axis=1, indices=[-1])`` on the lm_head's input, so it multiplies one row, and declares
the logits output ``[batch, 1, vocab]``: the engine reads that shape back from the session
(docs/ARCHITECTURE.md, "targets/engine.py").

The edit is made only where it cannot change the last row: the path from the lm_head to the
logits output may hold only per-position operators (Cast, elementwise ops with a constant
operand: bias, soft-capping), and the lm_head's weight must not depend on the graph's inputs.
Anything else (an EPContext node from a precompiled QNN build, say) leaves the graph as it is,
with the reason in the result.

On the CPU provider the same edit also feeds GroupQueryAttention's two length inputs directly
(model/length_inputs.py: the attention mask's six reformat nodes go); what it did is kept in the
edited model's metadata, so a cached copy still says why the mask stayed when it did.

Edited once per graph with the onnx package and cached in ``cache_root()/graphs`` under the
graph file's sha256 and the edits asked for; later loads read the cached bytes without importing
onnx. ORT opens them with ``session.model_external_initializers_file_folder_path`` set to the
model's folder, so the weights (``model.onnx.data``) are read from where they are, never copied.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import cache_root
from harness.model.graph_io import GraphFormatError, graph_io, model_metadata
from harness.model.length_inputs import NotMatched, feed_lengths_directly

# Bump when the edit changes: cached graphs of an older edit are then never read.
EDIT_VERSION = 2  # 2: the lengths edit (model/length_inputs.py) may ride along
EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
# Operators that act on each position alone, so slicing before them equals slicing after them.
PER_POSITION_OPS = frozenset({"Cast", "Identity", "Add", "Sub", "Mul", "Div", "Tanh"})
LM_HEAD_OPS = frozenset({"MatMul", "MatMulNBits"})
_NODE_PREFIX = "/phi3_harness/last_position"
_PROTOBUF_LIMIT = 2 * 1024**3  # a ModelProto cannot be larger; such a graph cannot be re-serialised
LENGTHS_KEY = "phi3_harness.attention_lengths"  # metadata: what the lengths edit did
LENGTHS_FED = "fed directly (the mask's reformat nodes removed)"


class NotEditable(Exception):
    """The graph's logits cannot be cut to the last position without changing them; says why."""


@dataclass(frozen=True)
class DecoderGraph:
    """What ORT opens for a decoder: the folder's .onnx as it is, or its last-position edit."""

    path: Path  # the folder's .onnx: external data resolves against its folder either way
    edited: bytes | None = None  # the edited graph; None: open ``path`` as it is
    note: str = ""  # what was done, or why not (one short line: doctor shows it)
    cache_file: Path | None = None  # where the edit is kept, when it is
    attention_lengths: str = "from the attention mask"  # or LENGTHS_FED, or why the mask stayed

    @property
    def last_position_only(self) -> bool:
        return self.edited is not None

    def as_dict(self) -> dict[str, Any]:
        return {"logits": "last position" if self.last_position_only else "every position", "note": self.note,
                "attention_lengths": self.attention_lengths,
                "cache_file": str(self.cache_file) if self.cache_file else None}


def decoder_graph(onnx_path: Path, logits_name: str, cache_dir: Path | None = None, edit: bool = True,
                  lengths_from: str | None = None) -> DecoderGraph:
    """The graph at ``onnx_path`` with last-position logits, from the cache or edited now
    (``edit=False``: as it is, the provider's ``last_position_logits = false``); with
    ``lengths_from`` (the attention mask's input name) GroupQueryAttention's lengths are fed directly
    too, where the graph allows it."""
    onnx_path = Path(onnx_path)
    if not edit:
        return DecoderGraph(onnx_path, note="every position: last_position_logits = false")
    if onnx_path.stat().st_size >= _PROTOBUF_LIMIT:
        return DecoderGraph(onnx_path, note="every position: the graph file is over protobuf's 2 GiB limit")
    original = onnx_path.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    edits = "last-logits-lengths" if lengths_from else "last-logits"
    cached = Path(cache_dir or cache_root()) / "graphs" / f"{digest}-{edits}-v{EDIT_VERSION}.onnx"
    kept = _read_cached(cached)
    if kept is not None:
        lengths = model_metadata(kept).get(LENGTHS_KEY, DecoderGraph.attention_lengths)
        return DecoderGraph(onnx_path, kept, "last position only (the graph's cached edit)", cached, lengths)
    try:
        edited, lm_head, lengths = edit_graph(original, logits_name, lengths_from)
    except NotEditable as reason:
        return DecoderGraph(onnx_path, note=f"every position: {reason}")
    except Exception as error:  # onnx's parser (DecodeError) or a broken onnx install: ORT has the last word
        return DecoderGraph(onnx_path, note=f"every position: onnx could not edit the graph ({type(error).__name__}: {' '.join(str(error).split())})")
    if _store(cached, edited):
        return DecoderGraph(onnx_path, edited, f"last position only (Gather before {lm_head}; edit cached)", cached, lengths)
    return DecoderGraph(onnx_path, edited, f"last position only (Gather before {lm_head}; {cached.parent} not writable)",
                        attention_lengths=lengths)


def edit_graph(data: bytes, logits_name: str, lengths_from: str | None = None) -> tuple[bytes, str, str]:
    """(the edited ModelProto's bytes, the lm_head node's name, what became of the attention
    lengths); NotEditable when the logits cannot be cut."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)  # external data stays referenced, unread
    graph = model.graph
    output = next((o for o in graph.output if o.name == logits_name), None)
    if output is None:
        raise NotEditable(f"the graph has no output {logits_name!r}")
    lm_head = _find_lm_head(graph, logits_name)
    last = helper.make_tensor(f"{_NODE_PREFIX}/index", TensorProto.INT64, [1], [-1])
    gathered = f"{_NODE_PREFIX}/output_0"
    gather = helper.make_node("Gather", [lm_head.input[0], last.name], [gathered], name=f"{_NODE_PREFIX}/Gather", axis=1)
    graph.initializer.append(last)
    nodes = list(graph.node)
    graph.node.insert(nodes.index(lm_head), gather)  # right before it: the file stays in topological order
    lm_head.input[0] = gathered
    _declare_one_position(output)
    lengths = DecoderGraph.attention_lengths
    if lengths_from:
        try:
            feed_lengths_directly(model, lengths_from)
            lengths = LENGTHS_FED
        except NotMatched as reason:
            lengths = f"from the attention mask ({reason})"
        helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, LENGTHS_KEY: lengths})
    return model.SerializeToString(), lm_head.name or lm_head.op_type, lengths


def _find_lm_head(graph: Any, logits_name: str) -> Any:
    """Walk up from the logits through per-position operators to the MatMul that makes them."""
    producers = {out: node for node in graph.node for out in node.output}
    dynamic = _input_dependent(graph)
    value = logits_name
    while True:
        node = producers.get(value)
        if node is None:
            raise NotEditable(f"{value!r} is not computed by a node of the main graph")
        if node.op_type in LM_HEAD_OPS:
            if any(name in dynamic for name in node.input[1:]):
                raise NotEditable(f"{node.name or node.op_type}'s weight depends on the graph's inputs")
            return node
        if node.op_type not in PER_POSITION_OPS:
            raise NotEditable(f"the logits come from {node.op_type} {node.name!r}, not a MatMul through per-position ops")
        moving = [name for name in node.input if name in dynamic]
        if len(moving) != 1:
            raise NotEditable(f"{node.op_type} {node.name!r} on the logits path combines {len(moving)} input-dependent values")
        for constant in (name for name in node.input if name and name not in dynamic):
            if _rank(graph, producers, constant) not in (0, 1):  # a bias or a scale: anything wider may mix positions
                raise NotEditable(f"{node.op_type} {node.name!r} on the logits path has an operand that is not a scalar or a vector")
        value = moving[0]


def _rank(graph: Any, producers: dict[str, Any], name: str) -> int | None:
    """The rank of a constant value when it is an initializer or a Constant node's tensor; else None."""
    for tensor in graph.initializer:
        if tensor.name == name:
            return len(tensor.dims)
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        value = next((a for a in node.attribute if a.name == "value"), None)
        return len(value.t.dims) if value is not None else None
    return None


def _input_dependent(graph: Any) -> set[str]:
    """Every value computed from the graph's inputs (the rest is constant: initializers, Constants)."""
    initializers = {tensor.name for tensor in graph.initializer}
    dynamic = {value.name for value in graph.input if value.name not in initializers}
    for node in graph.node:  # a valid ONNX file lists nodes in topological order
        if any(name in dynamic for name in node.input) or _may_read_outer_values(node):
            dynamic.update(node.output)
    return dynamic


def _may_read_outer_values(node: Any) -> bool:
    """Nodes whose outputs may vary though their listed inputs do not: random ones, and If/Loop/Scan,
    whose subgraphs read the outer graph's values by name without listing them."""
    return node.op_type.startswith("Random") or any(attribute.g.node or attribute.graphs for attribute in node.attribute)


def _declare_one_position(output: Any) -> None:
    dims = output.type.tensor_type.shape.dim
    if len(dims) != 3:
        raise NotEditable(f"the logits output is declared with {len(dims)} dimensions, not [batch, sequence, vocab]")
    dims[1].ClearField("dim_param")
    dims[1].dim_value = 1


def _read_cached(path: Path) -> bytes | None:
    """The cached edit, or None when there is none or it is damaged (it is then made again and
    replaces it): a file ORT cannot parse would otherwise send every later load to the uncut graph."""
    try:
        data = path.read_bytes()
        graph_io(data)  # the protobuf reader that skips the weights: no onnx import
    except (OSError, GraphFormatError):
        return None
    return data


def _store(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (two processes may build the same entry); False when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError:
        return False
    stored = False
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
        stored = True
    except OSError:
        pass  # a full or read-only disk: the edit still runs, uncached
    finally:
        if not stored:  # also on Ctrl-C part way: no temporary file is left behind
            Path(temporary).unlink(missing_ok=True)
    return stored
