"""How accurately the HTTP target measures a stream: errors against the scripted server's own log.

    python benchmarks/http_calibration.py [--rounds 3] [--tokens 20]

The scripted server (tests/scripted_server.py, a child process) streams a role-only chunk, first
content after 50 ms, then a token every 10 ms in chunks of 1, 1 and 3 tokens, and a usage chunk.
For concurrency 1, 16 and 64 this prints |measured - true| at p50 and p99 in milliseconds for TTFT,
per-token ITL, TPOT and E2E, where "true" is (a) when each chunk reached the client's socket (the
client's measurement error: on Linux the kernel's transmit stamp of the chunk, elsewhere the nearest
point between just before and just after the server's write call; tests/test_http_calibration.py
asserts <= 1 ms p50, <= 3 ms p99) and (b) when the script said it was due (adds the server's own
lateness on a busy machine). "sent" leaves out figures resting on chunks whose stamp the record
flags as an upper bound (merged with a later packet, or not stamped by the kernel); "sent-all"
keeps them. Then the client's CPU time per request, the share of one core the client used, and the
share of content chunks flagged ("merged%").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from http_calibration import METRICS, chunk_errors, errors, percentiles, run_calibration, scripted_server  # noqa: E402

from harness.targets.http import HttpTarget  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="requests per worker")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per answer")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; errors in ms, |measured - true|")
    print(f"{'conc':>4} {'truth':<8} " + " ".join(f"{m + ' p50':>9} {m + ' p99':>9}" for m in METRICS)
          + f" {'cpu/req ms':>10} {'core %':>7} {'merged%':>7}")
    with scripted_server() as server:
        for concurrency in (1, 16, 64):
            target = HttpTarget(server.url)
            run_calibration(target, concurrency, concurrency, args.tokens, tag="warm-")  # connections, imports
            records = run_calibration(target, concurrency, concurrency * args.rounds, args.tokens)
            target.close()
            entries = server.log_entries()
            wall = (max(r.end_ns for r in records) - min(r.submit_ns for r in records)) / 1e9
            cpu = [r.details["client_cpu_s"] + r.details["client_post_cpu_s"] for r in records]
            merged = [flag for _, flag in chunk_errors(records, entries)]
            for truth, label, trusted in (("sent", "sent", True), ("sent", "sent-all", False),
                                          ("nominal_ns", "script", False)):
                measured = errors(records, entries, truth, trusted_only=trusted)
                cells = " ".join(f"{p50:9.3f} {p99:9.3f}" for p50, p99 in (percentiles(measured[m]) for m in METRICS))
                tail = (f" {1e3 * sum(cpu) / len(cpu):10.3f} {100 * sum(cpu) / wall:7.1f} {100 * sum(merged) / len(merged):7.1f}"
                        if trusted else "")
                print(f"{concurrency:>4} {label:<8} {cells}{tail}")


if __name__ == "__main__":
    main()
