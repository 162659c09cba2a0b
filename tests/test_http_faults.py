"""Every way an endpoint can fail becomes a failed record with its kind; nothing hangs, the run goes on.

One scripted server (a child process on 127.0.0.1, port 0) misbehaves as the request's model asks.
Timeouts are short (first byte 0.3 s, total 0.6 s), so the hanging cases end quickly.
"""

from __future__ import annotations

import socket
import time

import pytest
from http_calibration import scripted_server

from harness.measure.load import CaseInfo, run_closed_loop
from harness.measure.metrics import measure_request
from harness.measure.results import RequestRecord, ResultsWriter, load_records
from harness.report import tables
from harness.targets.base import Request
from harness.targets.http import HttpTarget
from harness.targets.http_conn import HttpTimeouts

TIMEOUTS = HttpTimeouts(connect_s=1.0, first_byte_s=0.3, total_s=0.6)
FAULTS = {
    "drop": "stream_dropped",
    "status500": "http_500",
    "malformed": "malformed_sse",
    "error_mid": "server_error",
    "hang": "first_byte_timeout",
    "hang_mid": "total_timeout",
    "cut": "stream_cut",
}


@pytest.fixture(scope="module")
def server():
    with scripted_server("--first-ms", "5", "--gap-ms", "2", "--idle-close-ms", "150") as handle:
        yield handle


def measure(target: HttpTarget, model: str, index: int = 0) -> RequestRecord:
    target.model_name = model
    return measure_request(target, Request.chat("hi", max_new_tokens=8), run_id="faults", case_id=f"http-{model}",
                           test="faults", prompt_length=1, concurrency=1, request_index=index, worker=0, cold=False)


@pytest.mark.parametrize("model", list(FAULTS))
def test_fault_becomes_a_failed_record_with_its_kind(server, model: str) -> None:
    target = HttpTarget(server.url, timeouts=TIMEOUTS)
    started = time.perf_counter()
    record = measure(target, model)
    target.close()
    assert not record.ok and record.error_kind == FAULTS[model], (record.error_kind, record.error)
    assert record.error and time.perf_counter() - started < 1.5
    if model in ("drop", "malformed", "error_mid", "hang_mid", "cut"):  # what arrived first is kept
        assert len(record.output_text.split()) == 5 and record.ttft_s is not None


def test_http_error_keeps_the_status_and_the_body(server) -> None:
    record = measure(HttpTarget(server.url, timeouts=TIMEOUTS), "status500")
    assert "HTTP 500" in record.error and "scripted failure" in record.error
    assert record.details["status"] == 500


def test_refused_connection_is_a_failed_record() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    record = measure(HttpTarget(f"http://127.0.0.1:{port}", timeouts=TIMEOUTS), "calib")
    assert not record.ok and record.error_kind == "connection_refused"


def test_non_streaming_answer_is_measured_with_ttft_equal_to_e2e_and_flagged(server) -> None:
    record = measure(HttpTarget(server.url, timeouts=TIMEOUTS), "plain")
    assert record.ok and record.details["streamed"] is False
    assert record.ttft_s == record.e2e_s and record.tpot_s is None and record.itl_s == []
    assert record.completion_tokens == 8 and len(record.output_text.split()) == 8


def test_idle_connection_closed_by_the_server_is_replaced_and_recorded(server) -> None:
    target = HttpTarget(server.url, timeouts=TIMEOUTS)
    first = measure(target, "calib")
    second = measure(target, "calib", 1)
    time.sleep(0.25)  # the server closes keep-alive connections idle for 150 ms
    third = measure(target, "calib", 2)
    target.close()
    assert first.ok and second.ok and third.ok
    assert first.details["connect_s"] > 0 and second.details["reused_connection"]
    assert third.details["stale_connections_dropped"] == 1 and third.details["connect_s"] > 0


class ModelPerRequest(HttpTarget):
    """Sends the request id as the model name, so one load run mixes good and faulty answers."""

    def body(self, request: Request, messages: tuple[tuple[str, str], ...]) -> dict:
        return {**super().body(request, messages), "model": request.request_id}


def test_the_run_goes_on_past_failures_and_the_report_lists_them(server, tmp_path) -> None:
    target = ModelPerRequest(server.url, timeouts=TIMEOUTS)
    models = ["calib", "drop", "calib", "status500", "malformed", "calib", "cut", "calib"]

    def request(index: int) -> Request:
        return Request.chat("hi", max_new_tokens=8, request_id=models[index])

    with ResultsWriter(tmp_path) as writer:
        result = run_closed_loop(target, request, CaseInfo("faults", "http-mixed", "faults", 1), concurrency=4,
                                 total_requests=len(models), on_record=writer.write)
    target.close()
    assert len(result.records) == len(models)
    by_index = {r.request_index: r for r in result.records}
    assert [by_index[i].ok for i in range(len(models))] == [m == "calib" for m in models]
    failures = tables.failures_table(load_records(tmp_path))
    assert sorted(failures["error_kind"]) == sorted(["stream_dropped", "http_500", "malformed_sse", "stream_cut"])
