"""`phi3-harness run` end to end on the tiny model: run folder, checklist, report, exit code, interrupt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_run import SMALL_MATRIX, Result, run_cli, run_cli_captured
from suites_in_process import SUITES, run_suites_in_process

from harness.judge.table import CHECKS
from harness.measure.results import load_checklist, load_records
from harness.suite.runner import child_environment

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """The quick config through `main` (its suites in their real pytest child); the installed command
    as a process is tested where the process is the point (test_fault_injection_process.py)."""
    out = tmp_path_factory.mktemp("run") / "quick"
    return run_cli_captured("run", "--config", str(REPO / "configs" / "quick.toml"), "--out", str(out)), out


def test_quick_run_passes_and_judges_every_checklist_item(quick_run) -> None:
    result, out = quick_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    verdicts = {v.check: v for v in load_checklist(out) if v.provider == "cpu"}
    assert set(verdicts) == set(CHECKS)
    assert all(v.reason for v in verdicts.values() if v.verdict == "skip")
    assert verdicts["provider_active"].measured == 1.0
    for title in CHECKS.values():
        assert title in result.stdout  # the checklist table is printed
    assert "gate: PASS: every gating item measured and passed for cpu" in result.stdout


def test_the_quick_run_measures_every_applicable_item_on_cpu(quick_run) -> None:
    # a suite change that leaves an item unjudged (too few requests, a deselected test) fails here
    _, out = quick_run
    cpu = [v for v in load_checklist(out) if v.provider == "cpu"]
    not_measured = [(v.check, v.verdict, v.reason) for v in cpu if v.applicable and v.verdict in ("skip", "inconclusive")]
    assert not_measured == []
    assert {v.check for v in cpu if not v.applicable} == {"health", "accelerator_utilisation"}
    assert {v.check: v.verdict for v in cpu}["real_responses"] == "pass"  # the reference comparison ran


def test_quick_run_ends_on_summary_checklist_and_gate_in_100_columns(quick_run) -> None:
    result, _ = quick_run
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines[-1] == "gate: PASS: every gating item measured and passed for cpu"
    assert result.stdout.count("gate: PASS") == 1  # run's last line; the suites leave it to run
    assert lines[-2].startswith("pytest: ") and "passed" in lines[-2]
    assert max(len(line) for line in lines) <= 100
    assert "SKIPPED" not in result.stdout and "PASSED" not in result.stdout  # -q, reasons in the checklist
    assert result.stdout.index("Request throughput") < result.stdout.index("phi3-harness checklist")
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory):
    """Every item measured on the smallest matrix, one threshold no run can meet, --json and an SLO.

    The thresholds a busy machine can push a tiny run over (latency, RSS growth over 8 requests) are
    set far out of reach, so that the one impossible threshold is the only failure these tests see
    (a run on a loaded CI machine once failed a second item). The concurrent requests are made long
    and many enough to overlap there too: 4 requests of 8 tokens at level 2 once never had two in
    flight (concurrency inconclusive, 1 full-suite run in 6)."""
    out = tmp_path_factory.mktemp("run") / "failing"
    loose = ("thresholds.simple_query_p50_s=30", "thresholds.subsequent_p50_s=30",
             "thresholds.memory_growth_mib_per_request=256", "matrix.max_new_tokens=32",
             "matrix.requests_per_level=8")
    result = run_cli_captured("run", "--json", *SMALL_MATRIX, "--slo", "ttft=10s", "--set",
                              "thresholds.first_response_s=0.000001", *[a for kv in loose for a in ("--set", kv)],
                              "--out", str(out), "--no-report")
    return result, out


def test_run_json_prints_summary_verdicts_and_gate_for_scripts(failing_run) -> None:
    result, _ = failing_run
    data = json.loads(result.stdout)  # stdout is the JSON alone; the suites' text went to stderr
    assert data["gate"]["exit_code"] == result.returncode == 1
    assert data["gate"]["reason"].startswith("1 gating item(s) failed: first_response [cpu-")  # and nothing else
    assert data["slo"] == {"ttft": 10.0}
    summary = data["summary"][0]
    assert summary["provider"] == "cpu" and summary["ok"] > 0 and summary["metrics_s"]["TTFT"]["p50"] > 0
    assert summary["goodput"]["good"] == summary["goodput"]["total"]  # a 10 s TTFT is met by every request
    assert {v["check"] for v in data["verdicts"]} >= {"simple_query", "first_response"}
    assert "phi3-harness checklist" in result.stderr


def test_results_jsonl_has_one_line_per_request(quick_run) -> None:
    _, out = quick_run
    lines = (out / "results.jsonl").read_text().splitlines()
    records = load_records(out)
    assert len(lines) == len(records) > 0
    assert records["ok"].all()
    latency = records[records["test"] == "latency"]
    assert set(latency["case_id"]) == {"cpu-engine-fp32-p16-n16-c1", "cpu-engine-fp32-p128-n16-c1"}
    # every part of a case's identity is a field of its own (comparisons never parse the id)
    assert set(latency["max_new_tokens"]) == {16} and set(latency["precision"]) == {"fp32"}
    assert set(latency["target"]) == {"engine"} and latency["arrival_rate"].isna().all()
    assert set(records.loc[records["test"] == "open_loop", "arrival_rate"]) == {100.0}


def test_run_folder_holds_report_and_raw_data(quick_run) -> None:
    _, out = quick_run
    for name in ("environment.json", "telemetry.csv", "checklist.json", "benchmark.json", "provider_proof.json",
                 "index.html", "checklist.csv", "latency.csv"):
        assert (out / name).is_file(), name
    assert list(out.glob("*.png"))
    benchmarks = json.loads((out / "benchmark.json").read_text())["benchmarks"]
    assert {b["extra_info"]["case"] for b in benchmarks} == {"cpu-engine-fp32-p16-n16-c1", "cpu-engine-fp32-p128-n16-c1"}
    assert all(b["extra_info"]["ttft_s_p50"] > 0 for b in benchmarks)
    environment = json.loads((out / "environment.json").read_text())
    sampler = environment["telemetry_sampler"]
    assert sampler["samples"] > 0 and sampler["wall_s"] > 0 and sampler["percent_of_one_core"] is not None
    # the threading the cpu session really ran with, read back from the session (spinning off by default)
    assert environment["threading"]["cpu"]["allow_spinning"] is False
    assert environment["threading"]["cpu"]["intra_op_num_threads"] >= 1
    # the page shows how the session ran, read from the same stamp
    page = (out / "index.html").read_text()
    threads = environment["threading"]["cpu"]["intra_op_num_threads"]
    assert threads == 1  # the tiny model's folder is under 32 MB (providers/thread_default.py)
    assert ("<dt>threads (cpu)</dt><dd>intra-op 1 (default: one thread for a model folder under 32 MB), inter-op 0, "
            "spinning off") in page
    assert "<dt>prefill logits (cpu)</dt><dd>last position only" in page
    # how each provider was attached, and what no hardware here confirmed (issue 15)
    assert environment["provider_attachments"]["cpu"] == {"notes": [], "unverified_on_hardware": []}
    assert any("QNN" in flag for flag in environment["onnxruntime"]["unverified_on_hardware"])


def test_a_required_provider_whose_items_were_deselected_fails_the_gate(tmp_path: Path, capfd) -> None:
    result = run_cli(capfd, "run", "--provider", "cpu", "--out", str(tmp_path / "r"), "--no-report", "--", "-k",
                     "checklist")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "gate: FAIL: nothing measured for cpu"


def test_an_unknown_required_provider_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    result = run_cli(capsys, "run", "--require", "dmll", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--require names unknown provider 'dmll'" in result.stderr


def test_an_impossible_threshold_fails_the_gate_naming_the_check(failing_run) -> None:
    result, out = failing_run
    assert result.returncode == 1
    assert "FAIL first_response" in result.stderr
    verdicts = load_checklist(out)
    assert {v.check for v in verdicts if v.verdict == "fail"} == {"first_response"}
    assert not [v.check for v in verdicts if v.gating and v.applicable and v.verdict in ("skip", "inconclusive")]


def test_a_malformed_config_key_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[matrix]\nprompt_lenghts = [16]\n")
    result = run_cli(capsys, "run", "--config", str(config), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "prompt_lenghts" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_interrupted_run_leaves_readable_results(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    # plain `pytest suites` with only the plugin the suites need (the others' start-up is not what is tested)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "suites", "-p", "pytest_benchmark.plugin", "-p", "no:cacheprovider", "-q",
         "--results-dir", str(out), "--set", "matrix.repetitions=100000", "--no-report", "-k", "latency"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
        env=child_environment({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}),
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or len(results.read_bytes().splitlines()) < 20):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    records = load_records(out)
    assert len(records) >= 20 and records["ok"].all()
    assert os.path.getsize(results) > 0


def test_a_real_run_compared_with_itself_passes_the_gate_at_zero_percent(quick_run) -> None:
    # real_responses holds prompts of several lengths under one case id: each must still pair with itself.
    # The gate's own judgement (`report --fail-on-regression` prints and exits by it: test_report_compare.py)
    from harness.report.gate import compare_runs
    from harness.report.runs import load_run

    _, out = quick_run
    run = load_run(out)
    comparison = compare_runs(run, run, 0.0)
    assert comparison.tested > 0 and not comparison.only_baseline and not comparison.only_current
    assert not comparison.mismatches and comparison.count("regression") == 0
    assert not comparison.failed(fail_on_inconclusive=False)


def test_a_broken_model_folder_is_one_line_before_anything_runs(tmp_path: Path, capsys) -> None:
    result = run_cli(capsys, "run", "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr


@pytest.fixture(scope="module")
def broken_model_suites(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Plain `pytest suites/` (in this process) on a model folder without its weights; the signal
    handlers of this process before and after."""
    broken = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.onnx.data").unlink()
    out = broken.parent / "r"
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    code = run_suites_in_process(SUITES, "--model", broken, "--provider", "cpu", "--results-dir", out, "--no-report")
    return code, out, before, [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]


