"""benchmarks/kernel_ceiling.py copies a model's heaviest weight kernel with fewer output columns,
so its weights stay in cache: the copy must be the same operator with the same attributes and the
same bytes per column, or roofline.py's second ceiling measures some other kernel."""

from __future__ import annotations

import math

import onnx
import pytest
from benchmark_scripts import load_benchmark

from harness.model.default_model import default_model_dir
from harness.providers.session import ProviderSettings


@pytest.fixture(scope="module")
def kernel_ceiling():
    return load_benchmark("kernel_ceiling")


def _weight_bytes(graph: onnx.GraphProto, node_name: str) -> int:
    node = next(n for n in graph.node if n.name == node_name)
    initializers = {t.name: t for t in graph.initializer}
    return sum(onnx.numpy_helper.to_array(initializers[name]).nbytes for name in node.input[1:] if name in initializers)


@pytest.mark.parametrize(("precision", "op_type"), [("fp32", "MatMul"), ("int4", "MatMulNBits")])
def test_the_in_cache_copy_is_the_heaviest_kernel_with_fewer_columns(kernel_ceiling, monkeypatch, precision, op_type):
    graph = onnx.load(str(default_model_dir(precision=precision) / "model.onnx")).graph
    shape = kernel_ceiling.heaviest_kernel(graph)
    assert (shape.op_type, shape.name, shape.n, shape.k) == (op_type, f"/lm_head/{op_type}", 32064, 64)
    monkeypatch.setattr(kernel_ceiling, "IN_CACHE_BYTES", 256 * 1024)
    copy = kernel_ceiling.KernelCeiling(shape, ProviderSettings(intra_op_threads=1))
    assert copy.columns < shape.n and copy.columns % 16 == 0
    per_column = _weight_bytes(graph, shape.name) / shape.n
    assert copy.weight_bytes == pytest.approx(per_column * copy.columns)
    assert copy.weight_bytes <= 256 * 1024
    built = {a.name: onnx.helper.get_attribute_value(a) for a in copy.node.attribute}
    assert (copy.node.op_type, built) == (op_type, {**shape.attributes, **({"N": copy.columns} if "N" in built else {})})
    rate = copy.measure(batches=1, runs=3)
    assert math.isfinite(rate) and rate > 0
