"""Run folders, incremental writers and loaders: what is written is what is read back."""

from __future__ import annotations

import json
import re

import pytest

from harness.errors import HarnessError
from harness.measure.results import (
    SCHEMA_VERSION,
    RequestRecord,
    ResultsWriter,
    TelemetrySample,
    TelemetryWriter,
    Verdict,
    load_checklist,
    load_environment,
    load_provider_proof,
    load_records,
    load_telemetry,
    new_run_dir,
    records_to_frame,
    write_json,
)


def record(index: int, **changes) -> RequestRecord:
    values = dict(
        run_id="run", case_id="cpu-p16-c1", test="latency", target="engine", provider="cpu", prompt_length=16,
        concurrency=1, request_index=index, worker=0, cold=index == 0, submit_ns=1000 + index, first_token_ns=2000,
        end_ns=5000, token_ns=[2000, 3000, 5000], prompt_tokens=16, completion_tokens=3, ttft_s=0.25, e2e_s=0.5,
        tpot_s=0.125, itl_s=[0.1, 0.15], prefill_tok_s=64.0, decode_tok_s=8.0, ok=True,
        output_text="héllo", output_ids=[5, 6, 7],
    )
    values.update(changes)
    return RequestRecord(**values)


def test_new_run_dir_makes_a_fresh_time_stamped_folder(tmp_path) -> None:
    path = new_run_dir(tmp_path / "reports")
    assert path.is_dir() and path.parent == tmp_path / "reports"
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", path.name)
    assert new_run_dir(tmp_path, "mine").name == "mine"
    with pytest.raises(HarnessError, match="already exists"):
        new_run_dir(tmp_path, "mine")
    with pytest.raises(HarnessError, match="invalid run id"):
        new_run_dir(tmp_path, "../escape")


def test_records_round_trip_one_line_each_with_the_schema_version(tmp_path) -> None:
    with ResultsWriter(tmp_path) as writer:
        writer.write(record(0))
        writer(record(1, ok=False, error_kind="exception:ValueError", error="boom", ttft_s=None, tpot_s=float("nan")))
        lines = (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2  # on disk before close
    assert writer.count == 2
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)
    assert json.loads(lines[1])["tpot_s"] is None  # NaN is not JSON
    frame = load_records(tmp_path)
    assert list(frame["request_index"]) == [0, 1]
    assert list(frame["ok"]) == [True, False] and list(frame["cold"]) == [True, False]
    assert frame["itl_s"][0] == [0.1, 0.15] and frame["output_text"][0] == "héllo"
    assert frame["ttft_s"][0] == 0.25 and frame["ttft_s"].isna()[1]
    assert frame["error_kind"][1] == "exception:ValueError"


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path) -> None:
    with ResultsWriter(tmp_path) as writer:
        for index in range(3):
            writer.write(record(index))
    with (tmp_path / "results.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"run_id": "run", "case_id": "cpu-p1')  # the process died mid-write
    with pytest.warns(UserWarning, match="truncated"):
        frame = load_records(tmp_path)
    assert len(frame) == 3


def test_a_damaged_line_in_the_middle_is_an_error(tmp_path) -> None:
    with ResultsWriter(tmp_path) as writer:
        writer.write(record(0))
        writer.write(record(1))
    path = tmp_path / "results.jsonl"
    first, second = path.read_text(encoding="utf-8").splitlines()
    path.write_text(f"{first}\nnot json\n{second}\n", encoding="utf-8")
    with pytest.raises(HarnessError, match="line 2 is not a JSON record"):
        load_records(tmp_path)


def test_a_newer_schema_is_refused_clearly(tmp_path) -> None:
    with ResultsWriter(tmp_path) as writer:
        writer.write(record(0))
    line = json.loads((tmp_path / "results.jsonl").read_text())
    line["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "results.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(HarnessError, match=f"schema_version {SCHEMA_VERSION + 1}, newer .* upgrade phi3-harness"):
        load_records(tmp_path)


def test_missing_folder_or_results_name_the_fix(tmp_path) -> None:
    with pytest.raises(HarnessError, match="results folder not found"):
        load_records(tmp_path / "nope")
    with pytest.raises(HarnessError, match="results.jsonl is missing"):
        load_records(tmp_path)
    assert load_telemetry(tmp_path).empty and "rss_bytes" in load_telemetry(tmp_path).columns
    assert load_provider_proof(tmp_path) == []
    assert records_to_frame([]).columns.tolist()[:3] == ["run_id", "case_id", "test"]


def test_telemetry_round_trips_and_a_cut_row_is_skipped(tmp_path) -> None:
    with TelemetryWriter(tmp_path) as writer:
        writer.write(TelemetrySample(t_ns=10, rss_bytes=100, peak_rss_bytes=150, cpu_percent=12.5,
                                     system_mem_used_bytes=999, label="cpu-p16-c1"))
        writer(TelemetrySample(t_ns=20, rss_bytes=110, peak_rss_bytes=150, cpu_percent=50.0,
                               system_mem_used_bytes=999, gpu_util_percent=33.0, gpu_mem_bytes=4096))
    frame = load_telemetry(tmp_path)
    assert list(frame["t_ns"]) == [10, 20] and list(frame["label"]) == ["cpu-p16-c1", ""]
    assert frame["gpu_util_percent"].isna()[0] and frame["gpu_util_percent"][1] == 33.0
    with (tmp_path / "telemetry.csv").open("a") as handle:
        handle.write("30,120")
    with pytest.warns(UserWarning, match="truncated"):
        assert len(load_telemetry(tmp_path)) == 2
    with TelemetryWriter(tmp_path) as writer:  # appending to an existing file adds no second header
        pass
    assert (tmp_path / "telemetry.csv").read_text().count("t_ns") == 1


def test_json_files_round_trip(tmp_path) -> None:
    verdicts = [Verdict("first_response", "First response (cold TTFT)", "fail", 0.7, 0.5, "s", "<=", "cpu-p16-c1", "slow")]
    write_json(tmp_path / "checklist.json", verdicts)
    write_json(tmp_path / "environment.json", {"run_id": "run", "model": {"path": tmp_path}, "x": float("inf")})
    write_json(tmp_path / "provider_proof.json", {"requested": "cpu", "share_on_requested": 1.0})
    assert load_checklist(tmp_path) == verdicts
    environment = load_environment(tmp_path)
    assert environment["model"]["path"] == str(tmp_path) and environment["x"] is None
    assert load_provider_proof(tmp_path) == [{"requested": "cpu", "share_on_requested": 1.0}]
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "environment.json").write_text('{"schema_version": 99}')
    with pytest.raises(HarnessError, match="newer than this harness"):
        load_environment(tmp_path)
