"""The tiny Phi-3 builder: folder format, graph form, determinism, atomic builds, cache and CLI."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fixtures_model import BuildFn, RawDecoder

from harness.commands import tiny_model as tiny_model_command
from harness.errors import HarnessError
from harness.model import default_model
from harness.model.tiny.build import build_tiny_model, builder_version, read_build_info
from harness.model.tiny.quant import dequantize_int4, quantize_int4

FOLDER_FILES = {
    "genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json", "tokenizer_config.json", "tiny_model.json",
}
CHAT_PROMPTS = [
    [1, 32010, 308, 13, 271, 427, 296, 32007, 308, 13, 32001, 308, 13],
    [1, 32010, 308, 13, 569, 313, 299, 427, 32007, 308, 13, 32001, 308, 13],
    [1, 32006, 308, 13, 300, 32007, 308, 13, 32010, 308, 13, 271, 32007, 308, 13, 32001, 308, 13],
    [1, 450, 4996, 17354, 1234],
]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _graph(folder: Path) -> onnx.GraphProto:
    return onnx.load(str(folder / "model.onnx"), load_external_data=False).graph


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# -- determinism and atomic writes ---------------------------------------------------------------


def test_same_seed_gives_a_byte_identical_folder(tiny_builds: BuildFn, tmp_path: Path) -> None:
    first = tiny_builds("fp32", "cpu")
    again = build_tiny_model(tmp_path / "again")
    assert set(_files(first)) == FOLDER_FILES
    assert _files(first) == _files(again)


def test_another_seed_gives_other_weights_and_the_same_tokenizer(tiny_builds: BuildFn, tmp_path: Path) -> None:
    first, other = _files(tiny_builds("fp32", "cpu")), _files(build_tiny_model(tmp_path / "seed1", seed=1))
    assert other["model.onnx.data"] != first["model.onnx.data"]
    assert other["tokenizer.json"] == first["tokenizer.json"]
    assert other["genai_config.json"] == first["genai_config.json"]


def test_two_processes_building_one_folder_both_succeed_with_this_processs_bytes(tiny_builds: BuildFn,
                                                                                  tmp_path: Path) -> None:
    """Concurrent builds of one folder, each in another process with another hash seed: both succeed and the
    folder equals this process's build byte for byte (per-process randomness: hash seeds, the tokenizers
    trainer's hash maps)."""
    out = tmp_path / "shared"
    code = f"from harness.model.tiny.build import build_tiny_model; print(build_tiny_model({str(out)!r}, 'int4'))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("123", "456")]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == [str(out)] * 2
    info = read_build_info(out)
    assert info is not None and set(info["files"]) | {"tiny_model.json"} == FOLDER_FILES
    assert [p.name for p in tmp_path.iterdir()] == ["shared"], "no temporary folders left behind"
    assert _files(out) == _files(tiny_builds("int4", "cpu"))


def test_rebuilding_replaces_a_tiny_folder_of_another_variant(tmp_path: Path) -> None:
    out = build_tiny_model(tmp_path / "m", precision="int4")
    build_tiny_model(out, precision="fp16")
    assert read_build_info(out)["precision"] == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_foreign_non_empty_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(HarnessError, match="not a tiny model folder"):
        build_tiny_model(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "kwargs,message",
    [({"precision": "fp32", "layout": "dml"}, "fp16 or int4"), ({"precision": "int8"}, "unknown precision"),
     ({"layout": "npu"}, "unknown layout"), ({"seed": -1}, "non-negative")],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message) as error:
        build_tiny_model(tmp_path / "m", **kwargs)
    assert "\n" not in str(error.value) and ": " in str(error.value)
    assert not (tmp_path / "m").exists()


# -- folder format ------------------------------------------------------------------------------------


def test_genai_config_has_the_published_fields(tiny_builds: BuildFn) -> None:
    config = json.loads((tiny_builds("fp32", "cpu") / "genai_config.json").read_text())
    model, decoder = config["model"], config["model"]["decoder"]
    assert (model["type"], model["vocab_size"], model["context_length"]) == ("phi3", 32064, 4096)
    assert (model["bos_token_id"], model["eos_token_id"], model["pad_token_id"]) == (1, [32000, 32001, 32007], 32000)
    assert (decoder["head_size"], decoder["hidden_size"], decoder["num_attention_heads"]) == (16, 64, 4)
    assert (decoder["num_hidden_layers"], decoder["num_key_value_heads"], decoder["filename"]) == (2, 2, "model.onnx")
    assert decoder["inputs"] == {
        "input_ids": "input_ids", "attention_mask": "attention_mask",
        "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value",
    }
    assert decoder["outputs"] == {
        "logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value",
    }
    assert decoder["session_options"] == {"log_id": "onnxruntime-genai", "provider_options": []}
    search = config["search"]
    assert search["past_present_share_buffer"] is True and search["max_length"] == 4096 and search["top_k"] == 1


