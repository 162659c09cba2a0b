"""A LongRoPE variant of the tiny model, in the form the onnxruntime-genai model builder gives Phi-3-mini-128k,
Phi-3.5-mini and Phi-4-mini on cpu and cuda: two cos/sin cache pairs chosen per Run by
``If(Greater(total_sequence_length, switch))`` (harness/model/rope_switch.py).

Made from the tiny cpu fp32 folder with onnx, for tests only: the short caches are plain RoPE, the long
ones divide each frequency by a factor from 1 to 3, so a key cached under one is measurably wrong
under the other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTH = "/model/attn_mask_reformat/attn_mask_subgraph/Gather/output_0"  # total sequence length, int64


def _caches(rows: int, half: int, factors: np.ndarray, theta: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    inv_freq = 1.0 / theta ** (np.arange(half, dtype=np.float64) * 2 / (2 * half)) / factors
    angles = np.outer(np.arange(rows, dtype=np.float64), inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _branch(name: str, caches: tuple[np.ndarray, np.ndarray]) -> onnx.GraphProto:
    outputs = [f"cos_cache_{name}", f"sin_cache_{name}"]
    nodes = [helper.make_node("Constant", [], [out], value=numpy_helper.from_array(cache, out))
             for out, cache in zip(outputs, caches)]
    infos = [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(caches[0].shape)) for out in outputs]
    return helper.make_graph(nodes, f"{name}_caches", [], infos)


def make_longrope_folder(source: Path, target: Path, switch: int, context: int) -> Path:
    """``source``'s model with rotary caches that switch above ``switch`` tokens, for sequences up to ``context``."""
    model = onnx.load(str(source / "model.onnx"))
    graph = model.graph
    half = next(numpy_helper.to_array(t) for t in graph.initializer if t.name == "cos_cache").shape[1]
    kept = [t for t in graph.initializer if t.name not in ("cos_cache", "sin_cache")]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    switch_nodes = [
        helper.make_node("Constant", [], ["/model/constants/INT64/switch"],
                         value=numpy_helper.from_array(np.array(switch, dtype=np.int64))),
        helper.make_node("Greater", [WIDTH, "/model/constants/INT64/switch"], ["/model/rope_caches_subgraph/Greater/output_0"]),
        helper.make_node("If", ["/model/rope_caches_subgraph/Greater/output_0"], ["cos_cache", "sin_cache"],
                         then_branch=_branch("large", _caches(context, half, np.linspace(1.0, 3.0, half))),
                         else_branch=_branch("small", _caches(context, half, np.ones(half)))),
    ]
    after = next(i for i, node in enumerate(graph.node) if WIDTH in node.output) + 1
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes[:after] + switch_nodes + nodes[after:])
    target.mkdir(parents=True)
    onnx.save(model, str(target / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, target / name)
    config = json.loads((source / "genai_config.json").read_text(encoding="utf-8"))
    config["model"]["context_length"] = config["search"]["max_length"] = context
    (target / "genai_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return target
