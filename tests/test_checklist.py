"""Each checklist item passes, fails and skips on hand-made measurements; failures say why."""

from __future__ import annotations

import pytest

from harness.judge.checklist import (
    CHECKS,
    CheckInputs,
    check_accelerator_kind,
    check_accelerator_utilisation,
    check_concurrency,
    check_cpu_usage,
    check_first_response,
    check_health,
    check_memory,
    check_memory_stable,
    check_model_loads,
    check_provider_active,
    check_real_responses,
    check_simple_query,
    check_subsequent_responses,
    check_token_counting,
    evaluate,
    format_table,
    gate,
    max_overlap,
    skip_all,
)
from harness.config import Thresholds
from harness.measure.results import TelemetrySample, Verdict, records_to_frame, telemetry_to_frame

MIB = 1024**2
GIB = 1024**3
S = 1_000_000_000


def rec(index: int = 0, **changes):
    row = dict(run_id="r", case_id="cpu-p16-c1", test="latency", target="engine", provider="cpu", prompt_length=16,
               concurrency=1, request_index=index, worker=0, cold=False, submit_ns=index * S, first_token_ns=None,
               end_ns=index * S + S // 2, token_ns=[], prompt_tokens=16, completion_tokens=4, ttft_s=0.1, e2e_s=0.5,
               tpot_s=0.1, itl_s=[], prefill_tok_s=160.0, decode_tok_s=10.0, ok=True, output_text=f"out {index}")
    row.update(changes)
    return row


def frame(*rows):
    return records_to_frame(list(rows))


def tele(*rows):
    return telemetry_to_frame([TelemetrySample(**{"peak_rss_bytes": 0, "cpu_percent": 0.0, "system_mem_used_bytes": 1,
                                                  "rss_bytes": 1, **row}) for row in rows])


def test_model_loads() -> None:
    assert check_model_loads(2.5).verdict == "pass"
    failed = check_model_loads(None, "InvalidProtobuf: model.onnx is corrupt", "cpu")
    assert failed.verdict == "fail" and "corrupt" in failed.reason
    assert check_model_loads(None).verdict == "skip"


def test_health() -> None:
    assert check_health(True).verdict == "pass"
    failed = check_health(False, '{"status": "loading"}')
    assert failed.verdict == "fail" and "loading" in failed.reason
    assert check_health(None).verdict == "skip" and "HTTP" in check_health(None).reason


def test_real_responses() -> None:
    distinct = frame(rec(0, output_text="The sky is blue"), rec(1, output_text="Paris is in France"))
    assert check_real_responses(distinct, decodes=True, matches_reference=True).verdict == "pass"
    partial = check_real_responses(distinct)
    assert partial.verdict == "pass" and "not checked: decoding, reference comparison" in partial.reason
    same = check_real_responses(frame(rec(0, output_text="hi"), rec(1, output_text="hi")))
    assert same.verdict == "fail" and "repeat" in same.reason
    stub = check_real_responses(frame(rec(0, output_text="This is a placeholder"), rec(1, output_text="x")))
    assert stub.verdict == "fail" and "placeholder" in stub.reason
    assert check_real_responses(frame(rec(0, output_text=" "), rec(1))).verdict == "fail"
    assert check_real_responses(distinct, matches_reference=False).verdict == "fail"
    assert check_real_responses(frame(rec(0))).verdict == "skip"
    broken = check_real_responses(frame(rec(0), rec(1, ok=False, error_kind="http_500", error="oops")))
    assert broken.verdict == "fail" and "1 of 2 requests failed (http_500: oops)" in broken.reason


def proof(share, requested="dml", kind="GPU"):
    return {"requested": requested, "execution_provider": "DmlExecutionProvider",
            "providers": [{"provider": "DmlExecutionProvider", "nodes": 70, "kernel_time_us": 900, "node_share": share,
                           "time_share": 0.9},
                          {"provider": "CPUExecutionProvider", "nodes": 30, "kernel_time_us": 100,
                           "node_share": round(1 - share, 2), "time_share": 0.1}],
            "share_on_requested": share, "strict": False, "device_kind": kind}


def test_provider_active() -> None:
    assert check_provider_active(proof(0.7), "dml", 0.5).verdict == "pass"
    failed = check_provider_active(proof(0.3), "dml", 0.5)
    assert failed.verdict == "fail" and failed.measured == 0.3
    assert "0.3 is not >= 0.5 in dml" in failed.reason and "CPUExecutionProvider 0.7" in failed.reason
    assert check_provider_active(None, "dml", 0.5).verdict == "skip"
    assert check_provider_active(proof(0.9, requested="cpu"), "dml", 0.5).verdict == "fail"
    assert check_provider_active({**proof(0.9), "share_on_requested": None}, "dml", 0.5).verdict == "skip"


