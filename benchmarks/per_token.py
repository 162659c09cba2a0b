"""Benchmark (not a test): microseconds per generated token in the engine, split into ORT Run and Python.

The gap between two tokens' timestamps is everything the decode loop does for one token; time
inside ``session.run_with_iobinding`` is ONNX Runtime's; the rest is Python (sampling, text
decoding, bindings, bookkeeping). ``--compare MODULE`` loads a second Engine class (e.g. a copy of
an older targets/engine.py) and interleaves the two, so both see the same machine.

    python benchmarks/per_token.py [--new-tokens 128] [--rounds 30] [--compare /path/to/engine_copy.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from typing import Any

from harness.model.default_model import default_model_dir
from harness.targets.base import Request, TokenEvent
from harness.targets.engine import Engine


def _load_class(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("engine_under_comparison", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.Engine


class _RunTimer:
    """Wraps one session's run_with_iobinding and keeps the time of each call."""

    def __init__(self, session: Any) -> None:
        self.calls_ns: list[int] = []
        self._run = session.run_with_iobinding
        session.run_with_iobinding = self

    def __call__(self, binding: Any, *args: Any) -> None:
        started = time.perf_counter_ns()
        self._run(binding, *args)
        self.calls_ns.append(time.perf_counter_ns() - started)


def _one_request(engine: Any, timer: _RunTimer, request: Request) -> tuple[float, float, float]:
    """(median token gap us, median decode Run us, TTFT us) of one request."""
    timer.calls_ns.clear()
    submit = time.perf_counter_ns()
    stamps = [e.t_ns for e in engine.stream(request) if isinstance(e, TokenEvent)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    runs = timer.calls_ns[-len(gaps):]  # the decode steps' Runs (prefill may take several)
    return statistics.median(gaps) / 1e3, statistics.median(runs) / 1e3, (stamps[0] - submit) / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--compare", help="path of another engine.py whose Engine is measured alongside")
    args = parser.parse_args()
    model_dir = default_model_dir(precision=args.precision)
    engines = {"current": Engine.load(model_dir)}
    if args.compare:
        engines["compared"] = _load_class(args.compare).load(model_dir)
    timers = {name: _RunTimer(engine.session) for name, engine in engines.items()}
    prompt = tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(args.prompt_tokens - 3)] + [32001])
    request = Request(prompt_ids=prompt, max_new_tokens=args.new_tokens)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in engines}
    for round_index in range(args.rounds + 3):
        order = list(engines) if round_index % 2 == 0 else list(reversed(engines))
        for name in order:
            sample = _one_request(engines[name], timers[name], request)
            if round_index >= 3:  # the first rounds warm up
                results[name].append(sample)
    print(f"{args.precision}, prompt {args.prompt_tokens}, {args.new_tokens} new tokens, {args.rounds} rounds;"
          f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  {'engine':<9} {'us/token':>9} {'ORT Run':>9} {'Python':>8} {'TTFT us':>9}   (medians over rounds)")
    for name, samples in results.items():
        gap, run, ttft = (statistics.median(column) for column in zip(*samples))
        print(f"  {name:<9} {gap:>9.1f} {run:>9.1f} {gap - run:>8.1f} {ttft:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
