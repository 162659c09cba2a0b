"""The second ceiling of a roofline: how fast the model's heaviest weight kernel runs when memory is no limit.

roofline.py divides the read bandwidth by the bytes a decode step reads: the most any engine could
decode if every kernel streamed its weights as fast as the memory system delivers them. A kernel
can be slower than that on its own: int4 MatMulNBits unpacks nibbles and scales each block before
it multiplies. Where the kernel's in-cache rate is below the read bandwidth, decoding is bound by
that arithmetic for every engine that runs the kernel, and the memory roofline promises more than
any engine can reach; where it is above, the memory roofline is the one that binds.

This builds a one-node graph with the heaviest MatMulNBits (or MatMul) of the model: the same K,
bits, block size, accuracy level and weight types, but N cut so its weights (``IN_CACHE_BYTES``)
stay in the last-level cache between Runs, opens it with the engine's own session settings
(threads, spinning, huge pages) through the harness's create_session, and runs it on one row of
activations. Weight bytes per second at the best of a few batches is the kernel's ceiling;
weights per step / that rate bounds decode speed from above like the bandwidth does.

The size is a trade-off, measured on this project's 2-core host with the small preset's lm_head
(int4, K=3072, accuracy level 4, two threads, spinning off): 1 MiB of weights read 22 GB/s, 2 MiB
33, 8 MiB 51-53, 16 MiB 51-58. A small copy measures the Run's thread wake-ups more than the
kernel; one near a real node's size (17-62 MB on that preset) would come from memory. 8 MiB is
half of a common laptop or server last-level cache.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.providers.session import ProviderSettings, create_session

IN_CACHE_BYTES = 8 * 2**20  # the copy's weights: see the module docstring
_WEIGHT_OPS = ("MatMulNBits", "MatMul")


@dataclass(frozen=True)
class KernelShape:
    """The heaviest weight-reading node of a graph, as a template for the in-cache copy."""

    op_type: str
    name: str
    attributes: dict[str, Any]
    weights: list[tuple[str, tuple[int, ...], int]]  # (input name, dims, onnx data type) per constant input
    activation_type: int  # onnx data type of the activations (input 0)
    n: int  # output columns of the original node
    k: int


def heaviest_kernel(graph: Any) -> KernelShape | None:
    """The MatMulNBits or MatMul node whose constant inputs hold the most bytes (None: no such node)."""
    import onnx

    initializers = {tensor.name: tensor for tensor in graph.initializer}
    best, best_bytes = None, 0
    for node in graph.node:
        if node.op_type not in _WEIGHT_OPS:
            continue
        constants = [initializers[name] for name in node.input[1:] if name in initializers]
        if not constants:
            continue
        size = sum(initializer_bytes(t) for t in constants)
        if size > best_bytes:
            best, best_bytes = (node, constants), size
    if best is None:
        return None
    node, constants = best
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    scale_type = constants[1].data_type if len(constants) > 1 else constants[0].data_type
    if node.op_type == "MatMulNBits":
        n, k = int(attributes["N"]), int(attributes["K"])
    else:
        k, n = int(constants[0].dims[0]), int(constants[0].dims[-1])
    weights = [(name, tuple(initializers[name].dims), initializers[name].data_type)
               for name in node.input[1:] if name in initializers]
    return KernelShape(node.op_type, node.name, attributes, weights, scale_type, n, k)


def initializer_bytes(tensor: Any) -> int:
    """Bytes of an initializer as stored (external data counted by its recorded length)."""
    import onnx

    for entry in tensor.external_data:
        if entry.key == "length":
            return int(entry.value)
    item = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return int(np.prod(tensor.dims)) * item if tensor.dims else item


def _cut_dims(dims: tuple[int, ...], op_type: str, n: int, columns: int) -> tuple[int, ...]:
    """A weight input's shape with ``columns`` output columns instead of ``n``."""
    if op_type == "MatMul":
        return (*dims[:-1], columns)  # B is [K, N]
    if len(dims) == 1:  # flattened per-column data (scales, zero points): N * blocks entries
        return (dims[0] // n * columns,)
    return (columns, *dims[1:])  # [N, blocks, blob] or [N, blocks]


class KernelCeiling:
    """The in-cache copy of a model's heaviest kernel, opened once; ``measure()`` gives weight bytes/s."""

    def __init__(self, shape: KernelShape, settings: ProviderSettings) -> None:
        import onnx
        from onnx import helper

        self.shape = shape
        self.threads = settings.intra_op_threads
        per_column = sum(_column_bytes(dims, dtype, shape) for _, dims, dtype in shape.weights)
        self.columns = max(16, min(shape.n, int(IN_CACHE_BYTES / per_column)) // 16 * 16)
        self.weight_bytes = per_column * self.columns
        rng = np.random.default_rng(0)
        initializers, inputs = [], ["A"]
        for index, (_, dims, dtype) in enumerate(shape.weights):
            cut = _cut_dims(dims, shape.op_type, shape.n, self.columns)
            np_type = helper.tensor_dtype_to_np_dtype(dtype)
            if np.issubdtype(np_type, np.integer):  # packed nibbles, zero points: any bytes are valid
                values = rng.integers(0, 256, size=cut, dtype=np.uint8).astype(np_type)
            else:  # scales or float weights: small finite values (no denormals, no overflow)
                values = (rng.random(cut, dtype=np.float32) * 0.02 + 0.001).astype(np_type)
            name = f"W{index}"
            initializers.append(onnx.numpy_helper.from_array(values, name))
            inputs.append(name)
        attributes = dict(shape.attributes)
        if shape.op_type == "MatMulNBits":
            attributes["N"] = self.columns
        domain = "com.microsoft" if shape.op_type == "MatMulNBits" else ""
        node = helper.make_node(shape.op_type, inputs, ["Y"], domain=domain, **attributes)
        self.node = node  # what was built, for the tests
        graph = helper.make_graph(
            [node], "kernel_ceiling",
            [helper.make_tensor_value_info("A", shape.activation_type, [1, shape.k])],
            [helper.make_tensor_value_info("Y", shape.activation_type, [1, self.columns])],
            initializers,
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        with tempfile.TemporaryDirectory(prefix="phi3-harness-kernel-") as folder:
            path = Path(folder) / "kernel.onnx"
            onnx.save(model, str(path))
            self._session = create_session(path, settings)
        activation_np = helper.tensor_dtype_to_np_dtype(shape.activation_type)
        self._feed = {"A": rng.random((1, shape.k), dtype=np.float32).astype(activation_np)}
        self._run = self._session.run
        for _ in range(20):  # warm-up: prepacking, thread pool, caches
            self._run(None, self._feed)

    def measure(self, batches: int = 5, runs: int = 200) -> float:
        """Weight bytes per second: the best of ``batches`` batches of ``runs`` Runs."""
        best = float("inf")
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(runs):
                self._run(None, self._feed)
            best = min(best, (time.perf_counter() - started) / runs)
        return self.weight_bytes / best

    def describe(self) -> list[str]:
        """Two lines: which node was copied, and how."""
        a = self.shape.attributes
        detail = (f"K={self.shape.k}, {a.get('bits', 4)} bits, block {a.get('block_size')}, accuracy level "
                  f"{a.get('accuracy_level', 0)}" if self.shape.op_type == "MatMulNBits" else f"K={self.shape.k}")
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return [f"{self.shape.name} ({detail})",
                f"N {self.shape.n} -> {self.columns}: {self.weight_bytes / 2**20:.2f} MiB of weights in cache, {threads}"]


def _column_bytes(dims: tuple[int, ...], dtype: int, shape: KernelShape) -> float:
    from onnx import helper

    item = helper.tensor_dtype_to_np_dtype(dtype).itemsize
    return float(np.prod(dims)) * item / shape.n
