"""Benchmark (not a test): decode speed against the memory-bandwidth roofline, ours and genai.

A decode step reads every weight once (int4 MatMulNBits blocks and scales, float norms, one
embedding row) plus the KV cache so far. With B bytes per step and a memory bandwidth of W bytes/s
no engine can decode faster than W / B tokens/s: the roofline. This prints

- W: a streaming copy (numpy, 256 MiB arrays, read + write bytes counted, as STREAM's copy), the
  better of one thread and one thread per core, measured in every round beside the decodes;
- B: bytes read per decode step, from the graph's initializers (+ KV at the mean past length);
- decode tok/s of this engine and onnxruntime-genai, interleaved rounds, medians and IQR;
- the share of the roofline each reaches (against the same round's bandwidth), and ours / genai.

Meant for the memory-bound preset (``--model small``, built into the cache on first use); the
default tiny model is bound by per-call overhead instead and gets a low share by nature.

    python benchmarks/roofline.py [--model small] [--rounds 7] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from harness.config import load_config, parse_override
from harness.model.default_model import resolve_model
from harness.model.folder import load_model_folder
from harness.targets.base import Request, TokenEvent
from harness.targets.engine import Engine

COPY_BYTES = 256 * 2**20


def copy_bandwidth(threads: int, repeats: int = 5) -> list[float]:
    """Bytes per second of np.copyto over COPY_BYTES per thread (read + write counted)."""
    pairs = [(np.ones(COPY_BYTES // 8), np.empty(COPY_BYTES // 8)) for _ in range(threads)]
    results = []
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)

        def work(src: np.ndarray, dst: np.ndarray) -> None:
            barrier.wait()
            np.copyto(dst, src)  # releases the GIL: threads copy at once

        workers = [threading.Thread(target=work, args=pair) for pair in pairs]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        results.append(2 * COPY_BYTES * threads / (time.perf_counter() - started))
    return results


def bytes_per_step(model_dir: Path, mean_past: float) -> dict[str, float]:
    """Bytes one decode step reads: weights (an embedding is read one row at a time) and the KV cache."""
    import onnx

    folder = load_model_folder(model_dir)
    graph = onnx.load(str(folder.onnx_path), load_external_data=False).graph
    gathered = {node.input[0] for node in graph.node if node.op_type == "Gather"}
    rotary = {name for node in graph.node if node.op_type in ("GroupQueryAttention", "RotaryEmbedding")
              for name in node.input[-2:]}
    weights = embedding = 0.0
    for tensor in graph.initializer:
        size = _tensor_bytes(tensor)
        if tensor.name in gathered:
            embedding += size / tensor.dims[0]  # one row per token
        elif tensor.name not in rotary:  # GQA reads one cos/sin row per position
            weights += size
    config = folder.config
    kv_item = 2 if "float16" in str(_kv_type(graph, config.names.past(0)[0])) else 4
    kv = 2 * config.num_layers * config.num_kv_heads * config.head_size * kv_item * mean_past
    return {"weights": weights, "embedding_row": embedding, "kv": kv, "total": weights + embedding + kv}


def _tensor_bytes(tensor) -> int:
    import onnx

    for entry in tensor.external_data:
        if entry.key == "length":
            return int(entry.value)
    item = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return int(np.prod(tensor.dims)) * item if tensor.dims else item


def _kv_type(graph, name: str) -> int:
    return next(i.type.tensor_type.elem_type for i in graph.input if i.name == name)


def decode_rate(target, request: Request) -> float:
    stamps = [e.t_ns for e in target.stream(request) if isinstance(e, TokenEvent)]
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9)


def _spread(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    warn = " NOISY (IQR > 10 %)" if (q3 - q1) > 0.10 * median else ""
    return f"median {median:7.2f}  IQR {q1:7.2f} .. {q3:7.2f}{warn}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="model folder or preset (default: small)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="our engine's config overrides, e.g. provider.cpu.intra_op_num_threads=1")
    args = parser.parse_args()
    model_dir = resolve_model(args.model)
    settings = load_config(None, dict(parse_override(text) for text in args.overrides)).provider_settings("cpu")
    targets = {"ours": Engine.load(model_dir, settings)}
    try:
        from harness.targets.genai import GenaiTarget

        targets["genai"] = GenaiTarget(model_dir)
    except Exception as error:  # genai not installed or refusing the folder: say so, measure ours alone
        print(f"genai not measured: {error}")
    prompt = tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(args.prompt_tokens - 3)] + [32001])
    request = Request(prompt_ids=prompt, max_new_tokens=args.new_tokens)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    bandwidth: list[float] = []  # per round: the better of one copying thread and one per core
    for target in targets.values():
        decode_rate(target, request)  # warm-up
    cores = os.cpu_count() or 1
    for round_index in range(args.rounds):
        bandwidth.append(max(copy_bandwidth(1, repeats=2) + copy_bandwidth(cores, repeats=2)))
        for name in targets if round_index % 2 == 0 else reversed(list(targets)):
            rates[name].append(decode_rate(targets[name], request))
    step = bytes_per_step(model_dir, args.prompt_tokens + args.new_tokens / 2)
    print(f"model {model_dir.name}; prompt {args.prompt_tokens}, {args.new_tokens} new tokens, {args.rounds} rounds;"
          f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  streaming copy (best of 1 and {cores} threads, per round): {_spread([b / 1e9 for b in bandwidth])} GB/s")
    print(f"  bytes per decode step: {step['total'] / 1e6:.1f} MB (weights {step['weights'] / 1e6:.1f},"
          f" embedding row {step['embedding_row'] / 1e3:.1f} kB, KV {step['kv'] / 1e6:.2f} MB)")
    print(f"  roofline (median bandwidth / bytes per step): {statistics.median(bandwidth) / step['total']:.1f} tok/s")
    for name, values in rates.items():
        shares = [100 * rate * step["total"] / bw for rate, bw in zip(values, bandwidth)]
        print(f"  {name:<5} decode tok/s {_spread(values)}")
        print(f"  {'':<5} roofline %   {_spread(shares)}  (same-round bandwidth; goal >= 60)")
    if "genai" in rates:
        ratios = [a / b for a, b in zip(rates["ours"], rates["genai"])]
        print(f"  ours / genai  {_spread(ratios)}  (per round; goal >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
