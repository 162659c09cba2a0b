"""The HTTP target measures a scripted stream to within 1 ms at p50 and 3 ms at p99.

The scripted server (a child process) sends a role-only chunk, first content after 50 ms, then a
token every 10 ms in chunks of 1, 1 and 3 tokens, and a usage chunk; it logs when it wrote each
chunk. TTFT, per-token ITL, TPOT and E2E measured by the harness are compared with those times at
concurrency 1, 16 and 64 (benchmarks/http_calibration.py prints the errors).
"""

from __future__ import annotations

import pytest
from http_calibration import METRICS, errors, percentiles, run_calibration, scripted_server

from harness.targets.http import HttpTarget

P50_TOLERANCE_MS = 1.0
P99_TOLERANCE_MS = 3.0


@pytest.fixture(scope="module")
def server():
    with scripted_server() as handle:
        yield handle


@pytest.mark.parametrize("concurrency", [1, 16, 64])
def test_measured_timing_matches_the_servers_send_times(server, concurrency: int) -> None:
    target = HttpTarget(server.url)
    try:
        records = run_calibration(target, concurrency, total=max(concurrency, 4))
    finally:
        target.close()
    assert all(r.ok for r in records), [r.error for r in records if not r.ok][:1]
    assert all(r.completion_tokens == 10 and r.details["chunk_tokens"] == [1, 1, 3, 1, 1, 3] for r in records)
    measured = errors(records, server.log_entries())
    for metric in METRICS:
        p50, p99 = percentiles(measured[metric])
        assert p50 <= P50_TOLERANCE_MS and p99 <= P99_TOLERANCE_MS, (
            f"{metric} at concurrency {concurrency}: |error| p50 {p50:.3f} ms, p99 {p99:.3f} ms")


def test_role_only_and_usage_chunks_are_not_tokens() -> None:
    with scripted_server("--usage-delay-ms", "20") as server:
        target = HttpTarget(server.url)
        try:
            (record,) = run_calibration(target, 1, total=1)
        finally:
            target.close()
    details = record.details
    assert details["role_chunk"] and len(details["chunk_ns"]) == len(details["content_chunk_ns"]) + 3  # role, finish, usage
    assert record.first_token_ns == details["content_chunk_ns"][0]
    assert record.end_ns == details["content_chunk_ns"][-1] < details["chunk_ns"][-1] - 15_000_000
    assert details["usage_source"] == "server" and details["token_source"] == "server"
