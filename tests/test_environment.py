"""The environment stamp names what produced a run, and the model hash is exact and cheap to repeat."""

from __future__ import annotations

import json
import os

import onnxruntime
import pytest

import harness
from harness.measure import environment
from harness.measure.environment import collect_environment, git_state, model_hash


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path / "cache"))
    environment._hash_memo.clear()


def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "genai_config.json").write_text('{"model": {}}')
    (folder / "model.onnx").write_bytes(b"\x08\x07" * 1000)
    return folder


def test_the_stamp_names_runtime_providers_machine_and_model(tmp_path) -> None:
    env = collect_environment(model_folder(tmp_path), ["cpu", "dml"], run_id="run-1")
    assert json.loads(json.dumps(env)) == env  # plain JSON data
    assert env["run_id"] == "run-1" and env["providers_requested"] == ["cpu", "dml"]
    assert env["harness"]["version"] == harness.__version__
    assert env["onnxruntime"]["version"] == onnxruntime.__version__
    assert env["onnxruntime"]["available_providers"] == onnxruntime.get_available_providers()
    assert "onnxruntime" in env["onnxruntime"]["distributions"]
    assert env["onnxruntime"]["problems"] == []  # this venv holds exactly one runtime
    # what is built from ORT's sources but never ran on such hardware is said in the run's stamp
    assert any("DirectML" in flag for flag in env["onnxruntime"]["unverified_on_hardware"])
    assert env["onnxruntime"]["attachments"]["cpu"] == {"mode": "providers", "options": {}, "notes": [],
                                                        "unverified": []}
    assert env["cpu"]["logical_cores"] >= 1 and env["platform"]["python_bits"] in (32, 64)
    assert env["telemetry"]["cpu_percent_base_cores"] == env["cpu"]["logical_cores"]
    assert env["telemetry"]["gpu_counters_available"] or env["telemetry"]["gpu_counters_reason"]
    assert env["model"]["files"] == 2 and env["model"]["bytes"] == 2000 + len('{"model": {}}')
    assert len(env["model"]["sha256"]) == 64


def test_git_commit_is_none_outside_a_repository(tmp_path) -> None:
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}


def test_model_hash_changes_with_any_content_or_name(tmp_path) -> None:
    folder = model_folder(tmp_path)
    first = model_hash(folder)
    assert model_hash(folder) == first
    (folder / "model.onnx").write_bytes(b"\x08\x07" * 999 + b"\x08\x08")
    second = model_hash(folder)
    assert second != first
    (folder / "model.onnx").rename(folder / "decoder.onnx")
    assert model_hash(folder) not in (first, second)


def test_model_hash_is_cached_across_calls_and_processes(tmp_path, monkeypatch) -> None:
    folder = model_folder(tmp_path)
    digest = model_hash(folder)
    environment._hash_memo.clear()  # as in a new process: only the cache file is left

    def no_reading(*args):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(environment, "_hash_files", no_reading)
    assert model_hash(folder) == digest
    os.utime(folder / "model.onnx", ns=(1, 1))  # a changed file must be hashed again
    with pytest.raises(AssertionError, match="read again"):
        model_hash(folder)
