"""The last-position edit of a decoder graph gives the last row the graph as it is gives, or is not made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from harness.model.folder import load_model_folder
from harness.model.last_logits import DecoderGraph, NotEditable, decoder_graph, edit_graph
from harness.providers import ProviderSettings, create_session, prefill_logits_in_effect
from harness.targets.base import Request
from harness.targets.engine import Engine

PROMPT = [1, 32010, 450, 4996, 17354, 1701, 29916, 32007, 32001]


def _feed(session: object, ids: list[int], past: dict[str, np.ndarray] | None, past_length: int) -> dict[str, np.ndarray]:
    total = past_length + len(ids)
    feed: dict[str, np.ndarray] = {
        "input_ids": np.asarray([ids], dtype=np.int64),
        "attention_mask": np.ones((1, total), dtype=np.int64),
    }
    for declared in session.get_inputs():  # type: ignore[attr-defined]
        if declared.name == "position_ids":
            feed["position_ids"] = np.arange(past_length, total, dtype=np.int64).reshape(1, -1)
        elif declared.name.startswith("past_key_values"):
            dtype = np.float16 if "float16" in declared.type else np.float32
            empty = np.zeros((1, declared.shape[1], 0, declared.shape[3]), dtype=dtype)
            feed[declared.name] = empty if past is None else past[declared.name]
    return feed


def _logits_and_past(session: object, ids: list[int], past: dict[str, np.ndarray] | None = None,
                     past_length: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]
    outputs = dict(zip(names, session.run(names, _feed(session, ids, past, past_length))))  # type: ignore[attr-defined]
    present = {name.replace("present", "past_key_values"): value for name, value in outputs.items() if name.startswith("present")}
    return outputs["logits"], present


@pytest.mark.parametrize("precision,layout", [("fp32", "cpu"), ("int4", "cpu"), ("fp16", "dml")])
def test_edited_logits_equal_the_last_row_of_the_graph_as_it_is(tiny_builds, precision: str, layout: str,
                                                                 tmp_path: Path) -> None:
    folder = load_model_folder(tiny_builds(precision, layout))
    graph = decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert graph.last_position_only, graph.note
    edited = create_session(graph, ProviderSettings())
    plain = create_session(folder.onnx_path, ProviderSettings())
    assert [o.shape for o in edited.get_outputs()][0][1] == 1
    # a first prompt, then a chunk after cached positions: the two ways a prefill Run is fed
    everything, past = _logits_and_past(plain, PROMPT[:5])
    last, past_edited = _logits_and_past(edited, PROMPT[:5])
    assert everything.shape[1] == 5 and last.shape[1] == 1
    np.testing.assert_allclose(last[0, 0], everything[0, -1], rtol=1e-3, atol=1e-4)
    everything, _ = _logits_and_past(plain, PROMPT[5:], past, past_length=5)
    last, _ = _logits_and_past(edited, PROMPT[5:], past_edited, past_length=5)
    np.testing.assert_allclose(last[0, 0], everything[0, -1], rtol=1e-3, atol=1e-4)


def test_the_edit_is_cached_and_read_back_without_editing_again(tiny_model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = load_model_folder(tiny_model_dir)
    first = decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert "Gather before /lm_head/MatMul" in first.note and first.cache_file is not None

    def no_edit(*_: object) -> None:
        raise AssertionError("a cached graph was edited again")

    monkeypatch.setattr("harness.model.last_logits.edit_graph", no_edit)
    again = decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert again.edited == first.edited and again.note == "last position only (the graph's cached edit)"


def test_an_engine_on_the_edit_generates_what_it_does_on_the_graph_as_it_is(tiny_model_dir: Path) -> None:
    plain = Engine.load(tiny_model_dir, session=create_session(load_model_folder(tiny_model_dir).onnx_path, ProviderSettings()))
    edited = Engine.load(tiny_model_dir)
    assert edited.last_logits_only and not plain.last_logits_only
    assert prefill_logits_in_effect(edited.session)["logits"] == "last position"
    request = Request(prompt_ids=tuple(PROMPT), max_new_tokens=16)
    assert edited.generate(request).output_ids == plain.generate(request).output_ids


def test_a_refused_edit_opens_the_graph_as_it_is_and_says_so(tiny_model_dir: Path) -> None:
    onnx_path = load_model_folder(tiny_model_dir).onnx_path
    broken = DecoderGraph(onnx_path, b"not a model", "last position only (test)")
    session = create_session(broken, ProviderSettings())
    in_effect = prefill_logits_in_effect(session)
    assert in_effect["logits"] == "every position"
    assert in_effect["note"].startswith("every position: ORT refused the edited graph (")
    assert Engine.load(tiny_model_dir, session=session).last_logits_only is False


# -- graphs the edit must leave alone ---------------------------------------------------------------

def _graph(nodes: list, initializers: list, inputs: list | None = None) -> bytes:
    hidden = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "sequence", 4])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", 3])
    graph = helper.make_graph(nodes, "g", [hidden] + (inputs or []), [logits], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


WEIGHT = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, dtype=np.float32))
BIAS = helper.make_tensor("b", TensorProto.FLOAT, [3], np.zeros(3, dtype=np.float32))


def test_a_bias_and_a_cast_after_the_lm_head_are_edited_through() -> None:
    data = _graph([helper.make_node("MatMul", ["hidden", "w"], ["m"], name="head"),
                   helper.make_node("Add", ["m", "b"], ["a"]),
                   helper.make_node("Cast", ["a"], ["logits"], to=TensorProto.FLOAT)], [WEIGHT, BIAS])
    edited, lm_head, _ = edit_graph(data, "logits")
    model = onnx.load_from_string(edited)
    assert lm_head == "head" and [n.op_type for n in model.graph.node] == ["Gather", "MatMul", "Add", "Cast"]
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1


@pytest.mark.parametrize("nodes,initializers,inputs,reason", [
    ([helper.make_node("Softmax", ["hidden"], ["logits"], axis=-1)], [], None, "come from Softmax"),
    ([helper.make_node("MatMul", ["hidden", "weights_in"], ["logits"])], [],
     [helper.make_tensor_value_info("weights_in", TensorProto.FLOAT, [4, 3])], "weight depends on the graph's inputs"),
    ([helper.make_node("MatMul", ["hidden", "w"], ["m"]), helper.make_node("Add", ["m", "other"], ["logits"])],
     [WEIGHT], [helper.make_tensor_value_info("other", TensorProto.FLOAT, ["batch", "sequence", 3])],
     "combines 2 input-dependent values"),
    ([helper.make_node("EPContext", ["hidden"], ["logits"], domain="com.microsoft")], [], None, "come from EPContext"),
    ([helper.make_node("MatMul", ["hidden", "w"], ["m"]), helper.make_node("Add", ["m", "wide"], ["logits"])],
     [WEIGHT, helper.make_tensor("wide", TensorProto.FLOAT, [1, 2, 3], np.zeros(6, dtype=np.float32))], None,
     "not a scalar or a vector"),
])
def test_logits_that_are_not_a_per_position_matmul_are_left_alone(nodes: list, initializers: list,
                                                                   inputs: list | None, reason: str) -> None:
    with pytest.raises(NotEditable, match=reason):
        edit_graph(_graph(nodes, initializers, inputs), "logits")


def test_a_graph_that_cannot_be_edited_is_opened_as_it_is_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(_graph([helper.make_node("Softmax", ["hidden"], ["logits"], axis=-1)], []))
    graph = decoder_graph(path, "logits", cache_dir=tmp_path / "cache")
    assert not graph.last_position_only and graph.note.startswith("every position: the logits come from Softmax")
    assert not (tmp_path / "cache" / "graphs").exists()


def test_last_position_logits_false_runs_the_graph_as_it_is_in_the_engine_and_the_probe(tiny_model_dir: Path) -> None:
    from harness.config import load_config
    from harness.providers.probe import probe_with_session

    settings = load_config(None, {"provider.cpu.last_position_logits": "false"}).provider_settings("cpu")
    engine = Engine.load(tiny_model_dir, settings)
    assert not engine.last_logits_only
    assert prefill_logits_in_effect(engine.session)["note"] == "every position: last_position_logits = false"
    result, session = probe_with_session("cpu", tiny_model_dir, settings)
    assert result.prefill_logits["logits"] == "every position" and not Engine.load(tiny_model_dir, session=session).last_logits_only
    default, _ = probe_with_session("cpu", tiny_model_dir)
    assert default.prefill_logits["logits"] == "last position"


def test_a_damaged_cached_edit_is_made_again_and_replaced(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = load_model_folder(tiny_model_dir)
    first = decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert first.cache_file is not None
    first.cache_file.write_bytes(first.edited[: len(first.edited) // 2])  # cut short, as a crashed copy would be
    again = decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert again.edited == first.edited and "Gather before /lm_head/MatMul; edit cached" in again.note
    assert first.cache_file.read_bytes() == first.edited


def test_an_interrupted_cache_write_leaves_no_file_behind(tiny_model_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = load_model_folder(tiny_model_dir)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.model.last_logits.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        decoder_graph(folder.onnx_path, folder.config.names.logits, cache_dir=tmp_path)
    assert list((tmp_path / "graphs").iterdir()) == []
