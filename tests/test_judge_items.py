"""Model load, health, provider proof, accelerator kind, CPU and accelerator use; the table itself."""

from __future__ import annotations

import pytest

from harness.config import Thresholds
from harness.judge.evidence import CheckInputs, Evidence
from harness.judge.table import BY_KEY, CHECKS, ITEMS, evaluate, skip_all
from judge_helpers import GIB, S, frame, judge, rec, tele


def test_model_loads() -> None:
    ok = judge("model_loads", load_s=2.5)
    assert ok.verdict == "pass" and ok.measured == 2.5 and ok.reason == "loaded in 2.5 s" and ok.samples == 1
    failed = judge("model_loads", load_error="InvalidProtobuf: model.onnx is corrupt")
    assert failed.verdict == "fail" and failed.reason == "load failed: InvalidProtobuf: model.onnx is corrupt"
    assert judge("model_loads").verdict == "skip" and judge("model_loads").reason == "the model load was not measured"


def test_health_applies_to_http_targets_only() -> None:
    ok = judge("health", target="http", health_model_loaded=True, health_detail='{"status":"ok"}')
    assert ok.verdict == "pass" and ok.reason == '{"status":"ok"}' and ok.measured == "ok"
    assert judge("health", target="http", health_model_loaded=True).reason == "the health endpoint reports the model loaded"
    failed = judge("health", target="http", health_model_loaded=False, health_detail='{"status": "loading"}')
    assert failed.verdict == "fail" and failed.measured == '{"status": "loading"}'
    assert failed.reason == 'the health endpoint does not report the model loaded: {"status": "loading"}'
    bare = judge("health", target="http", health_model_loaded=False)
    assert bare.measured == "model not loaded" and bare.reason == "the health endpoint does not report the model loaded"
    assert judge("health", target="http").reason == "the health endpoint was not asked"
    engine = judge("health", health_model_loaded=True)
    assert engine.verdict == "skip" and not engine.applicable
    assert engine.reason == "not applicable: health is checked on HTTP targets only"


def proof(share, requested="dml", kind="GPU", nodes=(70, 30)):
    return {"requested": requested, "execution_provider": "DmlExecutionProvider",
            "providers": [{"provider": "DmlExecutionProvider", "nodes": nodes[0], "node_share": share},
                          {"provider": "CPUExecutionProvider", "nodes": nodes[1], "node_share": round(1 - share, 2)}],
            "share_on_requested": share, "device_kind": kind}


def test_provider_active_is_the_share_of_kernel_nodes() -> None:
    ok = judge("provider_active", provider="dml", proof=proof(0.7))
    assert ok.verdict == "pass" and ok.samples == 100 and ok.case == "dml"
    failed = judge("provider_active", provider="dml", proof=proof(0.3))
    assert failed.verdict == "fail" and failed.measured == 0.3
    assert failed.reason == ("0.3 is not >= 0.5 in dml; share of 100 kernel nodes on DmlExecutionProvider "
                             "(others: CPUExecutionProvider 0.7)")


def test_a_proof_for_another_provider_or_without_requested_is_rejected() -> None:
    other = judge("provider_active", provider="dml", proof=proof(0.9, requested="cpu"))
    assert other.verdict == "fail" and other.reason == "the proof is for 'cpu', not 'dml'"
    anonymous = {k: v for k, v in proof(0.9).items() if k != "requested"}
    nameless = judge("provider_active", provider="dml", proof=anonymous)
    assert nameless.verdict == "fail" and "does not say which provider" in nameless.reason


def test_a_proof_without_attributed_nodes_is_inconclusive_and_none_skips() -> None:
    empty = judge("provider_active", provider="dml", proof={**proof(0.9), "share_on_requested": None})
    assert empty.verdict == "inconclusive"
    assert empty.reason == "the profile has no kernel nodes attributed to providers for DmlExecutionProvider"
    zero = judge("provider_active", provider="dml", proof=proof(0.9, nodes=(0, 0)))
    assert zero.verdict == "inconclusive"
    none = judge("provider_active", provider="dml")
    assert none.verdict == "skip" and none.reason == "no provider proof for dml (profiling was not run)"


def test_accelerator_kind_is_reported_never_gating() -> None:
    info = judge("accelerator_kind", provider="dml", proof=proof(0.9, kind="NPU"))
    assert info.verdict == "info" and info.measured == "NPU" and not info.gating
    assert info.reason == "DmlExecutionProvider runs on NPU"
    unknown = judge("accelerator_kind", provider="dml", proof=proof(0.9, kind=None))
    assert unknown.verdict == "skip" and unknown.reason == "the platform does not tell which device runs the provider"


