"""Configs load in layers, validate every key, and name the file and key when something is wrong."""

from __future__ import annotations

import dataclasses

import pytest

from harness.config import CONFIG_DIR, Config, Matrix, Thresholds, load_config, parse_override
from harness.errors import HarnessError
from harness.providers.spec import SPECS


def write(tmp_path, text: str):
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_toml_states_the_built_in_defaults() -> None:
    config = load_config(CONFIG_DIR / "default.toml")
    built_in = Config()
    assert config.matrix == built_in.matrix and config.thresholds == built_in.thresholds
    assert config.fallback == built_in.fallback and config.telemetry == built_in.telemetry
    assert config.thresholds == Thresholds(provider_share_min=0.5, simple_query_p50_s=1.0, first_response_s=0.5,
                                           subsequent_p50_s=0.3, memory_peak_gib=14.0,
                                           memory_growth_mib_per_request=1.0, cpu_percent_max=50.0,
                                           accelerator_util_min_percent=0.0)
    # the provider records' default options (no DML device_id: ORT would ignore the preference)
    for name in ("dml", "qnn"):
        assert config.provider(name).options == dict(SPECS[name].default_options)
    assert set(config.providers) == {"dml", "qnn", "cuda", "cpu"}


def test_quick_is_a_small_matrix_that_keeps_every_provider() -> None:
    config = load_config("quick")
    assert config.matrix == Matrix(providers=("dml", "qnn", "cuda", "cpu"), prompt_lengths=(16, 128), concurrency=(1, 4),
                                   max_new_tokens=16, repetitions=30, warmup=1, requests_per_level=32,
                                   arrival_rates=(100.0,), seed=0)
    assert config.thresholds == Thresholds() and config.sources == ("quick",)


def test_overrides_win_over_the_file_and_strings_are_parsed(tmp_path) -> None:
    path = write(tmp_path, "[matrix]\nproviders = ['dml']\nrepetitions = 3\n[provider.cpu]\nthreads = 4\n")
    config = load_config(path, {"matrix.providers": "cpu,cuda", "thresholds.first_response_s": "0.1",
                                "provider.cpu.strict": "true", "telemetry.interval_s": 0.2})
    assert config.matrix.providers == ("cpu", "cuda") and config.matrix.repetitions == 3
    assert config.thresholds.first_response_s == 0.1 and config.telemetry.interval_s == 0.2
    settings = config.provider_settings("cpu")
    assert settings.intra_op_threads == 4 and settings.strict is True and settings.options == {}
    assert config.sources == (str(path), "override")
    assert load_config(overrides={"matrix.providers": ["cpu"]}).matrix.providers == ("cpu",)


def test_configs_are_frozen() -> None:
    config = load_config("quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.matrix.repetitions = 99  # type: ignore[misc]


@pytest.mark.parametrize(
    "text,message",
    [
        ("[matrix]\nprompt_lenghts = [16]\n", r"x.toml: unknown key 'matrix.prompt_lenghts' \(known: matrix.arrival_rates, matrix.concurrency, "),
        ("[matrx]\n", r"x.toml: unknown key 'matrx' \(known: fallback, gate, http, matrix, provider"),
        ("[provider.dml]\nfilter = 'gpu'\n", r"x.toml: unknown key 'provider.dml.filter' \(known: .*provider.dml.device_filter"),
        ("[provider.tpu]\n", r"x.toml: unknown key 'provider.tpu'"),
        ("[matrix]\nrepetitions = 'five'\n", r"x.toml: key 'matrix.repetitions' must be an integer, got 'five'"),
        ("[matrix]\nrepetitions = true\n", r"key 'matrix.repetitions' must be an integer, got True"),
        ("[matrix]\nconcurrency = 4\n", r"key 'matrix.concurrency' must be a list of integers, got 4"),
        ("[thresholds]\nfirst_response_s = '0.5s'\n", r"key 'thresholds.first_response_s' must be a finite number"),
        ("[provider.dml]\nperformance_preference = 'fast'\n", r"must be one of default, high_performance, minimum_power"),
        ("[matrix]\nproviders = ['dml', 'npu']\n", r"x.toml: key 'matrix.providers' names unknown provider 'npu'"),
        ("[matrix]\nconcurrency = [1, 0]\n", r"x.toml: key 'matrix.concurrency' must be a non-empty list of integers >= 1"),
        ("[thresholds]\nprovider_share_min = 50\n", r"x.toml: key 'thresholds.provider_share_min' is a fraction"),
        ("[telemetry]\ninterval_s = 0\n", r"x.toml: key 'telemetry.interval_s' must be > 0"),
        ("[matrix\n", r"x.toml: not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path, text: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        load_config(write(tmp_path, text))


def test_bad_overrides_are_named_as_overrides() -> None:
    with pytest.raises(HarnessError, match=r"override: unknown key 'thresholds.first_respons'"):
        load_config(overrides={"thresholds.first_respons": 0.1})
    with pytest.raises(HarnessError, match=r"override: key 'matrix.warmup' must be an integer, got 'x'"):
        load_config(overrides={"matrix.warmup": "x"})
    with pytest.raises(HarnessError, match=r"override: key 'matrix.warmup' must be >= 0"):
        load_config(overrides={"matrix.warmup": -1})


def test_command_line_overrides_parse_and_unknown_config_names_list_the_known() -> None:
    assert parse_override("matrix.providers = cpu,dml") == ("matrix.providers", "cpu,dml")
    with pytest.raises(HarnessError, match="is not KEY=VALUE"):
        parse_override("matrix.providers")
    with pytest.raises(HarnessError, match=r"config file not found: nightly: .*default, quick"):
        load_config("nightly")

