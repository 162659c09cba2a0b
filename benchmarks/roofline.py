"""Benchmark (not a test): decode speed against the memory-bandwidth roofline, ours and genai.

A decode step reads every weight once (int4 MatMulNBits blocks and scales, float norms, one
embedding row) plus the KV cache so far, and writes next to nothing. With B bytes read per step
and a read bandwidth of W bytes/s no engine can decode faster than W / B tokens/s: the roofline.
Per round (interleaved, the order alternating) this measures

- W: the read bandwidth: the fastest of a few numpy reductions that read 256 MiB arrays once (one
  array per thread; one thread and one per core). Each kernel's rate is a lower bound on what the
  memory system gives: on a slow or busy core a reduction is bound by its arithmetic, not by memory
  (a float32 sum read 12 GB/s where a float64 dot read 20 on the same 2 cores), so the best of
  several is taken and named. A share over 100 % means even the best kernel was compute-bound
  and is flagged. A streaming copy is measured beside it and printed for reference only: its
  written bytes go out as non-temporal stores, so its read + write figure is a ceiling a
  read-only step cannot reach (~44 GB/s copy vs ~33 GB/s read on 2 quiet cores of this machine);
- B: bytes read per decode step, from the graph's initializers (+ KV at the mean past length);
- K: the second ceiling, the weight bytes/s of the model's heaviest weight kernel on an in-cache
  copy with our session's settings (kernel_ceiling.py): weights per step / K bounds decode speed
  too, for any engine running that kernel; the lower of the two ceilings is the one that binds;
- decode tok/s of this engine (as configured: huge pages on by default, harness/providers/huge_pages.py),
  of this engine on 4 KiB pages, of onnxruntime-genai as it loads itself, and of genai given the
  same huge-page advice after its load (so the engine-vs-engine ratio can be read like for like);

then prints medians and IQR per target, the share of the roofline each reaches (against the same
round's bandwidth), the share of the lower ceiling, and the per-round ratios to genai. numpy allocates its arrays on transparent huge
pages, so W is what the memory system gives a well-placed stream.

Meant for the memory-bound preset (``--model small``, built into the cache on first use); the
default tiny model is bound by per-call overhead instead and gets a low share by nature.

    python benchmarks/roofline.py [--model small] [--rounds 9] [--new-tokens 64] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.config import load_config, parse_override
from harness.model.default_model import resolve_model
from harness.model.folder import load_model_folder
from harness.providers.huge_pages import load_on_huge_pages, unavailable_reason
from harness.providers.session import threading_in_effect
from harness.targets.base import Request, TokenEvent
from harness.targets.engine import Engine
from kernel_ceiling import KernelCeiling, heaviest_kernel, initializer_bytes

STREAM_BYTES = 256 * 2**20
# Reductions that read each byte once with little arithmetic per byte (numpy/BLAS drop the GIL).
# Which is fastest depends on the CPU's SIMD units and how busy its cores are.
READ_KERNELS: dict[str, Callable[[np.ndarray], Any]] = {
    "float32 max": lambda a: a.max(),
    "uint64 max": lambda a: a.view(np.uint64).max(),
    "float64 dot": lambda a: np.dot(a.view(np.float64), a.view(np.float64)),  # one stream: x . x
}


def _threaded(threads: int, work: Callable[[int], None], nbytes: int, repeats: int) -> float:
    """Best bytes/s over ``repeats`` of ``work(i)`` in ``threads`` threads at once (numpy drops the GIL)."""
    best = 0.0
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)

        def run(index: int) -> None:
            barrier.wait()
            work(index)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        best = max(best, nbytes * threads / (time.perf_counter() - started))
    return best


class Bandwidth:
    """Read and copy bandwidth over arrays allocated once (their pages faulted in before timing)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.sources = [np.ones(STREAM_BYTES // 4, dtype=np.float32) for _ in range(threads)]
        self.targets = [np.ones_like(source) for source in self.sources]

    def read(self, repeats: int = 3) -> tuple[float, str]:
        """The best read rate over ``READ_KERNELS`` and thread counts, and the kernel that reached it."""
        def one(kernel: Callable[[np.ndarray], Any], threads: int) -> float:
            return _threaded(threads, lambda i: kernel(self.sources[i]), STREAM_BYTES, repeats)

        return max((max(one(kernel, 1), one(kernel, self.threads)), name) for name, kernel in READ_KERNELS.items())

    def copy(self, repeats: int = 3) -> float:
        """STREAM-style copy: read + write bytes counted."""
        def one(threads: int) -> float:
            return _threaded(threads, lambda i: np.copyto(self.targets[i], self.sources[i]), 2 * STREAM_BYTES, repeats)

        return max(one(1), one(self.threads))


def bytes_per_step(folder: Any, graph: Any, mean_past: float) -> dict[str, float]:
    """Bytes one decode step reads: weights (an embedding is read one row at a time) and the KV cache."""
    gathered = {node.input[0] for node in graph.node if node.op_type == "Gather"}
    rotary = {name for node in graph.node if node.op_type in ("GroupQueryAttention", "RotaryEmbedding")
              for name in node.input[-2:]}
    weights = embedding = 0.0
    for tensor in graph.initializer:
        size = initializer_bytes(tensor)
        if tensor.name in gathered:
            embedding += size / tensor.dims[0]  # one row per token
        elif tensor.name not in rotary:  # GQA reads one cos/sin row per position
            weights += size
    config = folder.config
    kv_item = 2 if "float16" in str(_kv_type(graph, config.names.past(0)[0])) else 4
    kv = 2 * config.num_layers * config.num_kv_heads * config.head_size * kv_item * mean_past
    return {"weights": weights, "embedding_row": embedding, "kv": kv, "total": weights + embedding + kv}


def _kv_type(graph: Any, name: str) -> int:
    return next(i.type.tensor_type.elem_type for i in graph.input if i.name == name)


def decode_rate(target: Any, request: Request) -> float:
    stamps = [e.t_ns for e in target.stream(request) if isinstance(e, TokenEvent)]
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9)


def _spread(values: list[float], digits: int = 2) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    warn = " NOISY" if (q3 - q1) > 0.10 * median else ""  # the legend under the header says what it means
    return f"median {median:7.{digits}f}  IQR {q1:7.{digits}f} .. {q3:7.{digits}f}{warn}"


def load_targets(model_dir: Path, settings: Any) -> dict[str, Any]:
    """Ours as configured, ours on 4 KiB pages, genai as it loads itself and genai on huge pages."""
    targets: dict[str, Any] = {"ours": Engine.load(model_dir, settings)}
    if settings.huge_pages and not unavailable_reason():
        targets["ours 4k"] = Engine.load(model_dir, dataclasses.replace(settings, huge_pages=False))
    try:
        from harness.targets.genai import GenaiTarget

        targets["genai"] = GenaiTarget(model_dir)
        if not unavailable_reason():
            targets["genai hp"], _ = load_on_huge_pages(lambda: GenaiTarget(model_dir))
    except Exception as error:  # genai not installed or refusing the folder: say so, measure ours alone
        print(f"genai not measured: {error}")
    return targets


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="model folder or preset (default: small)")
    parser.add_argument("--rounds", type=_at_least(2), default=9, help="2 or more: a spread needs two")
    parser.add_argument("--prompt-tokens", type=_at_least(3), default=64)
    parser.add_argument("--new-tokens", type=_at_least(2), default=64, help="2 or more: a rate needs two tokens")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="our engine's config overrides, e.g. provider.cpu.intra_op_num_threads=1")
    args = parser.parse_args()
    model_dir = resolve_model(args.model)
    settings = load_config(None, dict(parse_override(text) for text in args.overrides)).provider_settings("cpu")
    targets = load_targets(model_dir, settings)
    import onnx

    folder = load_model_folder(model_dir)
    graph = onnx.load(str(folder.onnx_path), load_external_data=False).graph  # initializers only, no weights
    step = bytes_per_step(folder, graph, args.prompt_tokens + args.new_tokens / 2)
    ceiling = kernel_ceiling(graph, settings, targets["ours"].session)
    prompt = tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(args.prompt_tokens - 3)] + [32001])
    request = Request(prompt_ids=prompt, max_new_tokens=args.new_tokens)
    cores = os.cpu_count() or 1
    bandwidth = Bandwidth(cores)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    reads: list[float] = []
    kernels: list[str] = []  # the read kernel that was fastest, per round
    copies: list[float] = []
    kernel_rates: list[float] = []  # the kernel ceiling's weight bytes/s, per round
    for target in targets.values():
        decode_rate(target, request)  # warm-up
    load_before = os.getloadavg()
    for round_index in range(args.rounds):
        read, kernel = bandwidth.read()
        reads.append(read)
        kernels.append(kernel)
        copies.append(bandwidth.copy())
        if ceiling is not None:
            kernel_rates.append(ceiling.measure())
        order = list(targets) if round_index % 2 == 0 else list(reversed(list(targets)))
        for name in order:
            rates[name].append(decode_rate(targets[name], request))
    _print(args, model_dir, step, rates, reads, kernels, copies, load_before, cores)
    if ceiling is not None:
        _print_kernel(step, ceiling, kernel_rates, rates, reads)
    return 0


