"""Run comparison and the regression gate on recorded run folders (tests/fixtures/make_runs.py).

Each verdict kind is pinned on a pair of saved runs; refusals, bad limits and the page too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from fixtures_reports import cli_report, fast_in_place  # noqa: F401 (fixture)
from harness.errors import HarnessError
from harness.report import build_report
from harness.report.compare import comparison_plot_size
from harness.report.gate import compare_runs, run_differences
from harness.report.runs import load_run
from report_helpers import FAST, RUNS, SLOW, png_size, run_report_command

FAST_AGAIN = RUNS / "cpu-fast-again"
NOISY = RUNS / "cpu-noisy"
N32 = RUNS / "cpu-n32"
OTHER_MODEL = RUNS / "cpu-other-model"
P16 = "cpu-engine-fp32-p16-n16-c1"


def _verdicts(baseline, current, limit=10.0, **kwargs) -> dict[tuple[str, str, str], str]:
    comparison = compare_runs(load_run(baseline), load_run(current), limit, **kwargs)
    return {(r.key[0], r.case_id, r.metric.label): r.result.verdict for r in comparison.results}


def _gate(tmp_path, capsys, current, baseline, *flags: str) -> tuple[int, str]:
    out = tmp_path / "cmp"
    if out.exists():  # report folders are exclusive: each call of a test writes its own
        out = tmp_path / f"cmp-{len(list(tmp_path.glob('cmp*')))}"
    return run_report_command([str(current), "--baseline", str(baseline), "--out", str(out), *flags], capsys)


def test_a_slower_run_is_a_regression_where_samples_suffice():
    verdicts = _verdicts(FAST, SLOW)
    assert verdicts[("latency", P16, "TTFT")] == "regression"
    assert verdicts[("latency", P16, "decode tok/s")] == "regression"
    assert verdicts[("memory", P16, "E2E")] == "regression"


def test_a_faster_run_is_an_improvement_never_a_regression():
    verdicts = _verdicts(SLOW, FAST)
    assert verdicts[("latency", P16, "E2E")] == "improvement"
    assert "regression" not in verdicts.values()


def test_runs_of_equal_speed_show_no_change_within_the_limit():
    verdicts = _verdicts(FAST, FAST_AGAIN, limit=25)
    assert verdicts[("memory", P16, "E2E")] == "no change"
    assert "regression" not in verdicts.values() and "improvement" not in verdicts.values()


def test_a_noisy_run_is_inconclusive_and_says_how_many_samples_would_settle_it():
    comparison = compare_runs(load_run(FAST), load_run(NOISY), 10)
    inconclusive = comparison.of("inconclusive")
    assert comparison.count("regression") == 0 and inconclusive
    tested = [r.result for r in inconclusive if r.result.p_value is not None]
    assert any(r.samples_needed and r.samples_needed > r.n_baseline for r in tested)
    assert all("straddles" in r.reason or "not significant" in r.reason for r in tested)


def test_too_few_samples_are_inconclusive_not_tested():
    comparison = compare_runs(load_run(FAST), load_run(SLOW), 10)
    few = [r for r in comparison.results if r.case_id == "cpu-engine-fp32-p128-n16-c1" and r.key[0] == "latency"]
    assert {r.result.verdict for r in few} == {"inconclusive"}
    assert all(r.result.p_value is None and r.result.samples_needed == 5 for r in few)
    assert few[0].result.reason == "too few samples (3 vs 3, want >= 5 in each run)"


def test_cases_pair_on_their_fields_not_their_ids(tmp_path):
    # Same case ids, other prompt length in the memory test: the "cpu-memory" +1176 %.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    rows = [json.loads(line) for line in (FAST / "results.jsonl").read_text().splitlines()]
    for row in rows:
        if row["test"] == "memory":
            row["prompt_length"] = 1024
        row["case_id"] = "whatever"
    (renamed / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (renamed / "environment.json").write_text((FAST / "environment.json").read_text())
    comparison = compare_runs(load_run(FAST), load_run(renamed), 10)
    assert {r.key[0] for r in comparison.results} == {"latency", "concurrency"}  # memory unpaired
    assert comparison.only_baseline == [P16] and comparison.only_current == ["whatever"]


# The baseline of the commands below is cpu-fast with its own report (as `run` leaves a run folder):
# its plots are copied, not drawn again (test_plot_reuse.py proves when that is allowed).


@pytest.fixture(scope="module")
def slow_gate(tmp_path_factory, fast_in_place) -> tuple[int, str]:
    """`report cpu-slow --baseline cpu-fast --fail-on-regression 10`, run once for several tests."""
    return cli_report(str(SLOW), "--baseline", str(fast_in_place.run), "--fail-on-regression", "10",
                      "--out", str(tmp_path_factory.mktemp("slow") / "cmp"))


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, fast_in_place) -> tuple[int, str, Path]:
    """`report cpu-fast-again cpu-other-model --baseline cpu-fast --fail-on-regression 25
    --allow-mismatch`: two comparisons on one page, the second of runs that differ (model,
    ONNX Runtime), neither with a regression; cpu-other-model's has 3 inconclusive metrics."""
    out = tmp_path_factory.mktemp("three") / "cmp"
    code, printed = cli_report(str(FAST_AGAIN), str(OTHER_MODEL), "--baseline", str(fast_in_place.run),
                               "--fail-on-regression", "25", "--allow-mismatch", "--out", str(out))
    return code, printed, out