def cpu_case(percent: float):
    records = frame(rec(0, submit_ns=0, end_ns=S))
    return records, tele(*[dict(t_ns=S // (i + 2), cpu_percent=percent) for i in range(3)],
                         dict(t_ns=5 * S, cpu_percent=100.0))  # outside generation: ignored


def test_cpu_usage_gates_on_accelerators_and_is_info_on_the_cpu_provider() -> None:
    records, telemetry = cpu_case(30.0)
    ok = judge("cpu_usage", records, telemetry, provider="dml")
    assert ok.verdict == "pass" and ok.gating and ok.samples == 3
    assert ok.reason == "30 % <= 50 %; mean of 3 samples, all cores = 100 %"
    records, telemetry = cpu_case(80.0)
    failed = judge("cpu_usage", records, telemetry, provider="dml")
    assert failed.verdict == "fail" and failed.measured == pytest.approx(80.0)
    info = judge("cpu_usage", records, telemetry, provider="cpu")
    assert info.verdict == "info" and not info.gating
    assert info.reason.startswith("info only on the cpu provider: 80 % is not <= 50 %")
    assert judge("cpu_usage", records, tele(), provider="dml").verdict == "skip"
    few = judge("cpu_usage", records, tele(dict(t_ns=S // 2, cpu_percent=1.0)), provider="dml")
    assert few.verdict == "inconclusive" and few.reason == "1 telemetry samples during generation, need >= 3"


def test_accelerator_utilisation() -> None:
    records = frame(rec(0, submit_ns=0, end_ns=S))
    busy = tele(dict(t_ns=S // 2, gpu_util_percent=42.0), dict(t_ns=S // 3, gpu_util_percent=7.0))
    verdict = judge("accelerator_utilisation", records, busy, provider="dml")
    assert verdict.verdict == "pass" and verdict.measured == 42.0
    assert verdict.reason == "42 % > 0 %; peak engine utilisation of this process over 2 samples"
    idle = judge("accelerator_utilisation", records, tele(dict(t_ns=S // 2, gpu_util_percent=0.0)), provider="dml")
    assert idle.verdict == "fail" and idle.reason.startswith("0 % is not > 0 %")
    unreadable = judge("accelerator_utilisation", records, tele(dict(t_ns=S // 2)), provider="dml",
                       gpu_counters_reason="no PDH on linux")
    assert unreadable.verdict == "skip" and unreadable.reason == "no PDH on linux"
    assert judge("accelerator_utilisation", records, tele(), provider="dml").reason == (
        "no GPU counter readings during generation")
    on_cpu = judge("accelerator_utilisation", records, busy, provider="cpu")
    assert on_cpu.verdict == "skip" and not on_cpu.applicable and "CPU provider uses no accelerator" in on_cpu.reason
    remote = judge("accelerator_utilisation", records, busy, provider="remote")
    assert not remote.applicable and "another process" in remote.reason


def test_the_table_names_family_unit_operator_and_minimum_for_every_item() -> None:
    assert list(CHECKS) == [item.key for item in ITEMS] and len(ITEMS) == 14
    for item in ITEMS:
        assert item.family and item.min_samples >= 1 and item.title
        if item.numeric:
            assert hasattr(Thresholds(), item.threshold), item.key
    assert BY_KEY["simple_query"].family == BY_KEY["subsequent_responses"].family
    assert "latency sweep" in BY_KEY["simple_query"].family and "concurrency 1" in BY_KEY["simple_query"].family


def test_evaluate_gives_every_item_in_order_with_provider_target_family_and_minimum() -> None:
    inputs = CheckInputs("cpu", frame(rec(0)), tele(dict(t_ns=S // 4, peak_rss_bytes=GIB)), Evidence(load_s=1.0))
    verdicts = evaluate(inputs, Thresholds())
    assert [v.check for v in verdicts] == list(CHECKS)
    for verdict, item in zip(verdicts, ITEMS):
        assert (verdict.provider, verdict.target, verdict.family, verdict.min_samples) == (
            "cpu", "engine", item.family, item.min_samples)
        assert verdict.title == item.title and verdict.unit == item.unit and verdict.comparison == item.operator
    by_key = {v.check: v for v in verdicts}
    assert by_key["memory"].verdict == "pass" and by_key["memory"].threshold == 14.0
    assert by_key["token_counting"].threshold == "exact" and by_key["model_loads"].case == "cpu"


def test_skip_all_keeps_given_verdicts_and_marks_what_does_not_apply() -> None:
    kept = judge("model_loads", load_error="broken")
    verdicts = skip_all("cpu", "the model did not load", keep=[kept])
    assert verdicts[0] is kept
    assert all(v.verdict == "skip" and v.reason == "the model did not load" for v in verdicts[1:])
    applicable = {v.check: v.applicable for v in verdicts}
    assert applicable["health"] is False and applicable["accelerator_utilisation"] is False
    assert applicable["memory_stable"] is True
    assert {v.applicable for v in skip_all("http-x", "down", target="http") if v.check == "health"} == {True}