def test_dml_config_adds_position_ids_and_the_dml_provider(tiny_builds: BuildFn) -> None:
    decoder = json.loads((tiny_builds("fp16", "dml") / "genai_config.json").read_text())["model"]["decoder"]
    assert decoder["inputs"]["position_ids"] == "position_ids"
    assert decoder["session_options"]["provider_options"] == [{"dml": {}}]


@pytest.mark.parametrize("precision,layout,kv_type", [
    ("fp32", "cpu", "tensor(float)"), ("fp16", "cpu", "tensor(float16)"), ("int4", "cpu", "tensor(float)"),
    ("fp16", "dml", "tensor(float16)"), ("int4", "dml", "tensor(float16)"),
])
def test_ort_session_io_matches_the_builder_signature(
    tiny_builds: BuildFn, precision: str, layout: str, kv_type: str
) -> None:
    model_path = tiny_builds(precision, layout) / "model.onnx"
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    expected_inputs = ["input_ids", "attention_mask"] + (["position_ids"] if layout == "dml" else [])
    expected_inputs += [f"past_key_values.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
    assert list(inputs) == expected_inputs
    assert list(outputs) == ["logits"] + [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
    assert inputs["input_ids"].shape == ["batch_size", "sequence_length"]
    assert inputs["input_ids"].type == "tensor(int64)"
    assert inputs["attention_mask"].shape == ["batch_size", "total_sequence_length"]
    assert inputs["past_key_values.1.value"].shape == ["batch_size", 2, "past_sequence_length", 16]
    assert inputs["past_key_values.1.value"].type == outputs["present.0.key"].type == outputs["logits"].type == kv_type
    assert outputs["present.0.key"].shape == ["batch_size", 2, "total_sequence_length", 16]
    assert outputs["logits"].shape == ["batch_size", "sequence_length", 32064]


def test_weights_live_in_model_onnx_data(tiny_builds: BuildFn) -> None:
    folder = tiny_builds("fp32", "cpu")
    graph = _graph(folder)
    external = [t for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    locations = {e.value for t in external for e in t.external_data if e.key == "location"}
    assert locations == {"model.onnx.data"}
    assert {t.name for t in external} >= {"model.embed_tokens.weight", "lm_head.MatMul.weight", "cos_cache"}
    assert (folder / "model.onnx").stat().st_size < 64 * 1024 < (folder / "model.onnx.data").stat().st_size


def test_cpu_graph_has_the_builder_ops(tiny_builds: BuildFn) -> None:
    nodes = _graph(tiny_builds("fp32", "cpu")).node
    ops = [(n.domain, n.op_type) for n in nodes]
    assert ops.count(("", "SimplifiedLayerNormalization")) == 1
    assert ops.count(("com.microsoft", "SkipSimplifiedLayerNormalization")) == 4
    assert ops.count(("", "MatMul")) == 2 * 5 + 1  # per layer qkv, o, gate, up, down; then lm_head
    gqa = [n for n in nodes if n.op_type == "GroupQueryAttention"]
    # as the builder's cpu/cuda GQA: one packed QKV input, key and value left empty
    assert gqa[0].input[0] == "/model/layers.0/attn/qkv_proj/MatMul/output_0" and list(gqa[0].input[1:3]) == ["", ""]
    assert len(gqa) == 2 and all(n.domain == "com.microsoft" for n in gqa)
    attrs = _attrs(gqa[0])
    assert (attrs["num_heads"], attrs["kv_num_heads"], attrs["do_rotary"]) == (4, 2, 1)
    assert attrs["scale"] == pytest.approx(0.25)
    assert list(gqa[0].input[3:5]) == ["past_key_values.0.key", "past_key_values.0.value"]
    assert list(gqa[0].input[7:]) == ["cos_cache", "sin_cache"]
    assert not any(n.op_type == "RotaryEmbedding" for n in nodes)


def test_dml_graph_rotates_with_position_ids_outside_attention(tiny_builds: BuildFn) -> None:
    nodes = _graph(tiny_builds("fp16", "dml")).node
    rotary = [n for n in nodes if n.op_type == "RotaryEmbedding"]
    assert len(rotary) == 4 and all(n.domain == "com.microsoft" and n.input[1] == "position_ids" for n in rotary)
    assert all(_attrs(n)["do_rotary"] == 0 for n in nodes if n.op_type == "GroupQueryAttention")
    # DirectML's GQA takes no packed QKV: the builder keeps q, k and v apart there
    assert {n.name for n in nodes if n.name.startswith("/model/layers.0/attn/") and "proj" in n.name} == {
        f"/model/layers.0/attn/{m}_proj/MatMul" for m in ("q", "k", "v", "o")}


def test_int4_quantizes_every_projection_and_keeps_the_embedding_float(tiny_builds: BuildFn) -> None:
    graph = _graph(tiny_builds("int4", "cpu"))
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 2 * 5 + 1 and not any(n.op_type == "MatMul" for n in graph.node)
    assert all((_attrs(n)["bits"], _attrs(n)["block_size"], _attrs(n)["accuracy_level"]) == (4, 32, 4) for n in nbits)
    embed = next(t for t in graph.initializer if t.name == "model.embed_tokens.weight")
    assert embed.data_type == onnx.TensorProto.FLOAT


def test_int4_packing_matches_ort_matmulnbits_exactly() -> None:
    """Our blob layout read by ORT (accuracy_level 0: float math) equals x @ dequantize(W)."""
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((64, 48)).astype(np.float32)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    q = quantize_int4(weight, 32)
    node = onnx.helper.make_node(
        "MatMulNBits", ["x", "b", "s"], ["y"], domain="com.microsoft",
        K=64, N=48, bits=4, block_size=32, accuracy_level=0,
    )
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 64])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [5, 48])],
        [onnx.numpy_helper.from_array(q.packed, "b"), onnx.numpy_helper.from_array(q.scales, "s")],
    )
    opsets = [onnx.helper.make_opsetid("", 21), onnx.helper.make_opsetid("com.microsoft", 1)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, ir_version=10)
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    dequantized = dequantize_int4(q)
    assert np.abs(y - x @ dequantized).max() < 1e-4
    assert np.abs(dequantized - weight).max() <= np.abs(weight).max() / 14 + 1e-6  # half a step of absmax/7


