"""The .onnx reader behind run's graph check (harness/model/graph_io.py) reads what the onnx package reads."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from harness.model.graph_io import GraphFormatError, graph_io, graph_nodes


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


@pytest.mark.parametrize(("precision", "layout"), [("fp32", "cpu"), ("int4", "cpu")])
def test_nodes_read_as_onnx_reads_them(tiny_builds, precision: str, layout: str) -> None:
    path = tiny_builds(precision, layout) / "model.onnx"
    model = onnx.load(str(path), load_external_data=False)
    nodes, _ = graph_nodes(path.read_bytes())
    assert [(n.op_type, n.inputs, n.outputs) for n in nodes] == [
        (n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


def test_integer_constants_in_every_encoding_and_nothing_else_read_as_integers() -> None:
    def constant(name: str, tensor: onnx.TensorProto) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=tensor)

    nodes = [
        constant("raw64", helper.make_tensor("t", TensorProto.INT64, [], [4096], raw=False)),
        constant("packed64", helper.make_tensor("t", TensorProto.INT64, [1], [-7])),
        constant("int32", helper.make_tensor("t", TensorProto.INT32, [], [-3])),
        constant("pair", helper.make_tensor("t", TensorProto.INT64, [2], [1, 2])),
        constant("float", helper.make_tensor("t", TensorProto.FLOAT, [], [1.0])),
    ]
    nodes[0].attribute[0].t.raw_data = (4096).to_bytes(8, "little")
    del nodes[0].attribute[0].t.int64_data[:]
    initializer = helper.make_tensor("init", TensorProto.INT64, [], [12])
    graph = helper.make_graph(nodes, "g", [], [], [initializer])
    read, integers = graph_nodes(helper.make_model(graph).SerializeToString())
    assert [n.value for n in read] == [4096, -7, -3, None, None]
    assert integers == {"init": 12}
