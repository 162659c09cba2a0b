"""The lengths edit (harness/model/length_inputs.py): GroupQueryAttention's seqlens_k and
total_sequence_length fed by the engine give what the attention mask gives, or the mask stays
and the reason is said; only on the CPU provider, and only when the graph is the builder's."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from longrope_model import make_longrope_folder
from onnx import helper

from harness.config import load_config
from harness.model.folder import load_model_folder
from harness.model.last_logits import LENGTHS_FED, decoder_graph
from harness.model.length_inputs import SEQLENS_INPUT, TOTAL_LENGTH_INPUT, NotMatched, feed_lengths_directly
from harness.providers import ProviderSettings, folder_graph, prefill_logits_in_effect
from harness.targets.base import Request
from harness.targets.engine import Engine, _Step

MASK_NODES = ("ReduceSum", "Sub", "Cast", "Shape", "Gather", "Cast")


def _plain_settings() -> ProviderSettings:
    return ProviderSettings(direct_attention_lengths=False)


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_fed_lengths_generate_what_the_mask_generates_whole_chunked_and_sampled(tiny_builds, precision: str) -> None:
    folder = tiny_builds(precision, "cpu")
    fed, masked = Engine.load(folder), Engine.load(folder, _plain_settings())
    assert fed.feeds_lengths and not masked.feeds_lengths
    assert "attention_mask" not in {i.name for i in fed.session.get_inputs()}
    prompt = tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(61)] + [32007, 32001])
    for chunk in (None, 16):  # one Run for the prompt, then four Runs after cached positions
        fed.prefill_chunk = masked.prefill_chunk = chunk or 0
        request = Request(prompt_ids=prompt, max_new_tokens=48, ignore_eos=True)
        assert fed.generate(request).output_ids == masked.generate(request).output_ids
    sampled = Request(prompt_ids=prompt, max_new_tokens=24, greedy=False, temperature=0.8, seed=3, ignore_eos=True)
    assert fed.generate(sampled).output_ids == masked.generate(sampled).output_ids


def test_the_edit_removes_the_six_mask_nodes_and_their_constants_and_nothing_else(tiny_builds, tmp_path: Path) -> None:
    folder = load_model_folder(tiny_builds("fp32", "cpu"))
    logits_only = decoder_graph(folder.onnx_path, "logits", cache_dir=tmp_path)
    both = decoder_graph(folder.onnx_path, "logits", cache_dir=tmp_path, lengths_from="attention_mask")
    assert both.attention_lengths == LENGTHS_FED and logits_only.attention_lengths == "from the attention mask"
    before, after = onnx.load_from_string(logits_only.edited).graph, onnx.load_from_string(both.edited).graph
    gone = [n for n in before.node if n.name not in {m.name for m in after.node}]
    assert [n.op_type for n in gone] == list(MASK_NODES)
    inputs = {i.name: i.type.tensor_type.elem_type for i in after.input}
    assert "attention_mask" not in inputs
    assert inputs[SEQLENS_INPUT] == inputs[TOTAL_LENGTH_INPUT] == onnx.TensorProto.INT32
    read = {name for node in after.node for name in node.input}
    assert all(t.name in read for t in after.initializer)  # ORT warns on every load about an unused one
    for node in (n for n in after.node if n.op_type == "GroupQueryAttention"):
        assert (node.input[5], node.input[6]) == (SEQLENS_INPUT, TOTAL_LENGTH_INPUT)


def test_a_mask_read_by_anything_else_stays_and_the_reason_is_kept_in_the_cached_copy(tiny_builds, tmp_path: Path) -> None:
    source = tiny_builds("fp32", "cpu")
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    model = onnx.load(str(folder / "model.onnx"))
    model.graph.node.append(helper.make_node("Identity", ["attention_mask"], ["mask_copy"], name="extra_reader"))
    model.graph.output.append(helper.make_tensor_value_info("mask_copy", onnx.TensorProto.INT64, ["batch_size", "total"]))
    untouched = onnx.ModelProto()
    untouched.CopyFrom(model)
    with pytest.raises(NotMatched, match="'attention_mask' is read by Identity, ReduceSum, Shape"):
        feed_lengths_directly(model, "attention_mask")
    assert model == untouched
    onnx.save(model, str(folder / "model.onnx"))
    for _ in range(2):  # edited, then read back from the cache
        graph = decoder_graph(folder / "model.onnx", "logits", cache_dir=tmp_path / "cache", lengths_from="attention_mask")
        assert graph.last_position_only
        assert graph.attention_lengths.startswith("from the attention mask ('attention_mask' is read by Identity")


def test_a_longrope_graph_reads_its_switch_length_from_the_fed_total_and_generates_what_the_mask_does(
        tiny_builds, tmp_path: Path) -> None:
    folder = make_longrope_folder(tiny_builds("fp32", "cpu"), tmp_path / "longrope", switch=48, context=96)
    fed, masked = Engine.load(folder), Engine.load(folder, _plain_settings())
    assert fed.feeds_lengths and fed.rope_switch == 48
    graph = onnx.load_from_string(decoder_graph(folder / "model.onnx", "logits", lengths_from="attention_mask").edited).graph
    cast = next(n for n in graph.node if n.name == "/phi3_harness/lengths/total_int64")
    greater = next(n for n in graph.node if n.op_type == "Greater")
    assert list(cast.input) == [TOTAL_LENGTH_INPUT] and greater.input[0] == cast.output[0]
    # a prompt below the switch, generation across it (the cache is dropped and refilled at 49)
    request = Request(prompt_ids=tuple(range(300, 340)), max_new_tokens=30, ignore_eos=True)
    assert fed.generate(request).output_ids == masked.generate(request).output_ids


def test_only_the_cpu_provider_asks_for_the_edit_and_the_config_can_refuse_it(tiny_builds) -> None:
    assert ProviderSettings(name="cpu").attention_lengths_refused is None
    for name in ("cuda", "dml", "qnn"):
        assert ProviderSettings(name=name).attention_lengths_refused == f"the edit is made on cpu only, not on {name}"
    settings = load_config(None, {"provider.cpu.direct_attention_lengths": "false"}).provider_settings("cpu")
    assert settings.direct_attention_lengths is False
    engine = Engine.load(tiny_builds("fp32", "cpu"), settings)
    assert "attention_mask" in {i.name for i in engine.session.get_inputs()}
    said = prefill_logits_in_effect(engine.session)["attention_lengths"]
    assert said == "from the attention mask (direct_attention_lengths = false)"
    graph = folder_graph(load_model_folder(tiny_builds("fp16", "dml")), ProviderSettings(name="dml"))
    assert graph.attention_lengths == "from the attention mask (the edit is made on cpu only, not on dml)"
    assert Engine.load(tiny_builds("fp32", "cpu"), dataclasses.replace(settings, direct_attention_lengths=True)).feeds_lengths


def test_each_run_reads_the_lengths_the_masks_reduction_gave_chunked_prefill_and_decode(tiny_builds) -> None:
    engine = Engine.load(tiny_builds("fp32", "cpu"))
    engine.prefill_chunk = 7
    step = _Step(engine, capacity=24)
    seen: list[tuple[int, int]] = []
    run = engine.session.run_with_iobinding

    def recording(binding, *args):
        seen.append((int(step.seqlens[0]), int(step.total_length)))
        return run(binding, *args)

    engine.session.run_with_iobinding = recording
    step.prefill(list(range(300, 320)))  # chunks of 7, 7 and 6 tokens
    step.decode(5, past_length=20)
    step.decode(6, past_length=21)
    # what ReduceSum(mask) - 1 and Shape(mask)[1] gave for the all-ones mask of each Run's total length
    assert seen == [(int(np.ones((1, t)).sum()) - 1, np.ones((1, t)).shape[1]) for t in (7, 14, 20, 21, 22)]
