"""The checklist's terminal table and the folding of an unavailable provider (presentation only)."""

from __future__ import annotations

from harness.config import Thresholds
from harness.judge.table import skip_all
from harness.report.checklist_table import fold_unavailable, format_table, verdict_label
from judge_helpers import frame, judge, latency, rec

TEN = [(0.1 + 0.01 * i, 0.5 + 0.05 * i) for i in range(10)]


def test_table_lists_verdict_measured_threshold_and_case() -> None:
    failed = judge("first_response", frame(rec(0, cold=True, ttft_s=0.4)), thresholds=Thresholds(first_response_s=0.3))
    table = format_table([failed, *skip_all("dml", "DirectML needs Windows")[:1]]).splitlines()
    assert table[0].split() == ["item", "verdict", "measured", "threshold", "case", "reason"]
    assert "First response (cold TTFT)" in table[2] and "FAIL" in table[2]
    assert "0.4 s" in table[2] and "<= 0.3 s" in table[2] and "cpu-p16-c1" in table[2]
    assert "SKIP" in table[3] and "DirectML needs Windows" in table[3]


def test_new_kinds_read_as_words_and_intervals_show_beside_the_value() -> None:
    marginal = judge("simple_query", frame(*latency(*TEN)), thresholds=Thresholds(simple_query_p50_s=0.7))
    line = format_table([marginal]).splitlines()[2]
    assert "MARGINAL" in line and "0.725 s [0.55-0.9]" in line
    partial = judge("real_responses", frame(rec(0, test="real_responses"), rec(1, test="real_responses")))
    assert verdict_label(partial) == "PASS (partial)"
    few = judge("simple_query", frame(*latency(*TEN[:3])))
    assert verdict_label(few) == "INCONCLUSIVE"
    info = judge("cpu_usage", frame(rec(0)), provider="cpu")
    assert verdict_label(info) == "SKIP"


def test_a_non_gating_failure_says_so() -> None:
    verdict = judge("first_response", frame(rec(0, cold=True, ttft_s=0.4)), thresholds=Thresholds(first_response_s=0.3))
    verdict.gating = False
    assert verdict_label(verdict) == "FAIL (non-gating)"


def test_a_provider_skipped_for_one_reason_folds_into_one_row() -> None:
    measured = [judge("model_loads", load_s=1.0)]
    folded = fold_unavailable(skip_all("dml", "not installed") + measured)
    assert [v.check for v in folded] == ["all", "model_loads"]
    assert folded[0].title == "All 14 items" and folded[0].reason == "not installed" and folded[0].provider == "dml"
    mixed = skip_all("qnn", "a")
    mixed[3].reason = "b"
    assert len(fold_unavailable(mixed)) == 14
