"""The .onnx reader behind run's graph check (harness/model/graph_io.py) reads what the onnx package reads."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from harness.model.graph_io import GraphFormatError, graph_io


def _as_onnx_reads(values) -> dict:
    return {v.name: ([d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim],
                     v.type.tensor_type.elem_type) for v in values}


def _assert_same(path: Path) -> None:
    model = onnx.load(str(path), load_external_data=False)
    inputs, outputs, initializers = graph_io(path.read_bytes())
    assert inputs == _as_onnx_reads(model.graph.input) and outputs == _as_onnx_reads(model.graph.output)
    assert initializers == {init.name for init in model.graph.initializer}


@pytest.mark.parametrize(("precision", "layout"), [("fp32", "cpu"), ("fp16", "dml"), ("int4", "cpu")])
def test_the_tiny_decoder_graphs_read_as_onnx_reads_them(tiny_builds, precision: str, layout: str) -> None:
    _assert_same(tiny_builds(precision, layout) / "model.onnx")


def test_inline_weights_symbolic_unknown_and_missing_dims_read_as_onnx_reads_them(tmp_path: Path) -> None:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], [0.5] * 6)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 3]),  # an input that is also an initializer
         helper.make_tensor_value_info("no_shape", TensorProto.BFLOAT16, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None])], [weight])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    _assert_same(path)
    inputs, outputs, initializers = graph_io(path.read_bytes())
    assert inputs["x"] == (["batch", 2], TensorProto.FLOAT) and outputs["y"] == (["batch", ""], TensorProto.FLOAT)
    assert initializers == {"w"} and inputs["no_shape"] == ([], TensorProto.BFLOAT16)


def test_a_truncated_file_is_a_format_error(tiny_model_dir: Path) -> None:
    data = (tiny_model_dir / "model.onnx").read_bytes()
    with pytest.raises(GraphFormatError):
        graph_io(data[: len(data) // 2])
    with pytest.raises(GraphFormatError):
        graph_io(b"\xff" * 64)  # not protobuf at all
