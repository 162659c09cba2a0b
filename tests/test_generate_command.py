"""`phi3-harness generate` streams a reply from the tiny model and reports its own timings.

One test runs the real command in a fresh process; the rest call the CLI's ``main`` in-process
(tests/cli_run.py): the same parser, command and error boundary, without seconds of start-up each.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_run import run_cli


@pytest.fixture
def _generate(capsys):
    return lambda *args: run_cli(capsys, "generate", *args)


def test_the_installed_command_streams_json_end_to_end() -> None:
    result = subprocess.run([sys.executable, "-m", "harness", "generate", "Hello", "--max-new-tokens", "4", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["output_ids"]) == data["completion_tokens"] == 4 and data["text"].strip()


def test_json_output_has_ids_text_and_timings(_generate) -> None:
    result = _generate("Hello", "--max-new-tokens", "12", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prompt_ids"][:2] == [1, 32010] and len(data["output_ids"]) == data["completion_tokens"] == 12
    assert data["prompt_tokens"] == len(data["prompt_ids"])
    assert data["text"].strip() and data["provider"] == "cpu" and data["execution_providers"][0] == "CPUExecutionProvider"
    assert data["ttft_s"] > 0 and data["decode_tok_s"] > 0


def test_streamed_text_is_followed_by_two_summary_lines(_generate) -> None:
    greedy = json.loads(_generate("Hello", "--max-new-tokens", "8", "--json").stdout)
    assert greedy["e2e_s"] >= greedy["ttft_s"] > 0
    result = _generate("Hello", "--max-new-tokens", "8")
    assert result.returncode == 0, result.stderr
    text, timings, counts = result.stdout.rstrip("\n").rsplit("\n", 2)
    assert text == greedy["text"]
    assert "TTFT" in timings and "E2E" in timings and "decode" in timings and "completion 8 tokens" in counts
    assert max(len(timings), len(counts)) <= 100


def test_seeded_sampling_repeats(_generate) -> None:
    runs = [json.loads(_generate("Hi", "--temperature", "1.2", "--seed", "5", "--json").stdout)["output_ids"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_an_unavailable_provider_is_one_line_without_traceback(_generate) -> None:
    result = _generate("Hello", "--provider", "dml")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and "DmlExecutionProvider" in result.stderr


def test_missing_model_folder_is_one_line(_generate, tmp_path) -> None:
    result = _generate("Hello", "--model", str(tmp_path / "absent"))
    assert result.returncode == 2 and "does not exist" in result.stderr and result.stderr.count("\n") == 1


def test_temperature_zero_is_an_error_not_silent_sampling(_generate) -> None:
    result = _generate("Hello", "--temperature", "0")
    assert result.returncode == 2 and "temperature must be > 0" in result.stderr