def kernel_ceiling(graph: Any, settings: Any, ours: Any) -> KernelCeiling | None:
    """The in-cache copy of the model's heaviest kernel, on as many threads as our session has (the
    toy-model rule of providers/thread_default.py would give the small copy one)."""
    shape = heaviest_kernel(graph)
    if shape is None:
        print("kernel ceiling not measured: the graph has no MatMul or MatMulNBits with constant weights")
        return None
    threads = threading_in_effect(ours)["intra_op_num_threads"]
    return KernelCeiling(shape, dataclasses.replace(settings, intra_op_threads=threads))


def _print_kernel(step: dict[str, float], kernel: KernelCeiling, kernel_rates: list[float],
                  rates: dict[str, list[float]], reads: list[float]) -> None:
    """The second ceiling, and each target's share of whichever ceiling is lower in each round."""
    memory = [bw / step["total"] for bw in reads]  # tok/s allowed by the bandwidth, per round
    compute = [rate / step["weights"] for rate in kernel_rates]  # tok/s allowed by the kernel, per round
    node, copy = kernel.describe()
    print("  kernel ceiling (kernel_ceiling.py, our session's settings):")
    print(f"    {node}")
    print(f"    copied with {copy}")
    print(f"    weights read {_spread([rate / 1e9 for rate in kernel_rates])} GB/s"
          f" -> {statistics.median(compute):.1f} tok/s")
    lower = [min(m, c) for m, c in zip(memory, compute)]
    bound_by = sum(c < m for m, c in zip(memory, compute))
    print(f"    the lower ceiling: the kernel in {bound_by} of {len(lower)} rounds, memory in the others")
    for name, values in rates.items():
        shares = [100 * rate / ceiling for rate, ceiling in zip(values, lower)]
        print(f"  {name:<8} % of the lower ceiling {_spread(shares)}")
        if statistics.median(shares) > 100:  # weights that fit in cache are read faster than from memory
            print(f"  {'':<8} WARNING: over 100 %: the model's weights stayed in cache; the share means nothing")