def test_accelerator_kind_is_reported_never_gating() -> None:
    info = check_accelerator_kind(proof(0.9, kind="NPU"), "dml")
    assert info.verdict == "info" and info.measured == "NPU" and not info.gating
    assert check_accelerator_kind(proof(0.9, kind=None), "dml").verdict == "skip"


def latency_records():
    return frame(
        rec(0, cold=True, ttft_s=0.4, e2e_s=0.9),
        *[rec(i, ttft_s=t, e2e_s=e) for i, t, e in zip(range(1, 6), [0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0])],
        rec(6, prompt_length=128, case_id="cpu-p128-c1", ttft_s=5.0, e2e_s=9.0),  # longer prompt: not "simple"
        rec(7, concurrency=4, case_id="cpu-p16-c4", ttft_s=5.0, e2e_s=9.0),  # concurrent: not "simple"
    )


def test_simple_query_uses_warm_short_single_requests() -> None:
    ok = check_simple_query(latency_records(), 1.0)
    assert ok.verdict == "pass" and ok.measured == pytest.approx(0.8) and ok.case == "cpu-p16-c1"
    failed = check_simple_query(latency_records(), 0.7)
    assert failed.verdict == "fail" and "0.8 s is not <= 0.7 s in cpu-p16-c1" in failed.reason
    assert check_simple_query(frame(rec(0, concurrency=4)), 1.0).verdict == "skip"
    with_failure = frame(rec(1), rec(2, ok=False, error_kind="timeout", error="30 s"))
    assert check_simple_query(with_failure, 1.0).verdict == "fail"


def test_first_response_is_the_cold_request() -> None:
    assert check_first_response(latency_records(), 0.5).measured == pytest.approx(0.4)
    assert check_first_response(latency_records(), 0.5).verdict == "pass"
    failed = check_first_response(latency_records(), 0.3)
    assert failed.verdict == "fail" and "0.4 s is not <= 0.3 s" in failed.reason
    assert check_first_response(frame(rec(1)), 0.5).verdict == "skip"
    assert check_first_response(frame(rec(0, cold=True, ttft_s=None)), 0.5).verdict == "fail"


def test_subsequent_responses_use_the_warm_ttft_p50() -> None:
    assert check_subsequent_responses(latency_records(), 0.3).verdict == "pass"  # p50 of 0.1..0.5 = 0.3
    failed = check_subsequent_responses(latency_records(), 0.25)
    assert failed.verdict == "fail" and failed.measured == pytest.approx(0.3)
    assert "p50 of 5 requests" in failed.reason


def test_token_counting() -> None:
    good = [{"reported_prompt_tokens": 9, "expected_prompt_tokens": 9,
             "reported_completion_tokens": 4, "expected_completion_tokens": 4}]
    assert check_token_counting(good).verdict == "pass"
    bad = check_token_counting([{**good[0], "reported_prompt_tokens": 8, "case": "http-p16-c1"}])
    assert bad.verdict == "fail" and "prompt_tokens reported 8, tokenizer counts 9 in http-p16-c1" in bad.reason
    assert check_token_counting(None).verdict == "skip"


def test_memory_peak_adds_gpu_memory_where_readable() -> None:
    assert check_memory(tele(dict(t_ns=1, peak_rss_bytes=4 * GIB)), 14.0).verdict == "pass"
    with_gpu = check_memory(tele(dict(t_ns=1, peak_rss_bytes=8 * GIB, gpu_mem_bytes=7 * GIB)), 14.0)
    assert with_gpu.verdict == "fail" and with_gpu.measured == pytest.approx(15.0)
    assert "15 GiB is not <= 14 GiB" in with_gpu.reason
    assert check_memory(tele(), 14.0).verdict == "skip"


