"""Run comparison and the regression gate, on the saved fixture runs and on hand-made metrics."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.report import build_report, check_regressions
from harness.report.compare import comparison_plot_size, find_regressions, worse_pct
from report_helpers import FAST, SLOW, png_size, run_report_command


def _metrics(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(metric label, better, value) rows for one case, gated."""
    return pd.DataFrame(
        [{"metric": m, "test": "latency", "case": "cpu-p16-c1", "unit": "u", "better": b, "gated": True, "value": v}
         for m, b, v in rows]
    )


def test_worse_pct_follows_each_metrics_direction():
    assert worse_pct(10.0, 11.5, "lower") == pytest.approx(15.0)
    assert worse_pct(10.0, 8.0, "lower") == pytest.approx(-20.0)
    assert worse_pct(100.0, 85.0, "higher") == pytest.approx(15.0)
    assert worse_pct(100.0, 120.0, "higher") == pytest.approx(-20.0)


def test_gate_flags_only_changes_beyond_the_limit_in_the_worse_direction():
    baseline = _metrics([("TTFT p50", "lower", 10.0), ("decode tok/s p50", "higher", 100.0), ("E2E p50", "lower", 50.0)])
    current = _metrics([("TTFT p50", "lower", 11.5), ("decode tok/s p50", "higher", 95.0), ("E2E p50", "lower", 40.0)])
    found = find_regressions(baseline, current, limit_pct=10)
    assert [(r.metric, r.baseline, r.current) for r in found] == [("TTFT p50", 10.0, 11.5)]
    assert found[0].worse_pct == pytest.approx(15.0)
    assert find_regressions(baseline, current, limit_pct=20) == []


def test_gate_passes_on_equal_runs():
    assert check_regressions(FAST, FAST, 10) == []


def test_gate_fails_on_a_made_worse_run_naming_metric_and_both_values():
    found = check_regressions(FAST, SLOW, 10)
    names = {(r.metric, r.test, r.case) for r in found}
    assert ("TTFT p50", "latency", "cpu-p16-c1") in names
    assert ("decode tok/s p50", "latency", "cpu-p16-c1") in names
    message = next(r for r in found if r.metric == "TTFT p50" and r.case == "cpu-p16-c1").message()
    assert message.startswith("regression: TTFT p50 (lower is better) in latency/cpu-p16-c1: baseline ")
    assert " ms, now " in message and "% worse (limit 10 %)" in message


def test_a_faster_run_is_not_a_regression():
    assert check_regressions(SLOW, FAST, 10) == []


def test_gate_refuses_runs_with_no_case_in_common(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    lines = (FAST / "results.jsonl").read_text().replace("cpu-p", "dml-p").replace('"cpu"', '"dml"')
    (other / "results.jsonl").write_text(lines)
    with pytest.raises(HarnessError, match="no gated metric is in both runs"):
        check_regressions(FAST, other, 10)


def test_comparison_page_shows_both_runs_ratios_and_plot(tmp_path):
    index = build_report([FAST, SLOW], tmp_path / "cmp")
    page = index.read_text()
    assert "phi3-harness comparison: cpu-fast vs cpu-slow" in page
    assert "ratio cpu-slow / cpu-fast" in page
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert (table["ratio_1"] - table["value_1"] / table["value_0"]).abs().max() < 1e-12
    gated = int(table["gated"].sum())
    assert png_size(tmp_path / "cmp" / "comparison.png") == comparison_plot_size(gated, 1)
    for link in ("runs/0-cpu-fast/index.html", "runs/1-cpu-slow/index.html"):
        assert f'href="{link}"' in page and (tmp_path / "cmp" / link).is_file()


def test_command_gate_exit_codes_both_ways(tmp_path, capsys):
    code, out = run_report_command(
        [str(FAST), "--baseline", str(FAST), "--fail-on-regression", "10", "--out", str(tmp_path / "same")], capsys
    )
    assert code == 0 and "regression gate: PASS" in out

    code, out = run_report_command(
        [str(SLOW), "--baseline", str(FAST), "--fail-on-regression", "10", "--out", str(tmp_path / "worse")], capsys
    )
    assert code == 1
    assert "regression: TTFT p50 (lower is better) in latency/cpu-p16-c1: baseline" in out
    assert "regression gate: FAIL" in out
    assert "Regression gate: FAIL" in (tmp_path / "worse" / "index.html").read_text()


def test_command_gate_without_a_baseline_is_an_error(capsys):
    code, out = run_report_command([str(FAST), "--fail-on-regression", "10"], capsys)
    assert code == 2 and "add --baseline RUN_DIR" in out


def test_gate_against_a_run_without_records_is_an_error_not_a_pass(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.jsonl").write_text("")
    code, out = run_report_command(
        [str(empty), "--baseline", str(FAST), "--fail-on-regression", "10", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "no gated metric is in both runs" in out
