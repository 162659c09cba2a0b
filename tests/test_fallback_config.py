"""Providers made unavailable through configuration: the auto chain and the suites honour them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import SMALL_MATRIX, run_cli

from harness.config import load_config
from harness.errors import HarnessError
from harness.providers import choose_provider, make_probe_fn
from harness.measure.results import load_checklist


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_auto_passes_over_uninstalled_providers_with_reasons(tiny_model_dir: Path) -> None:
    config = load_config("quick")
    choice = choose_provider("auto", config.fallback.chain, make_probe_fn(tiny_model_dir, config.provider_settings))
    assert choice.chosen == "cpu"
    assert [name for name, _ in choice.passed_over] == ["dml", "qnn", "cuda"]
    assert all("not installed" in reason for _, reason in choice.passed_over)


def test_a_disabled_provider_is_passed_over_and_the_next_one_chosen(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '[fallback]\nchain = ["cpu", "cuda"]\ndisabled = ["cpu"]\n'))
    with pytest.raises(HarnessError) as caught:
        choose_provider("auto", config.fallback.chain, make_probe_fn(tiny_model_dir), config.fallback.disabled)
    message = str(caught.value)
    assert "cpu: switched off in the config" in message and "cuda: not installed" in message and "\n" not in message


def test_an_unknown_provider_in_the_chain_names_the_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[fallback]\nchain = ["dml", "npu"]\n')
    with pytest.raises(HarnessError, match=r"config.toml: key 'fallback.chain' names unknown provider 'npu'"):
        load_config(path)


def test_a_named_provider_that_is_switched_off_stops_the_run_with_one_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    result = run_cli(capsys, "run", "--provider", "cpu", "--set", "fallback.disabled=cpu", "--out", str(out),
                     "--no-report")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "provider cpu is switched off in the config (fallback.disabled)" in lines[0]
    assert not (out / "checklist.json").exists()  # stopped before measuring anything


def test_suites_skip_a_disabled_provider_listed_in_the_matrix_with_the_reason(tmp_path: Path, capfd) -> None:
    out = tmp_path / "run"
    result = run_cli(capfd, "run", "--set", "matrix.providers=dml", "--set", "fallback.disabled=dml",
                     "--out", str(out), "--no-report", "--", "-k", "latency or checklist")
    # the only provider of the run measured nothing: the gate says so, in one line, last, on stderr only
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "gate: FAIL: nothing measured for dml"
    assert "gate: FAIL" not in result.stdout
    dml = load_checklist(out)
    assert dml and all(v.case.startswith("dml") and v.verdict == "skip" for v in dml)
    assert {v.reason for v in dml} == {"dml is switched off in the config (fallback.disabled)"}


def test_auto_in_the_matrix_runs_on_the_first_usable_provider(tmp_path: Path, capfd) -> None:
    out = tmp_path / "run"
    result = run_cli(capfd, "run", "--provider", "auto", *SMALL_MATRIX[2:], "--out", str(out), "--no-report",
                     "--", "-k", "latency or checklist")
    # the provider auto chose must be proven; the deselected suites leave items unmeasured
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "gate: FAIL: not proven for cpu: real_responses (skip)" in result.stderr
    assert "auto chose cpu" in result.stdout and "auto passed over dml" in result.stdout
    assert {v.case.split("-")[0] for v in load_checklist(out)} == {"cpu"}
