"""Providers: names, session options, honest probing on a real session, and the auto fallback chain.

Nothing here patches ONNX Runtime. Providers are made unavailable the way a user would: a chain
that names providers this ORT build lacks, a provider switched off, strict mode on a provider that
cannot take the whole graph.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnxruntime as ort
import pytest

from harness.config import load_config
from harness.errors import HarnessError
from harness.providers import (
    AUTO,
    DEFAULT_CHAIN,
    EXECUTION_PROVIDERS,
    SPECS,
    ProbeResult,
    ProviderSettings,
    choose_provider,
    create_session,
    execution_provider_name,
    make_probe_fn,
    probe,
    short_name,
    spec_for,
)
from harness.providers.platform import PlatformInfo
from harness.providers.session import attachment_for, provider_list, session_options

COMPILED_IN = ort.get_available_providers()
ACCELERATORS = ("dml", "qnn", "cuda")


@pytest.fixture(scope="module")
def probe_fn(tiny_model_dir: Path):
    return make_probe_fn(tiny_model_dir)


def _unusable_here(probe_fn) -> list[str]:
    return [name for name in ACCELERATORS if not probe_fn(name).usable]


# -- names and session options -------------------------------------------------------------------


@pytest.mark.parametrize("given,short", [("cpu", "cpu"), ("DML", "dml"), ("DmlExecutionProvider", "dml"),
                                         ("QNNExecutionProvider", "qnn"), ("cuda", "cuda"), ("Auto", "auto")])
def test_short_and_full_names_map_to_one_short_name(given: str, short: str) -> None:
    assert short_name(given) == short
    assert ProviderSettings(name=given).name == short


def test_every_short_name_has_its_execution_provider() -> None:
    for short, ep in EXECUTION_PROVIDERS.items():
        assert execution_provider_name(short) == ep
    with pytest.raises(HarnessError, match="unknown provider 'OpenVINOExecutionProvider'"):
        execution_provider_name("OpenVINOExecutionProvider")  # a provider without a record is not guessed at


def test_an_unknown_provider_is_a_one_line_error() -> None:
    with pytest.raises(HarnessError, match="unknown provider 'tpu'") as caught:
        _ = ProviderSettings(name="tpu").execution_provider
    assert "\n" not in str(caught.value)


def test_directml_gets_its_session_options_automatically() -> None:
    dml = session_options(ProviderSettings(name="dml"))
    cpu = session_options(ProviderSettings(name="cpu"))
    assert dml.enable_mem_pattern is False
    assert dml.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert cpu.enable_mem_pattern is True
    assert ProviderSettings(name="dml").serial_runs and not ProviderSettings(name="cpu").serial_runs


def test_thread_counts_and_strict_mode_reach_the_session_options() -> None:
    options = session_options(ProviderSettings(name="dml", intra_op_threads=3, inter_op_threads=2, strict=True))
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 2)
    assert options.get_session_config_entry("session.disable_cpu_ep_fallback") == "1"


def _providers_arg(settings: ProviderSettings) -> list:
    return provider_list(settings, attachment_for(settings))


def test_provider_options_and_cpu_fallback_in_the_provider_list() -> None:
    dml = ProviderSettings(name="dml", options={"device_id": 1})
    assert _providers_arg(dml) == [("DmlExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert _providers_arg(ProviderSettings(name="dml", options={"device_id": 0}, strict=True)) == [
        ("DmlExecutionProvider", {"device_id": 0})]
    assert _providers_arg(ProviderSettings(name="cpu")) == [("CPUExecutionProvider", {})]


def test_config_options_and_threads_pass_through_to_the_session(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text('[provider.cpu]\nthreads = 1\n[provider.cuda]\ndevice_id = 1\n', encoding="utf-8")
    config = load_config(path)
    assert _providers_arg(config.provider_settings("cuda"))[0] == ("CUDAExecutionProvider", {"device_id": 1})
    cpu = config.provider_settings("cpu")
    assert session_options(cpu).intra_op_num_threads == 1
    assert probe("cpu", tiny_model_dir, cpu).usable


# -- probing ---------------------------------------------------------------------------------------


def test_cpu_is_usable_because_a_session_was_created(tiny_model_dir: Path) -> None:
    result = probe("cpu", tiny_model_dir)
    assert result.status == "usable" and result.usable
    assert result.session_providers[0] == "CPUExecutionProvider"
    assert result.compiled_in


@pytest.mark.parametrize("name", ACCELERATORS)
def test_accelerators_are_reported_honestly(name: str, tiny_model_dir: Path) -> None:
    result = probe(name, tiny_model_dir)
    ep = EXECUTION_PROVIDERS[name]
    if ep not in COMPILED_IN:
        assert result.status == "not_installed"
        assert ep in result.reason and ":" in result.reason  # names the problem and a fix
        assert "\n" not in result.reason
    elif result.usable:
        assert ep in result.session_providers
    else:  # compiled in but failing: ORT's reason is kept
        assert result.status == "failing" and result.reason


def test_a_provider_ort_would_drop_is_never_usable(tiny_model_dir: Path) -> None:
    missing = [name for name in ACCELERATORS if EXECUTION_PROVIDERS[name] not in COMPILED_IN]
    if not missing:
        pytest.skip("every accelerator provider is compiled into this ONNX Runtime")
    name = missing[0]
    assert probe(name, tiny_model_dir).status == "not_installed"
    # ORT itself would silently drop it and run on CPU; the harness refuses instead.
    with pytest.raises(HarnessError, match="is not in this ONNX Runtime"):
        create_session(Path(tiny_model_dir) / "model.onnx", ProviderSettings(name=name))


@pytest.mark.skipif("AzureExecutionProvider" not in COMPILED_IN, reason="needs an ORT build with the Azure EP compiled in")
def test_a_failing_provider_keeps_ort_error_text(tiny_model_dir: Path, capfd: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Adding a provider is one record: the Azure EP gets one here, for this test only.
    azure = dataclasses.replace(SPECS["cpu"], name="azure", execution_provider="AzureExecutionProvider",
                                accelerator=True)
    monkeypatch.setitem(SPECS, "azure", azure)
    # The Azure EP runs no local kernels, so strict mode (no CPU fallback) makes ORT refuse the session.
    settings = ProviderSettings(name="azure", strict=True)
    result = probe("azure", tiny_model_dir, settings)
    assert result.status == "failing"
    assert "fallback to CPU EP has been explicitly disabled" in result.reason
    assert "ONNXRuntimeError" in result.detail
    # ORT's C++ logger wrote its own line to file descriptor 2; the probe caught it into the detail.
    assert "[E:onnxruntime" in result.detail
    assert "onnxruntime" not in capfd.readouterr().err


def test_probe_refuses_settings_for_another_provider(tiny_model_dir: Path) -> None:
    with pytest.raises(HarnessError, match="settings for 'dml'"):
        probe("cpu", tiny_model_dir, ProviderSettings(name="dml"))


def test_install_hints_follow_the_platform() -> None:
    woa_arm64 = PlatformInfo("Windows", "11", "arm64", "arm64", "3.12", "win-arm64", 64, "")
    windows_x64 = PlatformInfo("Windows", "11", "x86_64", "x86_64", "3.12", "win-amd64", 64, "")
    linux = PlatformInfo("Linux", "6", "x86_64", "x86_64", "3.12", "linux-x86_64", 64, "")
    assert "x64 Python" in spec_for("dml").install_hint(woa_arm64)
    assert "pip install onnxruntime-directml" in spec_for("dml").install_hint(windows_x64)
    assert "only on Windows" in spec_for("dml").install_hint(linux)
    assert "onnxruntime-qnn" in spec_for("qnn").install_hint(linux)
    assert "onnxruntime-gpu" in spec_for("cuda").install_hint(linux)


# -- fallback ---------------------------------------------------------------------------------------


def test_auto_walks_the_configured_chain_and_says_why_earlier_ones_were_passed_over(
    tmp_path: Path, tiny_model_dir: Path, probe_fn
) -> None:
    path = tmp_path / "chain.toml"
    path.write_text('[fallback]\nchain = ["cuda", "qnn", "dml", "cpu"]\n', encoding="utf-8")
    chain = load_config(path).fallback.chain
    choice = choose_provider(AUTO, chain, make_probe_fn(tiny_model_dir))
    first_usable = next(name for name in chain if probe_fn(name).usable)
    assert choice.chosen == first_usable
    skipped = list(chain[: chain.index(first_usable)])
    assert [name for name, _ in choice.passed_over] == skipped
    for name, reason in choice.passed_over:
        assert reason.endswith(probe_fn(name).reason)


def test_a_provider_switched_off_is_passed_over_without_probing(tiny_model_dir: Path, probe_fn) -> None:
    asked: list[str] = []

    def counting(name: str) -> ProbeResult:
        asked.append(name)
        return probe_fn(name)

    choice = choose_provider(AUTO, ("cuda", "cpu"), counting, disabled=("cuda",))
    assert choice.chosen == "cpu"
    assert choice.passed_over == [("cuda", "switched off in the config (fallback.disabled)")]
    assert asked == ["cpu"]


def test_no_usable_provider_in_the_chain_is_one_error_naming_each(probe_fn) -> None:
    unusable = _unusable_here(probe_fn)
    if not unusable:
        pytest.skip("every accelerator is usable here, so no chain of unusable providers can be built")
    with pytest.raises(HarnessError) as caught:
        choose_provider(AUTO, (*unusable, "cpu"), probe_fn, disabled=("cpu",))
    message = str(caught.value)
    assert "\n" not in message
    for name in (*unusable, "cpu"):
        assert f"{name}:" in message


def test_an_explicit_unusable_provider_stops_with_one_line(probe_fn) -> None:
    unusable = _unusable_here(probe_fn)
    if not unusable:
        pytest.skip("every accelerator is usable here")
    with pytest.raises(HarnessError, match=f"provider {unusable[0]} is") as caught:
        choose_provider(unusable[0], DEFAULT_CHAIN, probe_fn)
    assert "\n" not in str(caught.value)


def test_an_explicit_usable_provider_is_taken_as_is(probe_fn) -> None:
    choice = choose_provider("cpu", DEFAULT_CHAIN, probe_fn)
    assert (choice.requested, choice.chosen, choice.passed_over) == ("cpu", "cpu", [])


def test_an_explicit_provider_switched_off_is_an_error(probe_fn) -> None:
    with pytest.raises(HarnessError, match="switched off"):
        choose_provider("cpu", DEFAULT_CHAIN, probe_fn, disabled=("cpu",))


@pytest.mark.parametrize("chain,problem", [((), "empty"), (("auto", "cpu"), "cannot contain 'auto'"),
                                           (("tpu",), "unknown provider")])
def test_a_bad_chain_is_rejected(chain: tuple[str, ...], problem: str, probe_fn) -> None:
    with pytest.raises(HarnessError, match=problem):
        choose_provider(AUTO, chain, probe_fn)


# -- what ORT says, on one line ---------------------------------------------------------------------

# Recorded here from onnxruntime-gpu 1.31.1 on a machine without CUDA: ORT logged this while it
# dropped the CUDA provider and made a CPU session instead.
CUDA_DROPPED_LOG = (
    "2026-11-24 11:48:16.199060386 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
    "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 onnxruntime::Provider& "
    "onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library "
    "/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so with error: "
    "libcublasLt.so.13: cannot open shared object file: No such file or directory\n"
    "2026-11-24 11:48:16.199092964 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 "
    "CreateExecutionProviderFactoryInstance] Failed to create CUDAExecutionProvider. Require cuDNN 9.* and "
    "CUDA 13.*. Please install all dependencies as mentioned in the GPU requirements page."
)


def test_a_dropped_provider_is_explained_by_ort_first_error_and_last_advice() -> None:
    from harness.providers.capture import summarise_ort_log

    gist = summarise_ort_log(CUDA_DROPPED_LOG)
    assert gist.startswith("Failed to load library") and "libcublasLt.so.13: cannot open" in gist
    assert gist.endswith("Please install all dependencies as mentioned in the GPU requirements page.")
    assert "\n" not in gist and "provider_bridge_ort.cc" not in gist


def test_one_line_drops_ort_source_locations_and_log_prefixes() -> None:
    from harness.providers.capture import one_line

    text = ("/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:729 void "
            "onnxruntime::python::RegisterTensorRTPluginsAsCustomOps(PySessionOptions&, const "
            "onnxruntime::ProviderOptions&) Please install TensorRT libraries\nand try again")
    assert one_line(text) == "Please install TensorRT libraries and try again"
