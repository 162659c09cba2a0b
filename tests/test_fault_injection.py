"""Damaged inputs through the command line: one line on stderr, the right exit code, no traceback.

In-process ``main([...])`` wherever the process boundary does not matter (fast); real processes
and real signals for interrupts, and a file-size limit (RLIMIT_FSIZE) for a full disk.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import onnx
import pytest
from report_helpers import FAST, copy_run

from harness.cli import main
from harness.errors import one_line
from harness.measure.results import write_json
from harness.measure.run_folder import LOCK_NAME, LineAppender, RunFolderLock


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``phi3-harness ARGV``; stderr must be exactly one line, no traceback."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return code, err.strip()


# --- generate: prompt and sampling options ------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["\udcff\udcfe"], "the prompt is not valid UTF-8 text (byte 0xff at offset 0)"),  # argv bytes 0xff 0xfe
    ([""], "the prompt is empty"),
    (["   "], "the prompt is empty"),
    (["hi", "--system", "\udcc3"], "--system is not valid UTF-8 text (byte 0xc3"),
    (["hi", "--temperature", "nan"], "temperature must be > 0 and finite (got nan)"),
    (["hi", "--temperature", "inf"], "temperature must be > 0 and finite (got inf)"),
    (["hi", "--temperature", "1", "--top-p", "nan"], "top_p must be in (0, 1]"),
    (["hi", "--temperature", "1", "--seed", "-1"], "--seed must be >= 0 (got -1)"),
    (["hi", "--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
])
def test_bad_generate_input_is_one_line_before_the_model_loads(capsys, argv: list[str], expected: str) -> None:
    code, err = _cli(capsys, "generate", *argv)
    assert code == 2 and expected in err


def test_max_new_tokens_beyond_the_context_states_the_limit(capsys, tiny_model_dir: Path) -> None:
    code, err = _cli(capsys, "generate", "hi", "--model", str(tiny_model_dir), "--max-new-tokens", "999999999")
    assert code == 2
    assert "exceeds the model's context of 4096 tokens" in err and "use --max-new-tokens 40" in err


# --- run: config values, checked before anything is measured -------------------------------------


@pytest.mark.parametrize(("override", "expected"), [
    ("telemetry.interval_s=nan", "'telemetry.interval_s' must be a finite number, got 'nan'"),
    ("telemetry.interval_s=1e-9", "'telemetry.interval_s' must be > 0 and >= 0.005 s, got 1e-09"),
    ("matrix.arrival_rates=nan", "'matrix.arrival_rates' must be a list of finite numbers"),
    ("thresholds.first_response_s=inf", "'thresholds.first_response_s' must be a finite number"),
    ("thresholds.memory_peak_gib=-1", "'thresholds.memory_peak_gib' must be >= 0"),
    ("matrix.seed=-1", "'matrix.seed' must be >= 0, got -1"),
    ("matrix.prompt_lengths=3", "matrix.prompt_lengths has 3, shorter than the chat template allows"),
    ("matrix.prompt_lengths=4090", "matrix.prompt_lengths 4090 + matrix.max_new_tokens 16 exceeds the model's "
                                   "context of 4096 tokens"),
])
def test_bad_config_values_stop_run_with_one_line(capsys, tmp_path: Path, override: str, expected: str) -> None:
    code, err = _cli(capsys, "run", "--set", override, "--out", str(tmp_path / "r"))
    assert code == 2 and expected in err
    assert not (tmp_path / "r").exists()  # refused before a run folder was made


def test_a_config_file_that_is_not_utf8_names_the_file_and_byte(capsys, tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes("[matrix]\nrepetitions = 3 # caf\u00e9\n".encode("latin-1"))
    code, err = _cli(capsys, "run", "--config", str(config), "--out", str(tmp_path / "r"))
    assert code == 2 and f"{config}: not UTF-8 text (byte 0xe9" in err


# --- model folders: genai_config.json checked against the graph at load -------------------------


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("decoder", "head_size", 8, "says model.decoder.head_size = 8 but model.onnx has 'past_key_values.0.key' of"),
    ("decoder", "num_hidden_layers", 3, "says model.decoder.num_hidden_layers = 3 but model.onnx has 2 layers"),
    ("decoder", "num_key_value_heads", 4, "says model.decoder.num_key_value_heads = 4 but model.onnx has"),
    ("model", "vocab_size", 100, "says model.vocab_size = 100 but model.onnx has logits of width 32064"),
    ("decoder", "num_attention_heads", 8, "num_attention_heads 8 x head_size 16 is not hidden_size 64"),
])
def test_a_config_that_does_not_fit_the_graph_is_named_at_load(capsys, tmp_path, tiny_model_dir, section, key,
                                                                 value, expected):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "genai_config.json").read_text())
    (config["model"] if section == "model" else config["model"]["decoder"])[key] = value
    (folder / "genai_config.json").write_text(json.dumps(config))
    # generate reads the graph from its ONNX Runtime session, run from the .onnx file: both name the key
    for argv in (["generate", "hi"], ["run", "--out", str(tmp_path / "r")]):
        code, err = _cli(capsys, *argv, "--model", str(folder))
        assert code == 2 and expected in err and "genai_config.json" in err
    assert not (tmp_path / "r").exists()


def test_a_kv_input_of_another_dtype_is_named_at_load(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    next(i for i in graph.graph.input if i.name == "past_key_values.1.value").type.tensor_type.elem_type = 16
    onnx.save(graph, str(folder / "model.onnx"))
    code, err = _cli(capsys, "run", "--model", str(folder), "--out", str(tmp_path / "r"))
    assert code == 2 and "KV tensor 'past_key_values.1.value' is bfloat16, the others float32" in err
    code, err = _cli(capsys, "generate", "hi", "--model", str(folder))  # ONNX Runtime refuses the graph itself
    assert code == 2 and "cannot create an ONNX Runtime session" in err


def test_a_truncated_graph_is_named_before_anything_runs(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    graph = folder / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-100])
    code, err = _cli(capsys, "run", "--model", str(folder), "--out", str(tmp_path / "r"))
    assert code == 2 and f"{graph} is not a readable ONNX model" in err and "re-copy it" in err
    assert not (tmp_path / "r").exists()


# --- files and folders ------------------------------------------------------------------------


def test_out_under_a_file_is_one_line(capsys, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = _cli(capsys, "run", "--out", str(tmp_path / "file" / "r"))
    assert code == 2 and "Not a directory: part of the path is a file, not a folder" in err


def test_a_cache_under_a_file_names_the_cache_variable(capsys, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path / "file" / "cache"))
    code, err = _cli(capsys, "generate", "hi")
    assert code == 2 and "part of the path is a file" in err and "set PHI3_HARNESS_CACHE" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not stop root")
def test_a_read_only_out_is_one_line(capsys, tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        code, err = _cli(capsys, "run", "--out", str(tmp_path / "r"))
    finally:
        tmp_path.chmod(0o700)
    assert code == 2 and "Permission denied" in err


@pytest.mark.parametrize(("number", "fix"), [
    (errno.EROFS, "choose a folder on a writable disk"),
    (errno.EACCES, "choose another folder or fix its permissions"),
    (errno.ENOSPC, "free some space or choose a folder on another disk"),
    (errno.EFBIG, "the file reached the size limit (ulimit -f or the file system's): raise it or free space"),
])
def test_file_errors_read_as_the_path_the_reason_and_the_fix(number: int, fix: str) -> None:
    message = one_line(OSError(number, os.strerror(number), "/data/run/results.jsonl"))
    assert message == f"/data/run/results.jsonl: {os.strerror(number)}: {fix}"


@pytest.mark.parametrize("argv", [["generate", "hi", "--max-new-tokens", "x"], ["bogus"], ["run", "--provider"]])
def test_a_malformed_command_line_is_one_line_with_where_help_is(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "error: " in err and "--help" in err


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch) -> None:
    from harness.commands import doctor

    def broken(_args: object) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(doctor, "run", broken)
    code, err = _cli(capsys, "doctor")
    assert code == 2 and "unexpected ZeroDivisionError: division by zero: this is a bug" in err
    assert main(["doctor", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_run_refuses_a_used_folder_and_a_locked_one(capsys, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "results.jsonl").write_text("{}\n")
    code, err = _cli(capsys, "run", "--out", str(used))
    assert code == 2 and "is not empty" in err and "use a new folder, or --overwrite" in err
    assert (used / "results.jsonl").read_text() == "{}\n"
    (used / "notes.txt").write_text("mine")
    code, err = _cli(capsys, "run", "--out", str(used), "--overwrite")
    assert code == 2 and "holds files phi3-harness did not write (e.g. notes.txt)" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    with RunFolderLock(busy):
        code, err = _cli(capsys, "run", "--out", str(busy))
    assert code == 2 and f"in use by another phi3-harness process (pid {os.getpid()})" in err


def test_report_out_is_exclusive_and_overwrite_replaces_only_report_files(capsys, tmp_path: Path) -> None:
    run = copy_run(FAST, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("an earlier report")  # one render, not two (each is about a second here)
    code, err = _cli(capsys, "report", str(run), "--out", str(out))
    assert code == 2 and "is not empty" in err
    assert main(["report", str(run), "--out", str(out), "--overwrite"]) == 0
    assert (out / LOCK_NAME).is_file() and "an earlier report" not in (out / "index.html").read_text()


@pytest.fixture(scope="module")
def damaged_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, Path]:
    """`report RUN` into a copy of cpu-fast with two damages that do not touch each other: links
    planted where the report writes (to a victim file), and a benchmark.json that is not JSON.
    One render (about a second here) for the next two tests."""
    tmp = tmp_path_factory.mktemp("damaged")
    run = copy_run(FAST, tmp)
    victim = tmp / "victim.txt"
    victim.write_text("keep")
    for name in ("index.html", "latency.csv", "telemetry.png", "checklist.json.tmp"):
        (run / name).symlink_to(victim)
    (run / "benchmark.json").write_bytes(b"\xff{")
    return main(["report", str(run)]), run, victim


def test_links_planted_in_a_run_folder_are_replaced_not_followed(damaged_report: tuple[int, Path, Path]) -> None:
    code, run, victim = damaged_report
    assert code == 0
    write_json(run / "checklist.json", json.loads((run / "checklist.json").read_text()))
    assert victim.read_text() == "keep"
    assert not (run / "index.html").is_symlink() and (run / "index.html").stat().st_size > 1000


def test_an_appended_run_file_refuses_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "results.jsonl").symlink_to(victim)
    with pytest.raises(OSError) as caught:
        LineAppender(tmp_path / "results.jsonl")
    assert "results.jsonl" in one_line(caught.value) and victim.read_text() == "keep"


@pytest.mark.parametrize(("name", "damage", "expected"), [
    ("telemetry.csv", b"\xff\xfe\x00garbage", "telemetry.csv is not a telemetry CSV file"),
    ("provider_proof.json", b"{\"requested\": ", "provider_proof.json is not valid JSON"),
    ("environment.json", b"\xff\xfe", "environment.json is not valid JSON"),
    ("checklist.json", b"[1, 2]", "checklist.json holds a malformed verdict"),
])
def test_report_on_a_damaged_run_file_names_it(capsys, tmp_path: Path, name: str, damage: bytes, expected: str):
    run = copy_run(FAST, tmp_path)
    (run / name).write_bytes(damage)
    code, err = _cli(capsys, "report", str(run))
    assert code == 2 and expected in err


def test_report_on_a_damaged_benchmark_json_notes_it_on_the_page(damaged_report: tuple[int, Path, Path]) -> None:
    code, run, _ = damaged_report
    assert code == 0
    assert "benchmark.json is not valid JSON" in (run / "index.html").read_text()
