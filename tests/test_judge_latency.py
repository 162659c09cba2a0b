"""Latency items read the latency sweep (warm, shortest prompt, concurrency 1) and judge the p50 by
its confidence interval; first response takes every cold request."""

from __future__ import annotations

import pytest

from harness.config import Thresholds
from judge_helpers import frame, judge, latency, rec

# e2e 0.50, 0.55 .. 0.95: p50 0.725; the 95 % interval of 10 samples is [x(2), x(9)] = [0.55, 0.90]
TEN = [(0.1 + 0.01 * i, 0.5 + 0.05 * i) for i in range(10)]


def sweep(**changes):
    return frame(*latency(*TEN, **changes))


def test_simple_query_passes_when_the_whole_interval_is_under_the_threshold() -> None:
    verdict = judge("simple_query", sweep(), thresholds=Thresholds(simple_query_p50_s=1.0))
    assert verdict.verdict == "pass"
    assert verdict.measured == pytest.approx(0.725)
    assert (verdict.low, verdict.high) == (pytest.approx(0.55), pytest.approx(0.90))
    assert verdict.samples == 10 and verdict.min_samples == 8 and verdict.confidence == 0.95
    assert verdict.reason == "p50 0.725 s, 95% interval 0.55-0.9 s <= 1 s in cpu-p16-c1; 10 samples"


def test_simple_query_fails_when_the_whole_interval_is_over_it() -> None:
    verdict = judge("simple_query", sweep(), thresholds=Thresholds(simple_query_p50_s=0.5))
    assert verdict.verdict == "fail"
    assert "95% interval 0.55-0.9 s is not <= 0.5 s" in verdict.reason


def test_simple_query_is_marginal_when_the_interval_straddles_it_and_reports_both_ends() -> None:
    verdict = judge("simple_query", sweep(), thresholds=Thresholds(simple_query_p50_s=0.7))
    assert verdict.verdict == "marginal"
    assert "p50 0.725 s, 95% interval 0.55-0.9 s straddles <= 0.7 s" in verdict.reason


@pytest.mark.parametrize("threshold, kind", [(0.55, "marginal"), (0.549, "fail"), (0.9, "pass"), (0.899, "marginal")])
def test_interval_ends_on_the_threshold_count_as_inside(threshold: float, kind: str) -> None:
    assert judge("simple_query", sweep(), thresholds=Thresholds(simple_query_p50_s=threshold)).verdict == kind


def test_too_few_samples_is_inconclusive_never_pass() -> None:
    verdict = judge("simple_query", frame(*latency(*TEN[:7])))
    assert verdict.verdict == "inconclusive" and verdict.reason == "7 samples, need >= 8"
    assert verdict.samples == 7 and verdict.measured == pytest.approx(0.65)
    assert judge("simple_query", frame(*latency(*TEN[:8]))).verdict == "pass"


def test_only_the_latency_sweep_counts_not_the_two_sample_responses_case() -> None:
    others = [rec(20, test="real_responses", case_id="cpu-responses", e2e_s=0.1, prompt_length=9),
              rec(21, cold=True, e2e_s=9.0, case_id="cpu-cold"),
              rec(22, concurrency=4, case_id="cpu-p16-c4", e2e_s=9.0),
              rec(23, prompt_length=128, case_id="cpu-p128-c1", e2e_s=9.0)]
    verdict = judge("simple_query", frame(*latency(*TEN), *others))
    assert verdict.case == "cpu-p16-c1" and verdict.samples == 10
    assert verdict.measured == pytest.approx(0.725)
    only_responses = judge("simple_query", frame(*[rec(i, test="real_responses") for i in range(10)]))
    assert only_responses.verdict == "skip"
    assert only_responses.reason == "the latency sweep recorded no warm request at concurrency 1"


def test_the_shortest_prompt_of_the_sweep_is_used() -> None:
    longer = latency(*TEN, prompt_length=128, case_id="cpu-p128-c1")
    shorter = latency(*[(t, e + 5) for t, e in TEN], prompt_length=64, case_id="cpu-p64-c1")
    verdict = judge("simple_query", frame(*longer, *shorter))
    assert verdict.case == "cpu-p64-c1" and verdict.measured == pytest.approx(5.725)


def test_a_failed_sweep_request_fails_the_item() -> None:
    rows = latency(*TEN) + [rec(30, ok=False, error_kind="timeout", error="30 s")]
    verdict = judge("simple_query", frame(*rows))
    assert verdict.verdict == "fail" and verdict.reason == "1 of 11 requests failed (timeout: 30 s)"


def test_subsequent_responses_judge_the_warm_ttft_p50() -> None:
    verdict = judge("subsequent_responses", sweep(), thresholds=Thresholds(subsequent_p50_s=0.3))
    assert verdict.verdict == "pass" and verdict.measured == pytest.approx(0.145)
    assert verdict.check == "subsequent_responses" and verdict.unit == "s" and verdict.comparison == "<="
    assert judge("subsequent_responses", sweep(), thresholds=Thresholds(subsequent_p50_s=0.1)).verdict == "fail"


def test_a_sweep_request_without_ttft_fails_rather_than_being_dropped() -> None:
    rows = latency(*TEN) + [rec(40, ttft_s=None)]
    verdict = judge("subsequent_responses", frame(*rows))
    assert verdict.verdict == "fail" and verdict.reason.startswith("1 of 11 requests have no ttft_s")


def cold(index: int, ttft: float | None, **changes):
    return rec(index, cold=True, case_id=f"cpu-cold-{index}", ttft_s=ttft, **changes)


def test_first_response_takes_the_slowest_cold_request() -> None:
    verdict = judge("first_response", frame(cold(0, 0.1), cold(1, 0.4), *latency(*TEN)),
                    thresholds=Thresholds(first_response_s=0.5))
    assert verdict.verdict == "pass" and verdict.measured == pytest.approx(0.4) and verdict.samples == 2
    assert verdict.reason == "0.4 s <= 0.5 s in cpu-cold-0, cpu-cold-1; slowest of 2 cold requests"
    failed = judge("first_response", frame(cold(0, 0.1), cold(1, 0.4)), thresholds=Thresholds(first_response_s=0.3))
    assert failed.verdict == "fail" and failed.reason.startswith("0.4 s is not <= 0.3 s")


def test_one_cold_request_says_so() -> None:
    verdict = judge("first_response", frame(cold(0, 0.2)))
    assert verdict.reason.endswith("; one cold request") and verdict.samples == 1


def test_a_cold_request_without_ttft_fails_the_item_even_when_another_passes() -> None:
    verdict = judge("first_response", frame(cold(0, 0.1), cold(1, None)))
    assert verdict.verdict == "fail"
    assert verdict.reason == "1 of 2 cold requests generated no token (cpu-cold-1)" and verdict.samples == 1


def test_first_response_without_cold_requests_skips_and_a_failed_one_fails() -> None:
    skipped = judge("first_response", sweep())
    assert skipped.verdict == "skip" and skipped.reason == "no cold request (the first after load) was recorded"
    failed = judge("first_response", frame(cold(0, None, ok=False, error_kind="exception:RuntimeError", error="x")))
    assert failed.verdict == "fail" and failed.reason == "1 of 1 requests failed (exception:RuntimeError: x)"
