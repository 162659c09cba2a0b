"""Start the scripted server, run the HTTP target against it, compare what was measured with the script.

Shared by tests/test_http_calibration.py (asserts the tolerances) and benchmarks/http_calibration.py
(prints the errors). The truth for each request is the server's own log: when each content chunk
was written to the socket (``content_ns``, same monotonic clock) and how many tokens it held; the
nominal script (``nominal_ns``: when each chunk was due) is reported beside it, because on a busy
machine the server itself runs late and that is not the client's measurement error.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.measure.load import CaseInfo, run_closed_loop
from harness.measure.results import RequestRecord
from harness.targets.base import Request
from harness.targets.http import HttpTarget

SERVER = Path(__file__).with_name("scripted_server.py")
METRICS = ("ttft", "itl", "tpot", "e2e")


@dataclass
class ServerHandle:
    url: str
    log: Path
    process: subprocess.Popen

    def log_entries(self) -> dict[str, dict]:
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return {entry["request_id"]: entry for entry in entries}


@contextlib.contextmanager
def scripted_server(*args: str) -> Iterator[ServerHandle]:
    """A scripted server child process on 127.0.0.1, port 0; stopped (stdin closed) on exit."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.jsonl"
        process = subprocess.Popen([sys.executable, str(SERVER), "--log", str(log), *args],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line.startswith("PORT "):
                raise RuntimeError(f"scripted server did not start: {line!r}")
            yield ServerHandle(f"http://127.0.0.1:{int(line.split()[1])}", log, process)
        finally:
            process.stdin.close()  # type: ignore[union-attr]
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_calibration(target: HttpTarget, concurrency: int, total: int, max_new_tokens: int = 10,
                    tag: str = "") -> list[RequestRecord]:
    requests = [Request.chat("calibrate", max_new_tokens=max_new_tokens, request_id=f"{tag}c{concurrency}-{i}")
                for i in range(total)]
    result = run_closed_loop(target, lambda i: requests[i], CaseInfo("calibration", f"c{concurrency}", "calibration", 1),
                             concurrency=concurrency, total_requests=total)
    return result.records


def spread(chunk_ns: list[int], tokens: list[int]) -> list[int]:
    """Token times implied by chunk times, by the target's rule (first chunk: all at its arrival)."""
    times: list[int] = []
    previous = None
    for t_ns, count in zip(chunk_ns, tokens):
        for k in range(1, count + 1):
            times.append(t_ns if previous is None else previous + (t_ns - previous) * k // count)
        previous = t_ns
    return times


def errors(records: list[RequestRecord], entries: dict[str, dict], truth: str = "content_ns",
           tag: str = "") -> dict[str, list[float]]:
    """Signed errors in seconds (measured - truth) per metric; ``truth`` = content_ns | nominal_ns."""
    out: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for record in records:
        assert record.ok, f"{record.error_kind}: {record.error}"
        entry = entries[f"{tag}{record.case_id}-{record.request_index}"]
        true_ns = spread(entry[truth], entry["content_tokens"])
        measured = record.token_ns
        assert len(measured) == len(true_ns), f"{len(measured)} tokens measured, {len(true_ns)} sent"
        out["ttft"].append((measured[0] - true_ns[0]) / 1e9)
        out["e2e"].append((measured[-1] - true_ns[-1]) / 1e9)
        out["itl"].extend(((b - a) - (d - c)) / 1e9 for a, b, c, d in zip(measured, measured[1:], true_ns, true_ns[1:]))
        out["tpot"].append(record.tpot_s - (true_ns[-1] - true_ns[0]) / 1e9 / (len(true_ns) - 1))
    return out


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of the absolute errors, in milliseconds."""
    data = np.abs(np.array(values, dtype=float)) * 1e3
    return float(np.percentile(data, 50)), float(np.percentile(data, 99))
