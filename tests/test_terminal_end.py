"""What a run shows at the end: the checklist in 100 columns, colour only on the verdict cell, the
gate's reason naming what was and was not measured, pytest's noise dropped by the relay, and the
progress line (throttled, silent when not asked for)."""

from __future__ import annotations

import io
import os
import re
import sys

from harness.measure.results import Verdict
from harness.report.checklist_text import checklist_lines
from harness.report.terminal import gate_line
from harness.suite.progress import ProgressLine, ProgressTicker
from harness.suite.runner import run_suites

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _verdicts() -> list[Verdict]:
    long_reason = "dml not installed: " + "DmlExecutionProvider is not in this ONNX Runtime; " * 5
    return [
        Verdict("all", "All 14 items", "skip", None, None, case="dml", reason=long_reason),
        Verdict("simple_query", "Simple query (E2E p50)", "pass", 0.0101, 1.0, unit="s", comparison="<=",
                case="cpu-p16-c1", reason="10 ms <= 1 s"),
        Verdict("memory_stable", "Memory stable", "pass", 4.87e-15, 1.0, unit="MiB/request", comparison="<=",
                case="cpu-memory", reason="ok"),
        Verdict("concurrency", "Concurrency", "fail", "3/4 ok, 2 generating at once", "all ok", case="cpu-p16-c4, cpu-p128-c4, "
                "cpu-p16-r100, cpu-p128-r100, cpu-p1024-r100", reason="one request failed"),
        Verdict("cpu_usage", "CPU usage", "info", 15.8, 50.0, unit="%", comparison="<=", case="cpu",
                reason="info only", gating=False),
        Verdict("subsequent_responses", "Subsequent responses (warm TTFT p50)", "inconclusive", 0.000592, 0.3,
                unit="s", comparison="<=", case="cpu-engine-fp32-p16-n16-c1", reason="too few", gating=False,
                low=0.000495, high=0.000955),
    ]


def test_checklist_fits_100_columns_and_moves_long_text_under_its_row() -> None:
    lines = checklist_lines(_verdicts())
    assert max(len(line) for line in lines) <= 100
    text = "\n".join(lines)
    assert "10.1 ms" in text and "<= 1 s" in text  # seconds in a readable unit
    assert "≈0 MiB/request" in text and "e-15" not in text  # a 4.87e-15 slope is zero to the precision measured
    assert "    cpu-p16-c4, cpu-p128-c4" in text and "one request failed" in text  # long case: own line
    assert "10 ms <= 1 s" not in text  # a pass's reason repeats its row and is left to the report
    assert "592 µs" in text and "threshold <= 300 ms; " in text  # a long label: the threshold goes below


def test_a_partial_pass_keeps_the_measured_column_in_line_with_the_other_rows() -> None:
    partial = Verdict("real_responses", "Real responses", "pass (partial)", "3/3 distinct", "pass", case="cpu",
                      reason="reference comparison skipped")
    lines = checklist_lines([*_verdicts()[1:3], partial])
    rows = [line for line in lines if line.startswith(("Simple query", "Memory stable", "Real responses"))]
    assert rows[-1].startswith("Real responses") and "PASS (partial)" in rows[-1]
    assert len({row.index(value) for row, value in zip(rows, ("10.1 ms", "≈0", "3/3 distinct"))}) == 1


def test_colour_paints_only_the_verdict_cell() -> None:
    plain, coloured = checklist_lines(_verdicts()), checklist_lines(_verdicts(), colour=True)
    assert [ANSI.sub("", line) for line in coloured] == plain
    assert any("\x1b[31;1mFAIL\x1b[0m" in line for line in coloured)


def test_gate_line_wraps_a_long_reason_instead_of_cutting_it() -> None:
    reason = "not proven for cpu: " + ", ".join(f"item_{n} (skip)" for n in range(20))
    lines = gate_line(1, reason).splitlines()
    assert lines[0].startswith("gate: FAIL: not proven for cpu") and len(lines) > 1
    assert max(len(line) for line in lines) <= 100 and "item_19 (skip)" in lines[-1]
    assert gate_line(0, "ok", colour=True) == "\x1b[32mgate: PASS: ok\x1b[0m"


def test_ticker_is_silent_without_a_pipe_and_throttled_with_one() -> None:
    silent = ProgressTicker(fd=None)
    silent.enabled = False
    silent.start_test("t", 0, 1)
    silent.request_done()  # nothing to write to: must not raise
    read_fd, write_fd = os.pipe()
    ticker = ProgressTicker(fd=write_fd)
    ticker.start_test("test_latency[cpu-p16-c1]", 3, 10)
    for _ in range(1000):
        ticker.request_done()
    os.close(write_fd)
    lines = os.fdopen(read_fd).read().splitlines()
    assert lines[0] == "[3/10] test_latency[cpu-p16-c1]: 0 requests, 0.0 s"
    assert len(lines) < 10  # 1000 requests in far less than a second: a handful of lines at most


def test_progress_line_waits_then_redraws_in_place_and_clears() -> None:
    stream = io.StringIO()
    waiting = ProgressLine(stream, delay_s=60)
    waiting.show("x")
    assert stream.getvalue() == ""
    line = ProgressLine(stream, delay_s=0)
    line.show("a" * 300)
    line.clear()
    assert stream.getvalue() == "\r\x1b[K" + "a" * 99 + "\r\x1b[K"


def test_relay_drops_pytest_progress_characters_and_holds_back_the_stats_line() -> None:
    script = ("print('..sss.F   [ 40%]'); print('kept line'); print('sss'); "
              "print('21 passed, 75 skipped in 13.49s')")
    out = io.StringIO()
    outcome = run_suites([sys.executable, "-c", script], out=out)
    assert out.getvalue() == "kept line\n"
    assert outcome.stats == "21 passed, 75 skipped in 13.49s" and outcome.status == 0


def test_the_suites_child_is_no_part_of_the_callers_pytest_session(monkeypatch) -> None:
    # `run` started inside a pytest-xdist worker: PYTEST_XDIST_WORKER made pytest-benchmark in the child
    # switch itself off (one round per latency case, so the latency items went inconclusive)
    for name, value in {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_TESTRUNUID": "abc", "PYTEST_XDIST_WORKER_COUNT": "2",
                        "PYTEST_CURRENT_TEST": "tests/t.py::t (call)", "PYTEST_ADDOPTS": "-x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PHI3_HARNESS_CACHE", "/kept")  # everything else is inherited
    script = "import os; print(sorted(k for k in os.environ if k.startswith('PYTEST'))); print(os.environ['PHI3_HARNESS_CACHE'])"
    out = io.StringIO()
    run_suites([sys.executable, "-c", script], out=out)
    assert out.getvalue() == "[]\n/kept\n"


def test_judge_reasons_never_use_scientific_notation() -> None:
    from harness.judge.verdicts import fmt

    assert fmt(-6.39e-16) == "0" and fmt(4.87e-15) == "0"  # a least-squares slope of nothing
    assert fmt(5.92e-05) == "0.0000592" and fmt(0.000592) == "0.000592" and fmt(0.00264) == "0.00264"
    assert fmt(1234.5) == "1,234" and fmt(None) == "-"