# -- behaviour of the random model ----------------------------------------------------------------


def test_distinct_prompts_give_distinct_greedy_continuations(tiny_builds: BuildFn) -> None:
    decoder = RawDecoder(tiny_builds("fp32", "cpu"))
    outputs = [tuple(decoder.greedy(prompt, 12)) for prompt in CHAT_PROMPTS]
    assert len(set(outputs)) == len(outputs)
    assert all(len(set(out)) > 3 for out in outputs), "greedy output should not be one repeated token"
    generated = {t for out in outputs for t in out}
    assert all(259 <= t < 32000 for t in generated), "only word tokens are reachable by greedy decoding"


# -- cache and CLI ----------------------------------------------------------------------------------


def test_default_model_dir_builds_once_then_reuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path))
    path = default_model.default_model_dir()
    assert path.parent == tmp_path and builder_version() in path.name
    stamp = (path / "model.onnx.data").stat().st_mtime_ns
    assert default_model.default_model_dir() == path
    assert (path / "model.onnx.data").stat().st_mtime_ns == stamp, "a cached folder is reused, not rebuilt"
    (path / "model.onnx.data").write_bytes(b"truncated")
    assert default_model.default_model_dir() == path
    assert (path / "model.onnx.data").stat().st_size > 1_000_000, "a damaged folder is rebuilt"


def test_default_model_dir_keys_variants_apart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path))
    variants = [("fp32", "cpu", 0), ("int4", "cpu", 0), ("fp16", "dml", 0), ("fp32", "cpu", 1)]
    paths = {default_model.cached_model_path(p, layout, s) for p, layout, s in variants}
    assert len(paths) == 4


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    tiny_model_command.add_arguments(parser)
    return tiny_model_command.run(parser.parse_args(argv))


def test_cli_writes_to_out_and_prints_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["--precision", "int4", "--seed", "2", "--out", str(tmp_path / "m")]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == (tmp_path / "m").resolve()
    assert (read_build_info(printed)["precision"], read_build_info(printed)["seed"]) == ("int4", 2)


def test_cli_defaults_to_the_cache_and_fp16_for_dml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path))
    assert _cli(["--layout", "dml"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == default_model.cached_model_path("fp16", "dml")
    assert read_build_info(printed)["layout"] == "dml"
