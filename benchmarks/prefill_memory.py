"""Benchmark (not a test): process memory of one long prompt, each engine in a fresh process.

For each setting a child process loads the tiny model, runs one greedy request with a prompt of
``--prompt-tokens`` tokens, and reports its RSS after load, its peak RSS (``ru_maxrss``: the whole
life of the process, load included) and its RSS after the request (what stays). The settings: our
engine with chunked prefill (the default), our engine with the whole prompt in one Run, and
onnxruntime-genai. The greedy tokens of all three are printed side by side: they must agree.

    python benchmarks/prefill_memory.py [--prompt-tokens 3900] [--new-tokens 8] [--precision fp32]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

GIB = 1024**3
SETTINGS = {"ours (chunked)": ("engine", None), "ours (one Run)": ("engine", 0), "genai": ("genai", None)}


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(kind: str, chunk: int | None, precision: str, prompt_tokens: int, new_tokens: int) -> dict:
    from harness.model.default_model import default_model_dir
    from harness.targets.base import Request, TokenEvent

    model_dir = default_model_dir(precision=precision)
    if kind == "engine":
        from harness.targets.engine import Engine

        target = Engine.load(model_dir, prefill_chunk=chunk)
    else:
        from harness.targets.genai import GenaiTarget

        target = GenaiTarget(model_dir)
    gc.collect()
    loaded = _rss()
    prompt = tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(prompt_tokens - 3)] + [32001])
    started = time.perf_counter()
    events = list(target.stream(Request(prompt_ids=prompt, max_new_tokens=new_tokens)))
    tokens = [e.token_id for e in events if isinstance(e, TokenEvent)]
    wall = time.perf_counter() - started
    gc.collect()
    return {"loaded": loaded, "peak": _peak(), "after": _rss(), "tokens": tokens, "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=3900)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        chunk = None if args.child[1] == "none" else int(args.child[1])
        print(json.dumps(child(args.child[0], chunk, args.precision, args.prompt_tokens, args.new_tokens)))
        return 0
    print(f"prompt {args.prompt_tokens} tokens, {args.new_tokens} new, {args.precision}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  {'setting':<16} {'after load':>11} {'peak':>9} {'after request':>14} {'wall s':>7}  greedy tokens")
    first: list[int] | None = None  # the first setting's tokens: every other row says whether it agrees
    for label, (kind, chunk) in SETTINGS.items():
        command = [sys.executable, __file__, "--child", kind, "none" if chunk is None else str(chunk),
                   "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens),
                   "--precision", args.precision]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            print(f"  {label:<16} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        first = r["tokens"] if first is None else first
        same = "listed below" if r["tokens"] is first else ("same" if r["tokens"] == first else f"DIFFER: {r['tokens']}")
        print(f"  {label:<16} {r['loaded'] / GIB:>9.3f} G {r['peak'] / GIB:>7.3f} G {r['after'] / GIB:>12.3f} G"
              f" {r['wall_s']:>7.2f}  {same}")
    if first is not None:
        print(f"  greedy tokens: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
