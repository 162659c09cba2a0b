"""Every field of a measured record: what the caller passed, what the target said, and the rules for
failed, unfinished and untimed streams (pins metrics.py field by field, for mutation testing)."""

from __future__ import annotations

from typing import Iterator

import pytest

from harness.measure.metrics import build_record, error_kind_of, measure_request
from harness.targets.base import Request, StreamItem, TokenEvent, Usage

S = 1_000_000_000


class Scripted:
    """Yields fixed items with fixed timestamps; optionally raises at the end; clock from a list."""

    def __init__(self, items: list[StreamItem], error: Exception | None = None, **attributes: object) -> None:
        self.items, self.error = items, error
        for name, value in attributes.items():
            setattr(self, name, value)

    def stream(self, request: Request) -> Iterator[StreamItem]:
        yield from self.items
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        pass


def clock(*times: int):
    values = iter(times)
    return lambda: next(values)


def measure(target, **meta):
    defaults = dict(run_id="run-1", case_id="case-1", test="latency", prompt_length=16, concurrency=3,
                    request_index=5, worker=2, cold=True, arrival_rate=2.5)
    return measure_request(target, Request(prompt_ids=(1, 2)), **{**defaults, **meta}, clock=clock(0, 10 * S))


TOKENS = [TokenEvent(7, "a", 1 * S), TokenEvent(8, "b", 3 * S), TokenEvent(9, "c", 4 * S)]


def test_the_callers_fields_and_the_targets_identity_reach_the_record() -> None:
    record = measure(Scripted([*TOKENS, Usage(5, 3)], name="engine", provider="dml", precision="fp16"))
    assert (record.run_id, record.case_id, record.test, record.prompt_length) == ("run-1", "case-1", "latency", 16)
    assert (record.concurrency, record.request_index, record.worker, record.cold) == (3, 5, 2, True)
    assert (record.arrival_rate, record.precision, record.target, record.provider) == (2.5, "fp16", "engine", "dml")
    assert record.first_token_ns == 1 * S and record.end_ns == 4 * S and record.submit_ns == 0


def test_a_target_without_identity_is_named_with_question_marks() -> None:
    record = measure(Scripted([*TOKENS, Usage(5, 3)]))
    assert (record.target, record.provider, record.precision) == ("?", "?", None)


def test_timings_and_rates_of_a_normal_stream() -> None:
    record = measure(Scripted([*TOKENS, Usage(5, 3)]))
    assert record.ok and record.error is None and record.error_kind is None
    assert record.ttft_s == 1.0 and record.e2e_s == 4.0 and record.tpot_s == 1.5
    assert record.itl_s == [2.0, 1.0] and record.prefill_tok_s == 5.0 and record.decode_tok_s == pytest.approx(1 / 1.5)
    assert record.prompt_tokens == 5 and record.completion_tokens == 3
    assert record.output_text == "abc" and record.output_ids == [7, 8, 9] and record.details == {}


def test_two_tokens_give_a_tpot_and_one_does_not() -> None:
    two = measure(Scripted([*TOKENS[:2], Usage(5, 2)]))
    assert two.tpot_s == 2.0
    one = measure(Scripted([TOKENS[0], Usage(5, 1)]))
    assert one.tpot_s is None and one.decode_tok_s is None


def test_usage_counts_win_over_token_events() -> None:
    record = measure(Scripted([*TOKENS, Usage(5, 6)]))  # an HTTP chunk can carry several tokens
    assert record.completion_tokens == 6 and record.tpot_s == pytest.approx(3.0 / 5)


def test_a_stream_without_usage_is_a_failure_that_keeps_its_tokens() -> None:
    record = measure(Scripted(list(TOKENS)))
    assert not record.ok and record.error_kind == "no_usage"
    assert record.error == "the stream ended without a Usage item"
    assert record.completion_tokens == 3 and record.prompt_tokens == 0 and record.prefill_tok_s is None
    assert record.end_ns == 10 * S and record.e2e_s == 10.0 and record.tpot_s is None
    assert record.itl_s == [2.0, 1.0]


def test_an_exception_is_a_failure_with_its_kind_message_and_details() -> None:
    error = RuntimeError("boom")
    error.details = {"status": 500}  # type: ignore[attr-defined]
    record = measure(Scripted(TOKENS[:1], error=error))
    assert not record.ok and record.error_kind == "exception:RuntimeError" and record.error == "boom"
    assert record.details == {"status": 500} and record.ttft_s == 1.0 and record.prefill_tok_s is None
    bare = measure(Scripted([], error=ValueError()))
    assert bare.error == "ValueError" and bare.first_token_ns is None and bare.ttft_s is None
    odd = RuntimeError("x")
    odd.details = "not a mapping"  # type: ignore[attr-defined]
    assert measure(Scripted([], error=odd)).details == {}


def test_usage_details_are_kept_and_untimed_streams_have_no_gaps() -> None:
    usage = Usage(5, 3, per_token_timing=False, details={"chunk_tokens": [3]})
    record = measure(Scripted([*TOKENS, usage]))
    assert record.details == {"chunk_tokens": [3]} and record.itl_s == [] and record.tpot_s is None


def test_error_kinds() -> None:
    class Kinded(Exception):
        error_kind = "http_503"

    class Empty(Exception):
        error_kind = ""

    assert error_kind_of(Kinded()) == "http_503"
    assert error_kind_of(Empty()) == "exception:Empty"
    assert error_kind_of(TimeoutError()) == "timeout"


def test_build_record_rejects_nothing_and_computes_from_hand_made_timestamps() -> None:
    record = build_record(TOKENS, Usage(0, 3), None, submit_ns=0, stream_end_ns=5 * S, meta=dict(
        run_id="r", case_id="c", test="t", target="x", provider="cpu", prompt_length=1, concurrency=1,
        request_index=0, worker=0, cold=False))
    assert record.prefill_tok_s is None and record.prompt_tokens == 0  # no prompt tokens: no prefill rate
