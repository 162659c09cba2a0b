"""The single-run report renders from saved results folders: HTML, PNG, CSV, and damaged folders."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fixtures_reports import Rendered, fast_in_place, fast_slo_out, hashes  # noqa: F401 (fixtures)
from harness.judge.table import CHECKS, skip_all
from harness.errors import HarnessError
from harness.report import build_report
from harness.report.html import esc
from harness.report.plots import PLOTS
from report_helpers import FAST, SLOW, png_size


@pytest.fixture(scope="module")
def fast_report(fast_in_place: Rendered) -> Path:
    return fast_in_place.index


@pytest.fixture(scope="module")
def slow_report(tmp_path_factory) -> Path:
    return build_report([SLOW], tmp_path_factory.mktemp("slow"))


def _checklist(run: Path) -> list[dict]:
    return json.loads((run / "checklist.json").read_text())


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]


def test_html_has_a_row_per_checklist_item_with_its_verdict(fast_report):
    page = fast_report.read_text()
    checklist_html = page.split('id="checklist"')[1].split('id="serving"')[0]
    rows = re.findall(r"<tr>(.*?)</tr>", checklist_html)[1:]  # first row is the header
    verdicts = _checklist(FAST)
    assert len(rows) == len(verdicts)
    for row, verdict in zip(rows, verdicts):
        assert esc(verdict["title"]) in row
        assert f'class="verdict v-{verdict["verdict"]}"' in row


def test_failed_gating_check_turns_the_banner_red(slow_report, fast_report):
    assert "Checklist gate: FAIL (1 gating item(s) failed: concurrency [" in slow_report.read_text()
    assert "Checklist gate: PASS" in fast_report.read_text()


def test_every_plot_is_a_png_of_the_promised_size(fast_report):
    for spec in PLOTS:
        if spec.filename == "sweep.png":  # only for runs with --sweep (tests/test_sweep_report.py)
            assert "no rate sweep in this run" in fast_report.read_text()
            continue
        path = fast_report.parent / spec.filename
        assert png_size(path) == spec.size_px, spec.filename
        with Image.open(path) as image:
            image.verify()  # the whole file decodes, not only its header
        assert f'src="{spec.filename}"' in fast_report.read_text()


def test_saving_with_the_layout_run_once_gives_matplotlibs_own_png(tmp_path):
    """save_figure runs the constrained layout itself and skips savefig's layout-only draw: the
    bytes must stay what savefig writes with the engine still attached."""
    import io

    from harness.report.plots import NoData, new_figure, save_figure
    from harness.report.runs import load_run
    from harness.report.tables import build_tables

    run = load_run(SLOW)
    tables = build_tables(run)
    compared = 0
    for spec in PLOTS:
        figures = [new_figure(spec.size_px), new_figure(spec.size_px)]
        try:
            for figure in figures:
                spec.draw(figure, run, tables)
        except NoData:
            continue
        ours = tmp_path / spec.filename
        save_figure(figures[0], ours)
        theirs = io.BytesIO()
        figures[1].savefig(theirs, dpi=figures[1].dpi, format="png")
        assert figures[1].get_layout_engine() is not None  # matplotlib's path really had an engine
        assert ours.read_bytes() == theirs.getvalue(), spec.filename
        compared += 1
    assert compared >= 4

def test_run_strings_are_html_escaped(fast_report, slow_report):
    fast, slow = fast_report.read_text(), slow_report.read_text()
    assert "<script>" not in fast and "<script>" not in slow  # the page itself has no script either
    assert "&lt;script&gt;alert(&quot;not escaped&quot;)&lt;/script&gt; &amp; friends" in fast
    # An error message from the run, in the failures table.
    assert "request exceeded 2 s &lt;deadline&gt; &amp; was cancelled" in slow
    assert "<deadline>" not in slow


def test_page_is_self_contained(fast_report):
    page = fast_report.read_text()
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references
    for reference in references:
        assert not re.match(r"^[a-z]+://|^//", reference), reference
        if not reference.startswith("#"):
            assert (fast_report.parent / reference).is_file(), reference


def test_latency_csv_percentiles_match_hand_computed_medians(fast_report):
    latency = pd.read_csv(fast_report.parent / "latency.csv")
    for case in ("cpu-engine-fp32-p16-n16-c1", "cpu-engine-fp32-p128-n16-c1"):
        warm = [r for r in _records(FAST) if r["test"] == "latency" and r["case_id"] == case and not r["cold"] and r["ok"]]
        row = latency[(latency["test"] == "latency") & (latency["case_id"] == case)].iloc[0]
        assert row["n_warm_ok"] == len(warm)
        assert row["ttft_p50_s"] == pytest.approx(statistics.median(r["ttft_s"] for r in warm))
        assert row["e2e_p50_s"] == pytest.approx(statistics.median(r["e2e_s"] for r in warm))
        assert row["decode_tok_s_p50"] == pytest.approx(statistics.median(r["decode_tok_s"] for r in warm))
    cold = [r for r in _records(FAST) if r["cold"]][0]
    first = latency[(latency["test"] == "latency") & (latency["case_id"] == "cpu-engine-fp32-p16-n16-c1")].iloc[0]
    assert first["cold_ttft_s"] == pytest.approx(cold["ttft_s"])


def test_concurrency_csv_counts_errors_and_throughput_over_the_window(slow_report):
    table = pd.read_csv(slow_report.parent / "concurrency.csv")
    row = table[table["case_id"] == "cpu-engine-fp32-p16-n16-c4"].iloc[0]
    records = [r for r in _records(SLOW) if r["case_id"] == "cpu-engine-fp32-p16-n16-c4"]
    window = (max(r["end_ns"] for r in records) - min(r["submit_ns"] for r in records)) / 1e9
    ok = [r for r in records if r["ok"]]
    assert (row["requests"], row["errors"]) == (len(records), 1)
    assert row["error_kinds"] == "timeout x1"
    assert row["requests_per_s"] == pytest.approx(len(ok) / window)
    assert row["output_tok_per_s"] == pytest.approx(sum(r["completion_tokens"] for r in ok) / window)


def test_checklist_csv_comes_first_in_the_files_and_has_every_verdict(fast_report):
    frame = pd.read_csv(fast_report.parent / "checklist.csv")
    assert list(frame["check"]) == [v["check"] for v in _checklist(FAST)]
    assert list(frame.columns[:4]) == ["title", "verdict", "measured", "threshold"]


def test_unstable_measurements_sit_under_their_table_and_skip_reasons_in_the_checklist(fast_report):
    page = fast_report.read_text()
    latency = page.split('id="latency"')[1].split('id="concurrency"')[0]
    assert "latency / cpu-engine-fp32-p128-n16-c1: TTFT only 3 samples (want &gt;= 5)" in latency
    checklist_html = page.split('id="checklist"')[1].split('id="serving"')[0]
    for verdict in _checklist(FAST):
        if verdict["verdict"] == "skip":
            assert esc(verdict["reason"]) in checklist_html


def test_a_run_that_measured_nothing_says_so_in_the_gate_banner(tmp_path):
    run = tmp_path / "run"  # as a run on a provider that is not installed leaves it: no records, every item skipped
    run.mkdir()
    shutil.copy(FAST / "environment.json", run)
    (run / "results.jsonl").write_text("")
    skipped = [dataclasses.asdict(v) for v in skip_all("dml", "dml not installed")]
    (run / "checklist.json").write_text(json.dumps(skipped))
    page = build_report(run).read_text()
    assert "Checklist gate: FAIL (nothing measured for dml)" in page


def test_a_provider_skipped_entirely_is_one_row_on_the_page_but_every_row_in_the_csv(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FAST, run)
    checklist = json.loads((run / "checklist.json").read_text())
    reason = "dml not installed: DmlExecutionProvider is not in this ONNX Runtime"
    checklist += [dict(checklist[0], check=check, title=title, verdict="skip", measured=None, threshold=None,
                       case="dml", provider="dml", reason=reason) for check, title in CHECKS.items()]
    (run / "checklist.json").write_text(json.dumps(checklist))
    page = build_report(run).read_text()
    assert page.count(esc(reason)) == 1  # the folded table row (the first screen names the provider untested)
    assert f"All {len(CHECKS)} items" in page and "<dt>not tested: dml</dt><dd>dml not installed</dd>" in page
    assert sum(1 for line in (run / "checklist.csv").read_text().splitlines() if ",dml," in line) == len(CHECKS)


def test_metric_definitions_are_stated(fast_report):
    page = fast_report.read_text()
    assert "time to first token: from submitting the request to the first generated token" in page
    assert esc("(E2E - TTFT) / (output tokens - 1)") in page


@pytest.fixture(scope="module")
def results_only_truncated(tmp_path_factory) -> Path:
    """A folder holding only results.jsonl, its last record cut in the middle as a crash would: the
    two damages of the next two tests, in one render."""
    run = tmp_path_factory.mktemp("partial") / "run"
    run.mkdir()
    text = (FAST / "results.jsonl").read_text()
    (run / "results.jsonl").write_text(text[: len(text) - 200])
    return build_report(run, run.parent / "out")


def test_truncated_last_line_still_renders(results_only_truncated):
    page = results_only_truncated.read_text()
    assert "is truncated (interrupted run?); skipped" in page
    assert f"<div class=\"n\">{len(_records(FAST)) - 1}</div><div class=\"l\">requests recorded" in page


def test_folder_with_only_results_renders_and_names_what_is_missing(results_only_truncated):
    page, out = results_only_truncated.read_text(), results_only_truncated.parent
    for name in ("telemetry.csv", "environment.json", "checklist.json", "provider_proof.json", "benchmark.json"):
        assert f"<li>{name}</li>" in page
    assert "Memory and CPU over time: telemetry.csv missing or empty" in page
    assert (out / "latency_vs_prompt.png").is_file()
    assert not (out / "telemetry.png").exists()


def test_report_written_into_the_run_folder_leaves_results_untouched(fast_in_place):
    assert fast_in_place.code == 0 and fast_in_place.index == fast_in_place.run / "index.html"
    after = {name: digest for name, digest in hashes(fast_in_place.run).items() if name in fast_in_place.before}
    assert after == fast_in_place.before
    assert set(fast_in_place.before) < set(hashes(fast_in_place.run))  # and the report did land there


def test_not_a_results_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(HarnessError, match="no results files in"):
        build_report(tmp_path)
    with pytest.raises(HarnessError, match="results folder not found"):
        build_report(tmp_path / "nowhere")


def test_command_renders_one_folder(fast_slo_out, fast_in_place):
    for rendered in (fast_slo_out, fast_in_place):  # --out DIR, and into the run folder itself
        assert rendered.code == 0 and rendered.index.is_file()
        assert rendered.stdout == f"report: {rendered.index}\n"
    assert fast_slo_out.index.parent != fast_slo_out.run and not (fast_slo_out.run / "index.html").exists()


def test_command_help_renders_inside_the_main_parser():
    # argparse %-formats help strings; a stray "%" breaks `phi3-harness --help` for every command.
    import argparse

    from harness.commands import report as report_command

    parser = argparse.ArgumentParser(prog="phi3-harness")
    sub = parser.add_subparsers()
    report_parser = sub.add_parser("report", help=report_command.HELP, description=report_command.HELP)
    report_command.add_arguments(report_parser)
    assert "--fail-on-regression" in report_parser.format_help()
    assert "report" in parser.format_help()
