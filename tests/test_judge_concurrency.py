"""Concurrency passes only when requests were in flight together, generated together, and each
output equals its own single-stream output."""

from __future__ import annotations

from harness.judge.concurrency import peak_generating, peak_in_flight
from harness.judge.evidence import ConcurrencyComparison
from judge_helpers import S, frame, judge, rec

CASE = "cpu-p16-c4"


def concurrent(n: int = 8, level: int = 4, *, serial: bool = False, back_to_back: bool = False, **changes):
    """``n`` requests of a closed-loop case. Default: waves of ``level`` that overlap fully.
    serial: all submitted at once, but each generates only after the previous finished.
    back_to_back: each submitted after the previous finished."""
    rows = []
    for i in range(n):
        if back_to_back:
            submit, first, end = i * S, i * S + S // 10, i * S + S // 2
        elif serial:
            submit, first, end = 0, i * S + S // 10, i * S + S // 2
        else:
            wave = (i // level) * S
            submit, first, end = wave + i, wave + S // 10 + i, wave + S // 2 + i
        rows.append(rec(i, case_id=CASE, test="concurrency", concurrency=level, submit_ns=submit,
                        first_token_ns=first, end_ns=end, **changes))
    return frame(*rows)


def compared(n: int = 8, mismatched=(), case: str = CASE):
    return [ConcurrencyComparison(case, n, list(mismatched))]


def test_overlapping_requests_matching_single_stream_pass() -> None:
    verdict = judge("concurrency", concurrent(), concurrency=compared())
    assert verdict.verdict == "pass" and verdict.measured == "8/8 ok" and verdict.samples == 8
    assert verdict.reason == "up to 4 in flight, 4 generating at once; every output equals its single-stream output"


def test_outputs_swapped_between_requests_fail_as_cross_talk() -> None:
    verdict = judge("concurrency", concurrent(), concurrency=compared(mismatched=[1, 2]))
    assert verdict.verdict == "fail"
    assert verdict.reason == ("outputs differ from single-stream outputs (cross-talk): "
                              "cpu-p16-c4: requests [1, 2] differ from their single-stream output")


def test_requests_sent_one_after_another_do_not_pass_as_concurrent() -> None:
    verdict = judge("concurrency", concurrent(back_to_back=True), concurrency=compared())
    assert verdict.verdict == "inconclusive"
    assert verdict.reason == ("concurrency not reached: cpu-p16-c4: at most 1 of 4 requests in flight (the load never "
                              "had 4 going at once: requests sent one after another, or too short for this machine)")


def test_a_target_that_serialises_requests_does_not_pass_as_concurrent() -> None:
    rows = concurrent(serial=True)
    assert peak_in_flight(rows) == 8 and peak_generating(rows) == 1
    verdict = judge("concurrency", rows, concurrency=compared())
    assert verdict.verdict == "fail"
    assert "cpu-p16-c4: 8 in flight but never two generating at once (the target serialises them)" in verdict.reason


def test_without_the_single_stream_comparison_it_is_inconclusive() -> None:
    missing = judge("concurrency", concurrent())
    assert missing.verdict == "inconclusive"
    assert missing.reason == "the single-stream comparison did not run for cpu-p16-c4 (0 of 8 outputs compared)"
    partly = judge("concurrency", concurrent(), concurrency=compared(n=5))
    assert partly.verdict == "inconclusive" and "(5 of 8 outputs compared)" in partly.reason
    other_case = judge("concurrency", concurrent(), concurrency=compared(case="cpu-p128-c4"))
    assert other_case.verdict == "inconclusive"


def test_a_failed_request_fails_the_item_and_names_the_overlap() -> None:
    rows = concurrent(n=4)
    rows.loc[1, "ok"], rows.loc[1, "error_kind"], rows.loc[1, "error"] = False, "exception:RuntimeError", "boom"
    verdict = judge("concurrency", rows, concurrency=compared(n=3))
    assert verdict.verdict == "fail" and verdict.measured == "3/4 ok"
    assert verdict.reason == ("1 of 4 requests failed (exception:RuntimeError: boom); "
                              "up to 4 in flight, 3 generating at once")


def test_open_loop_alone_cannot_prove_a_level() -> None:
    rows = frame(*[rec(i, case_id="cpu-p16-r100", test="open_loop", concurrency=0) for i in range(8)])
    verdict = judge("concurrency", rows, concurrency=compared(case="cpu-p16-r100"))
    assert verdict.verdict == "inconclusive" and verdict.reason.startswith("only open-loop cases (")


def test_too_few_concurrent_requests_is_inconclusive() -> None:
    verdict = judge("concurrency", concurrent(n=2, level=2), concurrency=compared(n=2))
    assert verdict.verdict == "inconclusive" and verdict.reason == "2 concurrent requests, need >= 4"


def test_no_concurrent_requests_skip() -> None:
    verdict = judge("concurrency", frame(rec(0)))
    assert verdict.verdict == "skip"
    assert verdict.reason == "no requests at concurrency > 1 or open-loop requests were recorded"


def test_peaks_count_touching_intervals_as_apart() -> None:
    touching = frame(rec(0, submit_ns=0, first_token_ns=1, end_ns=10), rec(1, submit_ns=10, first_token_ns=10, end_ns=20))
    assert peak_in_flight(touching) == 1 and peak_generating(touching) == 1
    nested = frame(rec(0, submit_ns=0, first_token_ns=1, end_ns=10), rec(1, submit_ns=2, first_token_ns=3, end_ns=5),
                   rec(2, submit_ns=4, first_token_ns=6, end_ns=7))
    assert peak_in_flight(nested) == 3 and peak_generating(nested) == 2
    failed = frame(rec(0, submit_ns=0, first_token_ns=1, end_ns=10), rec(1, submit_ns=0, first_token_ns=1, end_ns=10, ok=False))
    assert peak_generating(failed) == 1 and peak_in_flight(failed) == 2
    no_token = frame(rec(0, submit_ns=0, first_token_ns=1, end_ns=10), rec(1, submit_ns=0, first_token_ns=None, end_ns=10))
    assert peak_generating(no_token) == 1


def test_rate_sweep_records_do_not_enter_the_concurrency_item() -> None:
    # the sweep measures capacity and compares nothing with single-stream output: it must not make
    # the item inconclusive (it did: `run --sweep` failed the gate on "concurrency (inconclusive)")
    import pandas as pd

    sweep = concurrent().assign(case_id="cpu-p16-r91.7", test="sweep", concurrency=0)
    verdict = judge("concurrency", pd.concat([concurrent(), sweep], ignore_index=True), concurrency=compared())
    assert verdict.verdict == "pass" and verdict.measured == "8/8 ok" and "r91.7" not in verdict.case