def test_command_exit_codes_follow_the_verdicts(slow_gate, three_runs, fast_in_place, tmp_path, capsys):
    code, out = slow_gate
    assert code == 1 and "regression gate cpu-slow vs cpu-fast: FAIL at 10 %" in out
    # inconclusive metrics alone pass the gate (exit 0) ...
    code, out, _ = three_runs
    assert code == 0 and "regression gate cpu-other-model vs cpu-fast: PASS at 25 % (0 regression, 3 inconclusive)" in out
    assert "regression gate cpu-fast-again vs cpu-fast: PASS at 25 % (0 regression" in out
    # ... unless --fail-on-inconclusive: then they alone fail it
    code, out = _gate(tmp_path, capsys, NOISY, fast_in_place.run, "--fail-on-regression", "10", "--fail-on-inconclusive")
    assert code == 1 and re.search(r"regression gate cpu-noisy vs cpu-fast: FAIL at 10 % \(0 regression, [1-9]\d* inconclusive\)", out)


def test_terminal_table_fits_100_columns_and_shows_both_medians_ratio_and_verdict(slow_gate):
    code, out = slow_gate
    assert code == 1
    lines = out.splitlines()
    assert max(len(line) for line in lines if not line.startswith("comparison: ")) <= 100
    row = next(line for line in lines if line.strip().startswith("TTFT") and "REGRESSION" in line)
    assert re.search(r"\d ms +\d.* ms +x1\.\d+ \[1\.\d+-1\.\d+\]", row), row
    assert any(line.startswith(f"latency · {P16} (6 vs 6 samples)") for line in lines)


def test_runs_with_no_case_in_common_are_refused_naming_the_differing_keys(tmp_path, capsys):
    code, out = _gate(tmp_path, capsys, N32, FAST, "--fail-on-regression", "10")
    assert code == 2
    assert "have no case in common (max_new_tokens 16 vs 32)" in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "cmp" / "index.html").exists()  # no page for a refused comparison