def _print(args: argparse.Namespace, model_dir: Path, step: dict[str, float], rates: dict[str, list[float]],
           reads: list[float], kernels: list[str], copies: list[float], load_before: tuple[float, ...],
           cores: int) -> None:
    loads = " ".join(f"{x:.2f}" for x in load_before) + " -> " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"model {model_dir.name}; prompt {args.prompt_tokens}, {args.new_tokens} new tokens, {args.rounds} rounds;")
    print(f"  load average {loads}")
    print("  NOISY: IQR over 10 % of the median. Shares and ratios are per round (same round's bandwidth).")
    winners = ", ".join(f"{name} {kernels.count(name)}" for name in READ_KERNELS if name in kernels)
    print(f"  read bandwidth (best kernel, 1 or {cores} threads): {_spread([b / 1e9 for b in reads])} GB/s")
    print(f"    fastest read kernel, rounds won: {winners}")
    print(f"  copy bandwidth, read + write (reference only): {_spread([b / 1e9 for b in copies])} GB/s")
    print(f"  bytes per decode step: {step['total'] / 1e6:.1f} MB (weights {step['weights'] / 1e6:.1f},"
          f" embedding row {step['embedding_row'] / 1e3:.1f} kB, KV {step['kv'] / 1e6:.2f} MB)")
    print(f"  roofline (median read bandwidth / bytes per step): {statistics.median(reads) / step['total']:.1f} tok/s")
    for name, values in rates.items():
        shares = [100 * rate * step["total"] / bw for rate, bw in zip(values, reads)]
        print(f"  {name:<8} decode tok/s {_spread(values)}")
        print(f"  {'':<8} roofline %   {_spread(shares)}  (goal >= 60)")
        if statistics.median(shares) > 100:
            print(f"  {'':<8} WARNING: over 100 %: the engine read faster than every read kernel, which were")
            print(f"  {'':<8} bound by arithmetic, not memory, this run: the share means nothing here")
    for ours, theirs in (("ours", "genai"), ("ours", "genai hp"), ("ours 4k", "genai")):
        if ours in rates and theirs in rates:
            ratios = [a / b for a, b in zip(rates[ours], rates[theirs])]
            print(f"  {ours} / {theirs:<9} {_spread(ratios, 3)}  (goal >= 1.0)")
    if "ours 4k" in rates:
        ratios = [a / b for a, b in zip(rates["ours"], rates["ours 4k"])]
        print(f"  huge pages / 4k  {_spread(ratios, 3)}  (ours)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the figures print at the end: an interrupted run has none to show
        print("roofline.py: interrupted before the last round; nothing printed", file=sys.stderr)
        sys.exit(130)
