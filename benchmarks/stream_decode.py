"""Benchmark (not a test): microseconds per generated token spent turning ids into streamed text.

"before" is the decoder the engine used until the DecodeStream rewrite: two ``Tokenizer.decode``
calls per token on a short window (and wrong on invalid byte runs). "after" is
``Phi3Tokenizer.stream_decoder()``: one ``DecodeStream.step`` per text token, a dict lookup for
special tokens, a few bytes decoded in Python for byte-fallback tokens. Both decode the same id
sequences (64 tokens each, like a generated reply), rounds alternate which goes first, and the
per-token figure is (time for all sequences, flush included) / tokens. Prints medians and IQR.

    python benchmarks/stream_decode.py [--rounds 21] [--sequences 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Callable

from harness.model.default_model import default_model_dir
from harness.model.folder import load_model_folder
from harness.model.tokenizer import Phi3Tokenizer

TOKENS_PER_SEQUENCE = 64


class TwoDecodeBaseline:
    """The previous algorithm, kept here only to measure against: decode prefix and window per token."""

    def __init__(self, tokenizer: Phi3Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self._emitted: list[str] = []

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        window_text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        if len(window_text) <= len(prefix_text) or window_text.endswith("\ufffd"):
            return ""
        delta = window_text[len(prefix_text) :]
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        self._emitted.append(delta)
        return delta

    def flush(self) -> str:
        full = self._tokenizer.decode(self._ids)
        done = "".join(self._emitted)
        return full[len(done) :] if full.startswith(done) else ""


def sequences(count: int, byte_share: float, seed: int) -> list[list[int]]:
    """Word ids as the tiny model generates them, with ``byte_share`` of byte-fallback tokens."""
    rng = random.Random(seed)
    return [
        [rng.randrange(3, 259) if rng.random() < byte_share else rng.randrange(259, 32000)
         for _ in range(TOKENS_PER_SEQUENCE)]
        for _ in range(count)
    ]


def per_token_us(make: Callable[[], object], batch: list[list[int]]) -> float:
    started = time.perf_counter()
    for ids in batch:
        decoder = make()
        for token_id in ids:
            decoder.add(token_id)
        decoder.flush()
    return (time.perf_counter() - started) / (len(batch) * TOKENS_PER_SEQUENCE) * 1e6


def spread(values: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4)
    median = statistics.median(values)
    warn = "  (unstable: IQR > 10 % of median)" if q3 - q1 > 0.1 * median else ""
    return f"median {median:6.2f} us  IQR {q1:6.2f} .. {q3:6.2f}{warn}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--sequences", type=int, default=200)
    args = parser.parse_args()
    tokenizer = Phi3Tokenizer(load_model_folder(default_model_dir()).tokenizer_path)
    makers = {"before": lambda: TwoDecodeBaseline(tokenizer), "after": tokenizer.stream_decoder}
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for label, byte_share in (("words only", 0.0), ("25 % byte tokens", 0.25)):
        batch = sequences(args.sequences, byte_share, seed=1)
        samples: dict[str, list[float]] = {name: [] for name in makers}
        for name, make in makers.items():
            per_token_us(make, batch[:20])  # warm-up
        for round_index in range(args.rounds):
            order = list(makers) if round_index % 2 == 0 else list(reversed(makers))
            for name in order:
                samples[name].append(per_token_us(makers[name], batch))
        print(f"\n== {label}: {args.sequences} x {TOKENS_PER_SEQUENCE} tokens, {args.rounds} interleaved rounds")
        for name, values in samples.items():
            print(f"  {name:6s} per token {spread(values)}")
        ratio = statistics.median(samples["after"]) / statistics.median(samples["before"])
        print(f"  after / before: {ratio:.2f}")
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
