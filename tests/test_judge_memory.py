"""Memory peak, and memory growth from one reading per request taken at that request's end."""

from __future__ import annotations

import pytest

from harness.config import Thresholds
from harness.judge.memory import readings_at_request_ends
from judge_helpers import GIB, MIB, S, frame, judge, rec, tele


def test_memory_peak_adds_gpu_memory_where_readable() -> None:
    alone = judge("memory", telemetry=tele(dict(t_ns=1, peak_rss_bytes=4 * GIB)))
    assert alone.verdict == "pass" and alone.measured == pytest.approx(4.0) and alone.samples == 1
    assert alone.reason == "4 GiB <= 14 GiB; process peak (OS, lifetime); GPU process memory not readable here"
    with_gpu = judge("memory", telemetry=tele(dict(t_ns=1, peak_rss_bytes=8 * GIB, gpu_mem_bytes=7 * GIB)))
    assert with_gpu.verdict == "fail" and with_gpu.measured == pytest.approx(15.0)
    assert with_gpu.reason == ("15 GiB is not <= 14 GiB; process peak (OS, lifetime) + GPU process memory 7 GiB "
                              "(dedicated + shared)")
    assert judge("memory").verdict == "skip" and judge("memory").reason == "no telemetry was recorded"


def test_memory_peak_prefers_samples_taken_during_generation() -> None:
    records = frame(rec(0, submit_ns=0, end_ns=S))
    telemetry = tele(dict(t_ns=S // 2, peak_rss_bytes=2 * GIB), dict(t_ns=5 * S, peak_rss_bytes=20 * GIB))
    assert judge("memory", records, telemetry).measured == pytest.approx(2.0)
    outside_only = tele(dict(t_ns=5 * S, peak_rss_bytes=3 * GIB))
    assert judge("memory", records, outside_only).measured == pytest.approx(3.0)


def growth(per_request_mib: float, n: int = 24, warmup_mib: float = 0.0):
    """``n`` memory-case requests whose reading at the end grows ``per_request_mib`` each; the first
    quarter also grows ``warmup_mib`` each (arena warm-up)."""
    rows, rss = [], 500 * MIB
    for i in range(n):
        rss += (warmup_mib if i < n // 4 else 0) * MIB + per_request_mib * MIB
        rows.append(rec(i, test="memory", case_id="cpu-memory", rss_after_bytes=int(rss)))
    return frame(*rows)


def test_memory_stable_is_the_slope_of_the_readings_at_request_ends() -> None:
    steady = judge("memory_stable", growth(0.25))
    assert steady.verdict == "pass" and steady.measured == pytest.approx(0.25) and steady.samples == 18
    assert steady.reason == ("0.25 MiB/request <= 1 MiB/request in cpu-memory; RSS slope over 18 readings "
                             "(read at each request's end; first 6 skipped as warm-up)")
    leaking = judge("memory_stable", growth(3.0))
    assert leaking.verdict == "fail" and leaking.measured == pytest.approx(3.0)
    assert leaking.reason.startswith("3 MiB/request is not <= 1 MiB/request in cpu-memory")


def test_the_warm_up_quarter_is_left_out_of_the_slope() -> None:
    verdict = judge("memory_stable", growth(0.0, warmup_mib=50.0))
    assert verdict.verdict == "pass" and verdict.measured == pytest.approx(0.0, abs=1e-9)


def test_too_few_readings_after_warm_up_is_inconclusive() -> None:
    enough = judge("memory_stable", growth(3.0, n=10))  # 10 readings, 2 skipped: exactly the minimum
    assert enough.verdict == "fail" and enough.samples == 8
    short = judge("memory_stable", growth(3.0, n=9))
    assert short.verdict == "inconclusive"
    assert short.reason == ("7 memory readings after warm-up (read at each request's end, 9 requests), need >= 8")


def test_only_memory_case_records_are_read_and_failures_fail() -> None:
    assert judge("memory_stable", frame(rec(0))).verdict == "skip"
    assert judge("memory_stable", frame(rec(0))).reason == "no repeated requests (test memory) were recorded"
    broken = frame(*[rec(i, test="memory", rss_after_bytes=MIB) for i in range(12)],
                   rec(12, test="memory", ok=False, error_kind="timeout", error="slow"))
    verdict = judge("memory_stable", broken)
    assert verdict.verdict == "fail" and verdict.reason == "1 of 13 requests failed (timeout: slow)"


def leaking_requests(n: int = 12, leak_mib: float = 3.0):
    return frame(*[rec(i, test="memory", case_id="cpu-memory") for i in range(n)]), leak_mib


def test_one_telemetry_sample_shared_by_every_request_is_inconclusive_not_a_flat_slope() -> None:
    # the case: 12 requests leaking 3 MiB each, the sampler slower than the requests
    records, _ = leaking_requests()
    one_sample = tele(dict(t_ns=20 * S, rss_bytes=600 * MIB))
    verdict = judge("memory_stable", records, one_sample)
    assert verdict.verdict == "inconclusive" and verdict.samples == 1
    assert "telemetry sample after each request's end, none shared" in verdict.reason


def test_telemetry_samples_inside_each_window_give_the_slope() -> None:
    records, leak = leaking_requests()
    # request i ends at i s + 0.5 s; one sample 1 ms later, and a second one in the same window (ignored)
    samples = [dict(t_ns=i * S + S // 2 + 1_000_000, rss_bytes=int(500 * MIB + i * leak * MIB)) for i in range(12)]
    extra = [dict(t_ns=i * S + S // 2 + 2_000_000, rss_bytes=int(900 * MIB)) for i in range(12)]
    verdict = judge("memory_stable", records, tele(*extra, *samples))
    assert verdict.verdict == "fail" and verdict.measured == pytest.approx(3.0) and verdict.samples == 9


def test_readings_keep_each_requests_position_when_some_have_no_sample() -> None:
    records, _ = leaking_requests(n=4)
    samples = tele(dict(t_ns=S // 2, rss_bytes=10), dict(t_ns=3 * S + S // 2, rss_bytes=40))
    positions, values, source = readings_at_request_ends(records, samples)
    assert positions == [0, 3] and values == [10.0, 40.0] and "none shared" in source
    sample_before_end = tele(dict(t_ns=S // 2 - 1, rss_bytes=10))
    assert readings_at_request_ends(records.iloc[:1], sample_before_end)[1] == []
    after_the_last = tele(dict(t_ns=100 * S, rss_bytes=7))
    assert readings_at_request_ends(records, after_the_last)[0] == [3]


def test_readings_in_the_records_win_over_telemetry_only_when_every_request_has_one() -> None:
    rows = [rec(i, test="memory", rss_after_bytes=(i + 1) * MIB) for i in range(3)]
    positions, values, source = readings_at_request_ends(frame(*rows), tele(dict(t_ns=S // 2, rss_bytes=5)))
    assert values == [MIB, 2 * MIB, 3 * MIB] and source == "read at each request's end" and positions == [0, 1, 2]
    rows[1]["rss_after_bytes"] = None
    assert readings_at_request_ends(frame(*rows), tele(dict(t_ns=S // 2, rss_bytes=5)))[1] == [5.0]
    failed = [rec(0, test="memory", rss_after_bytes=MIB), rec(1, test="memory", ok=False)]
    assert readings_at_request_ends(frame(*failed), tele())[1] == [MIB]


def test_threshold_is_the_config_value() -> None:
    assert judge("memory_stable", growth(3.0), thresholds=Thresholds(memory_growth_mib_per_request=4.0)).verdict == "pass"
