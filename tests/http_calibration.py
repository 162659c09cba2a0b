"""Start the scripted server, run the HTTP target against it, compare what was measured with the script.

Shared by tests/test_http_calibration.py (asserts the tolerances) and benchmarks/http_calibration.py
(prints the errors). The truth for each request is the server's own log: when the kernel sent each
content chunk (``tx_ns``, Linux), else when it was written to the socket (between ``before_ns`` and
``content_ns``, same monotonic clock), and how many tokens it held; the nominal script
(``nominal_ns``: when each chunk was due) is reported beside it, because on a busy machine the
server itself runs late and that is not the client's measurement error.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

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

    def log_entries(self, wanted: Iterable[str] = (), timeout_s: float = 5.0) -> dict[str, dict]:
        """The server's log by request id; waits (bounded) for the ``wanted`` ids: the server writes
        a request's line after its last byte, so a client can finish before the line is there."""
        wanted, deadline = set(wanted), time.monotonic() + timeout_s
        while True:
            entries = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
            by_id = {entry["request_id"]: entry for entry in entries}
            if wanted <= set(by_id) or time.monotonic() > deadline:
                return by_id
            time.sleep(0.01)


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


def sent_ns(entry: dict, measured_chunk_ns: list[int]) -> list[int]:
    """When each chunk reached the client's socket: the kernel's transmit stamp where the server has one
    (Linux, ``tx_ns``: on loopback, the moment the bytes joined the client's receive queue); else the point
    of [before write, after write] nearest the measured arrival (a server preempted around its write call
    knows no better; TCP holding a written segment back is not seen there)."""
    tx = entry.get("tx_ns") or [None] * len(measured_chunk_ns)
    return [sent if sent is not None else min(max(t, lo), hi)
            for t, lo, hi, sent in zip(measured_chunk_ns, entry["before_ns"], entry["content_ns"], tx)]


def errors(records: list[RequestRecord], entries: dict[str, dict], truth: str = "sent", tag: str = "",
           trusted_only: bool = False) -> dict[str, list[float]]:
    """Signed errors in seconds (measured - truth) per metric; ``truth``: "sent" (the server's
    write) or "nominal_ns" (when the script said the chunk was due). ``trusted_only`` leaves out
    figures that depend on a chunk whose stamp the record flags as an upper bound (``merged_with_next``,
    ``user_stamped``)."""
    out: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for record in records:
        assert record.ok, f"{record.error_kind}: {record.error}"
        entry = entries[f"{tag}{record.case_id}-{record.request_index}"]
        chunk_ns = sent_ns(entry, record.details["content_chunk_ns"]) if truth == "sent" else entry[truth]
        true_ns = spread(chunk_ns, entry["content_tokens"])
        measured = record.token_ns
        assert len(measured) == len(true_ns), f"{len(measured)} tokens measured, {len(true_ns)} sent"
        merged = flagged(record) if trusted_only else set()
        owner = [chunk for chunk, count in enumerate(entry["content_tokens"]) for _ in range(count)]

        def trusted(*tokens: int) -> bool:  # a token's time rests on its chunk's stamp and the one before
            return not any({owner[t], owner[t] - 1} & merged for t in tokens)

        if trusted(0):
            out["ttft"].append((measured[0] - true_ns[0]) / 1e9)
        if trusted(len(measured) - 1):
            out["e2e"].append((measured[-1] - true_ns[-1]) / 1e9)
        if trusted(0, len(measured) - 1):
            out["tpot"].append(record.tpot_s - (true_ns[-1] - true_ns[0]) / 1e9 / (len(true_ns) - 1))
        out["itl"].extend(((measured[k] - measured[k - 1]) - (true_ns[k] - true_ns[k - 1])) / 1e9
                          for k in range(1, len(measured)) if trusted(k - 1, k))
    return out


def flagged(record: RequestRecord) -> set[int]:
    """Content chunks whose stamp the record says is only an upper bound: merged with the next chunk's
    packet, or stamped after the read because the kernel gave no stamp."""
    return set(record.details["merged_with_next"]) | set(record.details.get("user_stamped", []))


def chunk_errors(records: list[RequestRecord], entries: dict[str, dict], tag: str = "") -> list[tuple[float, bool]]:
    """(|arrival error| in ms, flagged) for every content chunk."""
    out = []
    for record in records:
        entry = entries[f"{tag}{record.case_id}-{record.request_index}"]
        measured = record.details["content_chunk_ns"]
        merged = flagged(record)
        out += [(abs(m - t) / 1e6, i in merged) for i, (m, t) in enumerate(zip(measured, sent_ns(entry, measured)))]
    return out


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of the absolute errors, in milliseconds (NaN without samples)."""
    if not values:
        return float("nan"), float("nan")
    data = np.abs(np.array(values, dtype=float)) * 1e3
    return float(np.percentile(data, 50)), float(np.percentile(data, 99))
