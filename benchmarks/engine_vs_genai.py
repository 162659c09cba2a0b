"""Benchmark (not a test): our engine against onnxruntime-genai on the same tiny model, interleaved.

For each precision both engines load the same folder; after warm-up, rounds alternate which engine
goes first, so drift on a shared machine hits both alike. Prints the median and spread of decode
tok/s and TTFT per engine, and the ratios (ours / genai) from the medians of one run.

    python benchmarks/engine_vs_genai.py [--rounds 21] [--prompt-tokens 64] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from harness.measure.metrics import measure_request
from harness.model.default_model import default_model_dir
from harness.targets.engine import Engine
from harness.targets.base import Request
from harness.targets.genai import GenaiTarget


def _prompt(length: int) -> tuple[int, ...]:
    body = [(i * 7919) % 30000 + 300 for i in range(length - 3)]
    return tuple([1, 32010, *body, 32001])


def _measure(target, request: Request) -> tuple[float, float | None]:
    record = measure_request(
        target, request, run_id="bench", case_id="bench", test="bench", prompt_length=len(request.prompt_ids),
        concurrency=1, request_index=0, worker=0, cold=False,
    )
    if not record.ok:
        sys.exit(f"{target.name} failed: {record.error}")
    return record.ttft_s, record.decode_tok_s


def _spread(values: list[float]) -> str:
    quartiles = statistics.quantiles(values, n=4)
    return f"median {statistics.median(values):9.2f}  IQR {quartiles[0]:9.2f} .. {quartiles[2]:9.2f}"


def bench(precision: str, rounds: int, prompt_tokens: int, new_tokens: int) -> dict[str, float]:
    model_dir = default_model_dir(precision=precision, layout="cpu")
    targets = {"ours": Engine.load(model_dir), "genai": GenaiTarget(model_dir)}
    request = Request(prompt_ids=_prompt(prompt_tokens), max_new_tokens=new_tokens)
    samples = {name: {"ttft_ms": [], "decode_tok_s": []} for name in targets}
    order = list(targets)
    for _ in range(3):  # warm-up, not recorded
        for target in targets.values():
            _measure(target, request)
    for round_index in range(rounds):
        for name in order if round_index % 2 == 0 else reversed(order):
            ttft_s, decode = _measure(targets[name], request)
            samples[name]["ttft_ms"].append(ttft_s * 1000)
            if decode is not None:
                samples[name]["decode_tok_s"].append(decode)
    print(f"\n== {precision}: prompt {prompt_tokens} tokens, {new_tokens} new tokens, {rounds} interleaved rounds")
    for name, metric in samples.items():
        print(f"  {name:5s} decode tok/s {_spread(metric['decode_tok_s'])}")
        print(f"  {name:5s} TTFT ms      {_spread(metric['ttft_ms'])}")
    ratios = {
        "decode_ratio": statistics.median(samples["ours"]["decode_tok_s"])
        / statistics.median(samples["genai"]["decode_tok_s"]),
        "ttft_ratio": statistics.median(samples["ours"]["ttft_ms"]) / statistics.median(samples["genai"]["ttft_ms"]),
    }
    print(
        f"  ratio ours/genai: decode tok/s {ratios['decode_ratio']:.2f}x (target >= 1.0, aim 1.2)"
        f" | TTFT {ratios['ttft_ratio']:.2f}x (target <= 1.0)"
    )
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--precision", nargs="+", default=["fp32", "int4"])
    args = parser.parse_args()
    for precision in args.precision:
        bench(precision, args.rounds, args.prompt_tokens, args.new_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