def test_other_model_or_onnxruntime_is_refused_unless_allowed_and_then_flagged(tmp_path, capsys, three_runs):
    code, out = _gate(tmp_path, capsys, OTHER_MODEL, FAST, "--fail-on-regression", "10")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert "model sha256 differs (9f2c1e0b7d9f vs 0123456789ab)" in out
    assert "onnxruntime differs (1.32.0 vs 1.20.1)" in out and "--allow-mismatch" in out
    code, out, allowed = three_runs
    assert code == 0 and "compared anyway (--allow-mismatch): model sha256 differs" in out
    page = (allowed / "index.html").read_text()
    # flagged once: for the pair that differs, not for cpu-fast-again
    assert page.count("compared although the runs differ (--allow-mismatch)") == 1
    assert "cpu-other-model vs cpu-fast: compared although the runs differ" in page


def test_runs_whose_sessions_ran_other_threading_are_not_comparable() -> None:
    def stamp(threads: int, source: str, **extra) -> dict:
        threading = {"intra_op_num_threads": threads, "inter_op_num_threads": 0, "intra_op_threads_source": source,
                     "allow_spinning": False, "force_spinning_stop": False, "dynamic_block_base": 0,
                     "execution_mode": "sequential"}
        return {"model": {"sha256": "ab" * 32}, "onnxruntime": {"version": "1.32.0"},
                "threading": {"cpu": threading, **extra}}

    one = stamp(1, "default: one thread for a model folder under 32 MB")
    assert run_differences(stamp(2, "default: one per physical core"), one) == [
        "cpu threads differ (intra-op 2, inter-op 0, spinning off, sequential vs intra-op 1, inter-op 0, "
        "spinning off, sequential)"]
    assert run_differences(stamp(1, "configured"), one) == []  # the same threads, chosen another way
    assert run_differences(stamp(2, "configured", dml={"broken": True}), stamp(2, "configured", dml={})) == []
    older = {"model": {"sha256": "ab" * 32}, "onnxruntime": {"version": "1.32.0"}}  # stamped before threading was
    assert run_differences(older, one) == [] and run_differences(one, older) == []


def test_a_gate_that_tested_nothing_is_an_error_not_a_pass(tmp_path, capsys):
    few = tmp_path / "few"
    few.mkdir()
    rows = [line for line in (FAST / "results.jsonl").read_text().splitlines()
            if json.loads(line)["prompt_length"] == 128]  # only the 3-sample latency case
    (few / "results.jsonl").write_text("\n".join(rows) + "\n")
    code, out = _gate(tmp_path, capsys, few, few, "--fail-on-regression", "10")
    assert code == 2 and "no metric could be tested" in out and "cannot pass" in out
    assert "PASS" not in out