def test_plain_pytest_on_a_model_that_does_not_load_fails_model_loads(broken_model_suites) -> None:
    code, out, _, _ = broken_model_suites
    assert code == 1
    verdicts = {v.check: v for v in load_checklist(out)}
    assert verdicts["model_loads"].verdict == "fail" and "model.onnx.data" in verdicts["model_loads"].reason
    assert all(v.verdict == "skip" and "did not load" in v.reason for k, v in verdicts.items() if k != "model_loads")


def test_suites_run_by_pytest_main_give_this_process_its_signal_handlers_back(broken_model_suites) -> None:
    _, _, before, after = broken_model_suites  # the suites take SIGINT/SIGTERM to stop cleanly, then return them
    assert after == before


def test_an_explicitly_named_provider_that_is_not_usable_stops_the_run(tmp_path: Path, capsys) -> None:
    result = run_cli(capsys, "run", "--provider", "dml", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "provider dml is not installed" in result.stderr
    assert not (tmp_path / "r").exists()  # stopped before measuring anything


def test_providers_listed_only_in_the_config_skip_with_their_reason(quick_run) -> None:
    _, out = quick_run
    verdicts = load_checklist(out)
    for provider in ("dml", "qnn", "cuda"):
        mine = [v for v in verdicts if v.case == provider]
        assert len(mine) == len(CHECKS) and all(v.verdict == "skip" and "not installed" in v.reason for v in mine)


def test_sweep_offers_rising_rates_and_the_report_plots_them(tmp_path: Path, capfd) -> None:
    from harness.report import build_report

    out = tmp_path / "r"
    result = run_cli(capfd, "run", "--sweep", "--no-report", "--prompt-lengths", "16", "--max-new-tokens", "4", "--out", str(out), "--", "-k",
                     "sweep")
    # the gate fails (only the sweep ran: nothing else measured); the sweep test itself must pass
    assert "FAILED" not in result.stdout and "pytest: 1 passed" in result.stdout, result.stdout[-2000:]
    sweep = load_records(out).query("test == 'sweep'")
    rates = sorted(set(sweep["arrival_rate"]))
    assert len(rates) >= 7 and rates[-1] >= 2.9 * rates[3]  # 0.25x .. 3x capacity (and more if not saturated)
    assert sweep["ok"].all() and (sweep.groupby("arrival_rate").size() >= 32).all()
    build_report(out)
    assert (out / "sweep.png").is_file() and (out / "sweep.csv").is_file()
