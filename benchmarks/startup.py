"""Benchmark (not a test): whole-command wall time and peak memory of `generate` vs the engine-only floor.

Runs pairs of (``phi3-harness generate PROMPT --max-new-tokens N``, ``benchmarks/engine_only.py``),
alternating which goes first, each a fresh process; per pair the ratio of wall times. Prints the
median and IQR of each and of the ratio, and each command's peak RSS (from wait4). Goal: ratio <= 1.2.

    python benchmarks/startup.py [--pairs 20] [--new-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _timed(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one command run to completion."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {child.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss * 1024


def _spread(values: list[float], scale: float = 1.0, unit: str = "") -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    iqr_share = (q3 - q1) / median if median else 0.0
    warn = "  (IQR > 10 % of median: noisy)" if iqr_share > 0.10 else ""
    return f"median {median * scale:7.3f}{unit}  IQR {q1 * scale:7.3f} .. {q3 * scale:7.3f}{warn}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--prompt", default="Hello")
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    commands = {
        "generate": [sys.executable, "-m", "harness", "generate", args.prompt, "--max-new-tokens", str(args.new_tokens)],
        "engine-only": [sys.executable, str(HERE / "engine_only.py"), args.prompt, str(args.new_tokens)],
    }
    for command in commands.values():  # warm the page cache and build the model once
        _timed(command)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    for pair in range(args.pairs):
        for name in commands if pair % 2 == 0 else reversed(list(commands)):
            wall, peak = _timed(commands[name])
            walls[name].append(wall)
            peaks[name].append(peak)
    ratios = [g / e for g, e in zip(walls["generate"], walls["engine-only"])]
    print(f"{args.pairs} pairs, {args.new_tokens} new tokens; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in commands:
        print(f"  {name:<12} wall {_spread(walls[name], unit=' s')}")
        print(f"  {name:<12} peak RSS median {statistics.median(peaks[name]) / 2**20:6.1f} MiB")
    print(f"  ratio generate / engine-only, per pair (goal <= 1.2):\n  {'':<12} {_spread(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