def test_gate_against_a_run_without_records_is_an_error_not_a_pass(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.jsonl").write_text("")
    (empty / "environment.json").write_text((FAST / "environment.json").read_text())
    code, out = _gate(tmp_path, capsys, empty, FAST, "--fail-on-regression", "10")
    assert code == 2 and "no case in common" in out and "PASS" not in out


@pytest.mark.parametrize("bad", ["nan", "inf", "-5", "ten"])
def test_a_limit_that_is_not_a_finite_non_negative_number_is_a_one_line_error(tmp_path, capsys, bad):
    code, out = _gate(tmp_path, capsys, SLOW, FAST, "--fail-on-regression", bad)
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert f"--fail-on-regression {bad!r} is not a finite number >= 0" in out


def test_fail_on_inconclusive_needs_a_limit_and_a_gate_needs_a_baseline(capsys):
    code, out = run_report_command([str(FAST), str(SLOW), "--fail-on-inconclusive"], capsys)
    assert code == 2 and "add --fail-on-regression PCT" in out
    code, out = run_report_command([str(FAST), "--fail-on-regression", "10"], capsys)
    assert code == 2 and "add --baseline RUN_DIR" in out


def test_comparison_page_has_cases_plot_definitions_and_checklists_per_provider(three_runs):
    _, _, out = three_runs
    page = (out / "index.html").read_text()
    assert "phi3-harness comparison: cpu-fast vs cpu-fast-again vs cpu-other-model" in page
    assert "median cpu-fast" in page and "median cpu-fast-again" in page and "simultaneous 95 % interval" in page
    assert "Definitions: how runs are compared" in page and "Mann-Whitney" in page and "Holm" in page
    checklists = page.split('id="checklists"')[1].split('id="definitions"')[0]
    # cpu-fast-again's checklist lists a skipped dml first: cpu's rows still show cpu's verdicts
    cpu_rows = [row for row in re.findall(r"<tr>(.*?)</tr>", checklists) if row.startswith("<td>cpu</td>")]
    loads = next(row for row in cpu_rows if "Model loads" in row)
    assert loads.count('class="verdict v-pass"') == 3
    assert "<td>dml</td>" in checklists and "every item" in checklists and "dml not installed" in checklists
    table = pd.read_csv(out / "comparison.csv")
    assert not (out / "comparison.png").exists()  # several comparisons: one numbered plot each
    for number, current in enumerate(("cpu-fast-again", "cpu-other-model"), start=1):
        tested = int(table.loc[table["current"] == current, "worse"].notna().sum())
        assert tested and png_size(out / f"comparison-{number}.png") == comparison_plot_size(tested)
        assert f'src="comparison-{number}.png"' in page
    for link in ("runs/0-cpu-fast/index.html", "runs/1-cpu-fast-again/index.html", "runs/2-cpu-other-model/index.html"):
        assert f'href="{link}"' in page and (out / link).is_file()


def test_comparison_page_lists_each_cases_metrics_under_its_own_heading_row(three_runs):
    _, _, out = three_runs
    page = (out / "index.html").read_text()
    first = page.split("<h3>cpu-fast-again against cpu-fast</h3>")[1].split("</table>")[0]
    groups = re.findall(r'<tbody><tr class="case"><th colspan="6" scope="rowgroup">(.*?)</th></tr>(.*?)</tbody>', first)
    assert [heading for heading, _ in groups] == [
        f"latency · {P16} (6 vs 6 samples)", "latency · cpu-engine-fp32-p128-n16-c1 (3 vs 3 samples)",
        "concurrency · cpu-engine-fp32-p16-n16-c4 (8 vs 8 samples)", f"memory · {P16} (10 vs 10 samples)"]
    for _, rows in groups:  # six cells a row, the metric first; the case id only in the heading
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", rows)]
        assert [c[0] for c in cells] == ["TTFT", "E2E", "decode tok/s"] and {len(c) for c in cells} == {6}
        assert not any("cpu-engine" in cell for row in cells for cell in row)
    few = groups[1][1]
    assert few.count('<td class="num">–</td>') == 6 and few.count(">inconclusive (n~5)<") == 3  # upper case is CSS


def test_refusal_is_a_harness_error_for_library_callers(tmp_path):
    with pytest.raises(HarnessError, match=r"no case in common \(max_new_tokens 16 vs 32\)"):
        compare_runs(load_run(FAST), load_run(N32), 10)
    with pytest.raises(HarnessError, match=r"no case in common \(max_new_tokens 16 vs 32\)"):
        build_report([FAST, N32], tmp_path / "cmp")  # several folders: build_report compares them
    assert not (tmp_path / "cmp").exists()


def test_ratio_ticks_on_a_wide_axis_never_crowd_and_keep_x1():
    import numpy as np

    from harness.report.compare import spaced_ticks

    for low, high in ((0.18, 14.0), (0.85, 1.4), (0.05, 60.0)):
        ticks = spaced_ticks(low, high)
        assert 1.0 in ticks and all(low <= t <= high for t in ticks)
        gaps = np.diff(np.log(ticks))
        assert gaps.min() >= (np.log(high) - np.log(low)) / 14 - 1e-12
    assert {0.9, 1.1} <= set(spaced_ticks(0.85, 1.4))  # a narrow axis keeps the fine ticks
    assert 0.9 not in spaced_ticks(0.18, 14.0) and 1.1 not in spaced_ticks(0.18, 14.0)
