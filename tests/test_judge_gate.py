"""The gate on evidence: failures fail; a provider that had to be proven and was not fails too."""

from __future__ import annotations

from harness.judge.gate import gate, provider_of, unproven
from harness.judge.table import skip_all
from harness.measure.results import Verdict


def measured(provider: str, kind: str = "pass") -> list[Verdict]:
    """Every item of ``provider`` with ``kind`` where it applies (health and accelerator use do not on cpu)."""
    verdicts = skip_all(provider, "placeholder reason")
    for verdict in verdicts:
        if verdict.applicable:
            verdict.verdict = kind
    return verdicts


def test_everything_measured_and_passed_exits_0() -> None:
    result = gate(measured("cpu"), ["cpu"])
    assert result.code == 0 and result.message == "every gating item measured and passed for cpu"
    assert gate(measured("cpu") + skip_all("dml", "not installed")).code == 0  # dml not required


def test_a_gating_failure_exits_1_and_a_non_gating_one_does_not() -> None:
    verdicts = measured("cpu")
    verdicts[5].verdict = "fail"
    result = gate(verdicts)
    assert result.code == 1 and result.message == f"1 gating item(s) failed: {verdicts[5].check} [cpu]"
    verdicts = measured("cpu")
    info_fail = Verdict("cpu_usage", "CPU usage", "fail", 90.0, 50.0, gating=False, provider="cpu")
    assert gate(verdicts + [info_fail]).code == 0


def test_a_run_that_measured_nothing_exits_1_naming_the_provider() -> None:
    result = gate(skip_all("dml", "DmlExecutionProvider is not in this ONNX Runtime"))
    assert result.code == 1 and result.message == "nothing measured for dml"
    both = gate(skip_all("dml", "absent") + skip_all("qnn", "absent"))
    assert both.message == "nothing measured for dml, qnn"
    assert gate([]).code == 1 and gate([]).message == "nothing measured: the checklist is empty"


def test_a_required_provider_must_be_proven_even_when_another_is() -> None:
    verdicts = measured("cpu") + skip_all("dml", "absent")
    result = gate(verdicts, ["dml"])
    assert result.code == 1 and result.message == "nothing measured for dml"
    assert gate(verdicts, ["cpu", "dml"]).message == "nothing measured for dml"
    assert gate(measured("cpu"), ["cuda"]).message == "nothing measured for cuda"  # not even in the run


def test_skipped_or_inconclusive_items_of_a_required_provider_fail_by_name() -> None:
    verdicts = measured("cpu")
    by_key = {v.check: v for v in verdicts}
    by_key["memory_stable"].verdict = "inconclusive"
    by_key["concurrency"].verdict = "skip"
    result = gate(verdicts, ["cpu"])
    assert result.code == 1
    assert result.message == "not proven for cpu: memory_stable (inconclusive), concurrency (skip)"
    assert [v.check for v in unproven(verdicts, "cpu")] == ["memory_stable", "concurrency"]


def test_without_required_providers_one_proven_provider_is_enough() -> None:
    partial = measured("cpu")
    partial[0].verdict = "skip"
    assert gate(partial + measured("cuda")).code == 0
    result = gate(partial + skip_all("dml", "absent"))
    assert result.code == 1 and result.message.startswith("nothing measured for dml; not proven for cpu: model_loads")


def test_marginal_and_partial_count_as_measured_and_pass_the_gate() -> None:
    verdicts = measured("cpu")
    verdicts[2].verdict, verdicts[5].verdict = "pass (partial)", "marginal"
    assert gate(verdicts, ["cpu"]).code == 0


def test_failures_and_gaps_share_one_line() -> None:
    verdicts = measured("cpu", "fail")
    result = gate(verdicts + skip_all("dml", "absent"), ["dml"])
    assert result.code == 1 and "\n" not in result.message
    assert result.message.startswith("10 gating item(s) failed: model_loads [cpu], ") and " ...; " in result.message
    assert result.message.endswith("; nothing measured for dml")


def test_the_provider_comes_from_the_verdict_or_from_older_case_ids() -> None:
    assert provider_of(Verdict("x", "X", "pass", None, None, case="cpu-p16-c1")) == "cpu"
    assert provider_of(Verdict("x", "X", "pass", None, None, case="cpu-p16-c1", provider="dml")) == "dml"


def test_checklists_written_before_the_applicable_flag_follow_the_table() -> None:
    old = measured("cpu")
    for verdict in old:  # an older checklist.json: no flag, no target; health and accelerator use skipped
        verdict.applicable, verdict.target = True, ""
    assert gate(old, ["cpu"]).code == 0
    http = measured("remote")
    for verdict in http:
        verdict.target = "http"
    health = next(v for v in http if v.check == "health")
    health.verdict, health.applicable = "skip", True
    assert gate(http, ["remote"]).message == "not proven for remote: health (skip)"
