"""Closed and open loop load: every request measured and recorded, failures kept, the run goes on."""

from __future__ import annotations

import statistics
import time

import pytest
from stream_targets import ScheduledTarget

from harness.measure.load import CaseInfo, poisson_arrivals, run_closed_loop, run_open_loop
from harness.measure.results import ResultsWriter, load_records
from harness.targets.base import Request

CASE = CaseInfo(run_id="r1", case_id="cpu-p16-c4", test="concurrency", prompt_length=16)


def requests(index: int) -> Request:
    return Request(prompt_ids=(1, 2, 3), max_new_tokens=4, request_id=f"req-{index}")


def test_closed_loop_keeps_n_requests_in_flight() -> None:
    target = ScheduledTarget(first_delay_s=0.02, token_delay_s=0.01)
    result = run_closed_loop(target, requests, CASE, concurrency=4, total_requests=12)
    assert len(result.records) == 12 and all(r.ok for r in result.records)
    assert sorted(r.request_index for r in result.records) == list(range(12))
    assert {r.worker for r in result.records} == {0, 1, 2, 3}
    assert target.in_flight_peak == 4
    assert all(r.concurrency == 4 and r.case_id == "cpu-p16-c4" and r.run_id == "r1" for r in result.records)
    span = (max(r.end_ns for r in result.records) - min(r.submit_ns for r in result.records)) / 1e9
    assert result.wall_s == pytest.approx(span)


def test_failed_requests_are_recorded_and_the_run_goes_on() -> None:
    target = ScheduledTarget(fail=lambda request: int(request.request_id.split("-")[1]) % 3 == 0)
    result = run_closed_loop(target, requests, CASE, concurrency=2, total_requests=9)
    assert len(result.records) == 9
    failed = sorted(r.request_index for r in result.failed)
    assert failed == [0, 3, 6]
    for record in result.failed:
        assert record.error_kind == "exception:RuntimeError" and "failed on purpose" in record.error
        assert record.output_ids == [11]  # the token before the failure is kept


def test_each_record_reaches_the_callback_as_soon_as_it_is_measured(tmp_path) -> None:
    handed: list[tuple[int, int]] = []  # (request index, when)

    with ResultsWriter(tmp_path) as writer:
        def on_record(record) -> None:
            writer.write(record)
            handed.append((record.request_index, time.perf_counter_ns()))

        result = run_closed_loop(ScheduledTarget(), requests, CASE, concurrency=1, total_requests=5, on_record=on_record)
    assert [index for index, _ in handed] == [0, 1, 2, 3, 4]
    # the first record was handed over before the last request even started
    assert handed[0][1] < max(r.submit_ns for r in result.records)
    assert list(load_records(tmp_path)["request_index"]) == [0, 1, 2, 3, 4]


def test_a_duration_stops_new_submissions_but_finishes_those_in_flight() -> None:
    started = time.perf_counter_ns()
    result = run_closed_loop(ScheduledTarget(), requests, CASE, concurrency=2, duration_s=0.15)
    assert len(result.records) >= 2 and all(r.ok for r in result.records)
    # Each worker reads the clock just before it submits: a submission stamped after the deadline needs
    # that thread parked between the two, which a loaded machine can do for a while, never for a whole
    # request; and no worker can have fitted more requests into the window than their length allows.
    longest_ns = max(r.end_ns - r.submit_ns for r in result.records)
    shortest_s = min(r.end_ns - r.submit_ns for r in result.records) / 1e9
    assert all(r.submit_ns - started <= 0.15e9 + longest_ns for r in result.records)
    assert len(result.records) <= 2 * (int(0.15 / shortest_s) + 1)


def test_only_the_first_request_is_cold_when_asked() -> None:
    result = run_closed_loop(ScheduledTarget(), requests, CASE, concurrency=2, total_requests=4, cold_first=True)
    assert {r.request_index for r in result.records if r.cold} == {0}
    result = run_closed_loop(ScheduledTarget(), requests, CASE, concurrency=2, total_requests=4)
    assert not any(r.cold for r in result.records)


def test_a_failing_callback_stops_the_load_and_is_raised() -> None:
    def on_record(record) -> None:
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        run_closed_loop(ScheduledTarget(), requests, CASE, concurrency=2, total_requests=50, on_record=on_record)


def test_a_request_list_is_cycled() -> None:
    listed = [Request(prompt_ids=(1,), max_new_tokens=n) for n in (1, 2)]
    result = run_closed_loop(ScheduledTarget(), listed, CASE, concurrency=1, total_requests=4)
    assert [r.completion_tokens for r in sorted(result.records, key=lambda r: r.request_index)] == [1, 2, 1, 2]


def test_poisson_arrivals_are_reproducible_with_the_requested_rate() -> None:
    first = poisson_arrivals(20.0, seed=7, count=5000)
    assert first == poisson_arrivals(20.0, seed=7, count=5000)
    assert first != poisson_arrivals(20.0, seed=8, count=5000)
    gaps = [b - a for a, b in zip([0.0] + first, first)]
    assert statistics.mean(gaps) == pytest.approx(1 / 20.0, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(1 / 20.0, rel=0.1)  # exponential: stddev = mean
    timed = poisson_arrivals(20.0, seed=7, duration_s=2.0)
    assert timed == [t for t in first if t < 2.0]


def test_open_loop_arrivals_do_not_wait_for_completions() -> None:
    # requests take ~0.1 s, arrivals come every ~0.02 s: several must be in flight at once
    target = ScheduledTarget(first_delay_s=0.08, token_delay_s=0.01)
    result = run_open_loop(target, requests, CASE, rate_per_s=50.0, seed=3, total_requests=10)
    assert len(result.records) == 10 and all(r.ok for r in result.records)
    assert target.in_flight_peak >= 3
    assert all(r.concurrency == 0 and r.arrival_rate == 50.0 for r in result.records)
    offsets = poisson_arrivals(50.0, seed=3, count=10)
    due_ns = {index: result.schedule_start_ns + round(offset * 1e9) for index, offset in enumerate(offsets)}
    # No request is submitted before its arrival time on the loop's own schedule (1 ms: timer rounding). The
    # first submit is no origin: its thread can start late on a busy machine, and then the others looked early.
    assert all(r.submit_ns >= due_ns[r.request_index] - 1_000_000 for r in result.records)


def test_open_loop_says_when_max_in_flight_delays_arrivals() -> None:
    target = ScheduledTarget(first_delay_s=0.05)
    result = run_open_loop(target, requests, CASE, rate_per_s=200.0, seed=1, total_requests=6, max_in_flight=1)
    assert len(result.records) == 6 and target.in_flight_peak == 1
    assert {r.worker for r in result.records} == {0}
    assert result.notes and "behind the arrival schedule" in result.notes[0]


def test_open_loop_records_failures_too() -> None:
    target = ScheduledTarget(fail=lambda request: request.request_id == "req-2")
    result = run_open_loop(target, requests, CASE, rate_per_s=100.0, seed=0, total_requests=5)
    assert len(result.records) == 5 and [r.request_index for r in result.failed] == [2]