def growth_case(per_request_mib: float, n: int = 12):
    records = frame(*[rec(i, test="memory") for i in range(n)])
    samples = [dict(t_ns=i * S + S // 2 + 1000, rss_bytes=int(500 * MIB + i * per_request_mib * MIB)) for i in range(n)]
    return records, tele(*samples)


def test_memory_stable_is_the_rss_slope_per_request() -> None:
    records, telemetry = growth_case(0.25)
    steady = check_memory_stable(records, telemetry, 1.0)
    assert steady.verdict == "pass" and steady.measured == pytest.approx(0.25)
    records, telemetry = growth_case(3.0)
    leaking = check_memory_stable(records, telemetry, 1.0)
    assert leaking.verdict == "fail" and "3 MiB/request is not <= 1 MiB/request" in leaking.reason
    records, telemetry = growth_case(3.0, n=5)
    assert check_memory_stable(records, telemetry, 1.0).verdict == "skip"
    assert check_memory_stable(records, tele(), 1.0).verdict == "skip"


def test_concurrency() -> None:
    overlapping = frame(*[rec(i, concurrency=4, case_id="cpu-p16-c4", submit_ns=i, end_ns=S + i) for i in range(4)])
    assert max_overlap(overlapping) == 4
    passed = check_concurrency(overlapping, outputs_match=True)
    assert passed.verdict == "pass" and passed.measured == "4/4 ok" and "up to 4 in flight" in passed.reason
    assert "not compared" in check_concurrency(overlapping).reason
    assert check_concurrency(overlapping, outputs_match=False, detail="request 2").verdict == "fail"
    one_failed = frame(rec(0, concurrency=4), rec(1, concurrency=4, ok=False, error_kind="exception:RuntimeError", error="x"))
    failed = check_concurrency(one_failed, outputs_match=True)
    assert failed.verdict == "fail" and "1 of 2 requests failed" in failed.reason
    assert check_concurrency(frame(rec(0)), outputs_match=True).verdict == "skip"


def cpu_case(percent: float):
    records = frame(rec(0, submit_ns=0, end_ns=S))
    return records, tele(dict(t_ns=S // 2, cpu_percent=percent), dict(t_ns=S // 4, cpu_percent=percent),
                         dict(t_ns=5 * S, cpu_percent=100.0))  # outside generation: ignored


def test_cpu_usage_is_info_on_the_cpu_provider() -> None:
    records, telemetry = cpu_case(30.0)
    assert check_cpu_usage(telemetry, records, "dml", 50.0).verdict == "pass"
    records, telemetry = cpu_case(80.0)
    failed = check_cpu_usage(telemetry, records, "dml", 50.0)
    assert failed.verdict == "fail" and failed.measured == pytest.approx(80.0)
    info = check_cpu_usage(telemetry, records, "cpu", 50.0)
    assert info.verdict == "info" and not info.gating and "CPU provider" in info.reason
    assert check_cpu_usage(tele(), records, "dml", 50.0).verdict == "skip"


def test_accelerator_utilisation() -> None:
    records = frame(rec(0, submit_ns=0, end_ns=S))
    busy = tele(dict(t_ns=S // 2, gpu_util_percent=42.0), dict(t_ns=S // 3, gpu_util_percent=7.0))
    assert check_accelerator_utilisation(busy, records, "dml", 0.0).measured == 42.0
    idle = tele(dict(t_ns=S // 2, gpu_util_percent=0.0))
    assert check_accelerator_utilisation(idle, records, "dml", 0.0).verdict == "fail"
    unreadable = check_accelerator_utilisation(tele(dict(t_ns=S // 2)), records, "dml", 0.0, "no PDH on linux")
    assert unreadable.verdict == "skip" and unreadable.reason == "no PDH on linux"
    assert check_accelerator_utilisation(busy, records, "cpu", 0.0).verdict == "skip"


def test_evaluate_gives_every_item_in_order_and_the_gate_follows_failures() -> None:
    records = latency_records()
    verdicts = evaluate(CheckInputs("cpu", records, tele(dict(t_ns=S // 2, peak_rss_bytes=GIB, cpu_percent=90.0)),
                                    load_s=1.0), Thresholds())
    assert [v.check for v in verdicts] == list(CHECKS)
    by_check = {v.check: v for v in verdicts}
    assert by_check["cpu_usage"].verdict == "info"
    assert by_check["subsequent_responses"].verdict == "pass" and by_check["memory"].verdict == "pass"
    assert gate(verdicts) == 0
    slow = evaluate(CheckInputs("cpu", records, tele(), load_s=1.0), Thresholds(first_response_s=0.1))
    assert gate(slow) == 1
    assert gate(skip_all("dml", "DirectML needs Windows")) == 0
    non_gating = Verdict("cpu_usage", "CPU usage", "fail", 90.0, 50.0, gating=False)
    assert gate([non_gating]) == 0


def test_table_lists_verdict_measured_threshold_and_case() -> None:
    verdicts = [check_first_response(latency_records(), 0.3), *skip_all("dml", "DirectML needs Windows")[:1]]
    table = format_table(verdicts).splitlines()
    assert table[0].split() == ["item", "verdict", "measured", "threshold", "case", "reason"]
    assert "First response (cold TTFT)" in table[2] and "FAIL" in table[2]
    assert "0.4 s" in table[2] and "<= 0.3 s" in table[2] and "cpu-p16-c1" in table[2]
    assert "SKIP" in table[3] and "DirectML needs Windows" in table[3]
