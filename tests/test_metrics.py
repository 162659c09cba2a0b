"""Per-request metrics agree with hand-computed values."""

from __future__ import annotations


import pytest
from stream_targets import ManualClock, ScheduledTarget, TimedTarget

from harness.measure.metrics import measure_request
from harness.targets.base import Request

MS = 1_000_000
META = dict(run_id="r", case_id="cpu-p16-c1", test="latency", prompt_length=16, concurrency=1,
            request_index=0, worker=0, cold=False)


def _measure(target, request=None, **meta):
    return measure_request(target, request or Request(prompt_ids=(1, 2, 3), max_new_tokens=8),
                           **{**META, **meta}, clock=target.clock)


def test_timings_follow_the_definitions() -> None:
    # tokens at 200, 300, 450, 500 ms after submit; 50 prompt tokens
    clock = ManualClock()
    record = _measure(TimedTarget(clock, [200 * MS, 300 * MS, 450 * MS, 500 * MS], prompt_tokens=50, end_offset_ns=520 * MS))
    assert record.ok and record.error_kind is None
    assert record.submit_ns == 1_000_000_000
    assert record.ttft_s == pytest.approx(0.200)
    assert record.e2e_s == pytest.approx(0.500)  # to the last token, not to the stream's end at 520 ms
    assert record.end_ns == record.submit_ns + 500 * MS
    assert record.itl_s == pytest.approx([0.100, 0.150, 0.050])
    assert record.tpot_s == pytest.approx((0.500 - 0.200) / 3)
    assert record.prefill_tok_s == pytest.approx(50 / 0.200)
    assert record.decode_tok_s == pytest.approx(3 / 0.300)
    assert record.prompt_tokens == 50 and record.completion_tokens == 4
    assert record.output_text == "abcd" and record.output_ids == [100, 101, 102, 103]
    assert record.token_ns == [record.submit_ns + o for o in (200 * MS, 300 * MS, 450 * MS, 500 * MS)]
    assert (record.target, record.provider, record.case_id) == ("timed", "cpu", "cpu-p16-c1")
    # the case's identity travels as fields: the request's cap, closed loop (no rate)
    assert (record.max_new_tokens, record.arrival_rate) == (8, None)


def test_one_token_has_no_tpot() -> None:
    record = _measure(TimedTarget(ManualClock(), [80 * MS], prompt_tokens=10))
    assert record.ok and record.ttft_s == pytest.approx(0.08) and record.e2e_s == pytest.approx(0.08)
    assert record.tpot_s is None and record.decode_tok_s is None and record.itl_s == []


def test_an_exception_becomes_a_failed_record_with_the_tokens_before_it() -> None:
    clock = ManualClock()
    record = _measure(TimedTarget(clock, [100 * MS, 150 * MS, 200 * MS], prompt_tokens=5, raise_at=2))
    assert not record.ok
    assert record.error_kind == "exception:ValueError" and record.error == "engine exploded"
    assert record.output_ids == [100, 101]
    assert record.ttft_s == pytest.approx(0.1)
    assert record.end_ns == record.submit_ns + 200 * MS  # when it failed
    assert record.tpot_s is None and record.prefill_tok_s is None


def test_a_stream_without_usage_is_a_failure() -> None:
    record = _measure(TimedTarget(ManualClock(), [10 * MS], prompt_tokens=5, usage=False))
    assert not record.ok and record.error_kind == "no_usage"


def test_error_kind_comes_from_the_target_when_it_names_one() -> None:
    class HttpError(Exception):
        error_kind = "http_500"

    class Failing(ScheduledTarget):
        def stream(self, request):
            raise HttpError("internal server error")
            yield  # pragma: no cover

    class Slow(ScheduledTarget):
        def stream(self, request):
            raise TimeoutError("no answer in 30 s")
            yield  # pragma: no cover

    assert measure_request(Failing(), Request(prompt_ids=(1,)), **META).error_kind == "http_500"
    assert measure_request(Slow(), Request(prompt_ids=(1,)), **META).error_kind == "timeout"


def test_real_sleeps_are_measured_on_the_producer_clock() -> None:
    target = ScheduledTarget(tokens=(5, 6, 7), first_delay_s=0.03, token_delay_s=0.01)
    record = measure_request(target, Request(prompt_ids=(1, 2), max_new_tokens=3), **META)
    assert record.ok and record.completion_tokens == 3 and record.prompt_tokens == 7
    assert record.ttft_s >= 0.03  # lower bounds only: sleeping can overrun, never underrun
    assert all(gap >= 0.01 for gap in record.itl_s)
    assert record.e2e_s == pytest.approx(record.ttft_s + sum(record.itl_s))
