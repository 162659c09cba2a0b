"""Version-dependent provider behaviour, chosen by the installed ONNX Runtime, one test per branch.

The builds these rules are for (onnxruntime-directml 1.20-1.24, onnxruntime-qnn 1.20-2.7, ORT
< 1.23) cannot be installed on this Linux machine, so each branch runs against tests/fake_ort.py:
the same calls the real code makes, with the behaviour read from ORT's sources.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_ort import ep_device, fake_runtime

from harness.errors import HarnessError
from harness.providers.devices import devices_report
from harness.providers.rules import resolve_dml_adapter
from harness.providers.runtime import parse_version
from harness.providers.session import ProviderSettings, attachment_for, create_session, session_error

DML, QNN = "DmlExecutionProvider", "QNNExecutionProvider"
PLUGIN = {"onnxruntime": "1.24.4", "onnxruntime-qnn": "2.7.0"}
# A hybrid laptop as ORT >= 1.23 lists it: the iGPU is DXGI adapter 0, the discrete GPU adapter 1
# but first by high-performance preference.
HYBRID = (
    ep_device(DML, "GPU", DxgiAdapterNumber="0", DxgiHighPerformanceIndex="1", Description="Intel Arc iGPU"),
    ep_device(DML, "GPU", DxgiAdapterNumber="1", DxgiHighPerformanceIndex="0", Description="NVIDIA RTX 4060"),
    ep_device(DML, "NPU", Description="Intel AI Boost"),
    ep_device("CPUExecutionProvider", "CPU"),
)


def _attach(name: str, version: str, options: dict | None = None, **runtime_args):
    return attachment_for(ProviderSettings(name=name, options=options or {}), fake_runtime(version, **runtime_args))


@pytest.mark.parametrize("text,version", [("1.22.1", (1, 22, 1)), ("1.24.0.dev20250101", (1, 24, 0)),
                                          ("1.20", (1, 20, 0)), ("", None), ("unknown", None)])
def test_versions_are_parsed_from_ort_version_strings(text: str, version) -> None:
    assert parse_version(text) == version


def test_enable_fallback_and_ep_devices_come_with_1_23() -> None:
    old, new = fake_runtime("1.22.1"), fake_runtime("1.23.0")
    assert not old.honours_enable_fallback and not old.has_ep_devices
    assert new.honours_enable_fallback and new.has_ep_devices


# -- QNN ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform,library", [("win32", "QnnHtp.dll"), ("linux", "libQnnHtp.so")])
def test_qnn_before_1_22_gets_backend_path_because_backend_type_is_ignored_there(platform: str, library: str) -> None:
    attachment = _attach("qnn", "1.21.1", distributions={"onnxruntime-qnn": "1.21.1"}, platform=platform,
                         available=(QNN, "CPUExecutionProvider"))
    assert attachment.mode == "providers" and attachment.options == {"backend_path": library}
    assert "backend_type=htp sent as backend_path" in attachment.notes[0]


def test_qnn_from_1_22_keeps_backend_type() -> None:
    attachment = _attach("qnn", "1.22.0", distributions={"onnxruntime-qnn": "1.22.0"})
    assert attachment.mode == "providers" and attachment.options == {"backend_type": "htp"}


def test_qnn_backend_path_given_by_the_user_replaces_the_default_backend_type() -> None:
    attachment = _attach("qnn", "1.22.0", {"backend_path": "QnnCpu.dll"}, distributions={"onnxruntime-qnn": "1.22.0"})
    assert attachment.options == {"backend_path": "QnnCpu.dll"}


def test_qnn_with_both_backend_keys_is_one_line_naming_the_fix() -> None:
    with pytest.raises(HarnessError, match="keep one") as caught:
        _attach("qnn", "1.22.0", {"backend_type": "htp", "backend_path": "QnnHtp.dll"})
    assert "\n" not in str(caught.value)


def test_qnn_2x_is_a_plugin_attached_to_the_npu_device() -> None:
    attachment = _attach("qnn", "1.24.4", distributions=PLUGIN)
    assert attachment.mode == "plugin" and attachment.plugin_package == "onnxruntime_qnn"
    assert attachment.plugin_device_type == "NPU" and attachment.options == {"backend_type": "htp"}
    assert attachment.kv == ("cpu", 0)


def test_qnn_2x_beside_an_old_onnxruntime_says_which_version_it_needs() -> None:
    with pytest.raises(HarnessError, match=r"onnxruntime >= 1.24.2.*1.24.1"):
        _attach("qnn", "1.24.1", distributions={"onnxruntime": "1.24.1", "onnxruntime-qnn": "2.7.0"})


def test_qnn_2x_session_registers_the_library_and_takes_only_the_npu_device(tmp_path: Path) -> None:
    npu = ep_device(QNN, "NPU")
    runtime = fake_runtime("1.24.4", PLUGIN, plugin_devices=(ep_device(QNN, "GPU"), npu))
    session = create_session(tmp_path / "model.onnx", ProviderSettings(name="qnn"), runtime)
    ort = runtime.module
    assert ort.registered == [(QNN, "C:/py/onnxruntime_qnn/onnxruntime_providers_qnn.dll")]
    call = ort.sessions[-1]
    assert call["providers"] is None  # the plugin arrives through the session options, not providers=
    assert call["options"].plugin_devices == [npu] and call["options"].plugin_options == {"backend_type": "htp"}
    assert QNN in session.get_providers()


def test_qnn_2x_without_an_npu_device_is_a_one_line_error(tmp_path: Path) -> None:
    runtime = fake_runtime("1.24.4", PLUGIN, plugin_devices=(ep_device(QNN, "GPU"),))
    with pytest.raises(HarnessError, match="lists no NPU device for it") as caught:
        create_session(tmp_path / "model.onnx", ProviderSettings(name="qnn"), runtime)
    assert "\n" not in str(caught.value)


def test_plugin_devices_are_listed_only_after_registration() -> None:
    runtime = fake_runtime("1.24.4", PLUGIN, devices=(ep_device("CPUExecutionProvider", "CPU"),),
                           plugin_devices=(ep_device(QNN, "NPU"),))
    assert [d.ep_name for d in runtime.ep_devices()] == ["CPUExecutionProvider"]  # before: ORT lists no QNN
    report = devices_report(runtime)
    assert {(d["execution_provider"], d["device_type"]) for d in report["devices"]} == {
        ("CPUExecutionProvider", "CPU"), (QNN, "NPU")}
    assert report["problems"] == []


def test_before_1_23_there_is_no_device_list_and_it_says_so() -> None:
    report = devices_report(fake_runtime("1.22.1"))
    assert report["supported"] is False and report["devices"] == [] and "1.23" in report["note"]


# -- DirectML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preference,adapter", [("high_performance", 1), ("minimum_power", 0), ("default", 0)])
def test_dml_preference_is_resolved_to_one_adapter_for_session_and_kv(preference: str, adapter: int) -> None:
    attachment = _attach("dml", "1.24.4", {"performance_preference": preference}, devices=HYBRID)
    assert attachment.options == {"device_id": adapter}  # ORT ignores the preference once device_id is set
    assert attachment.kv == ("dml", adapter)
    assert f"DXGI adapter {adapter}" in attachment.notes[0]


def test_dml_defaults_carry_no_device_id_and_pick_the_high_performance_gpu() -> None:
    settings = ProviderSettings(name="dml")
    assert "device_id" not in settings.spec.options_for(settings.options)
    attachment = attachment_for(settings, fake_runtime("1.24.4", devices=HYBRID))
    assert attachment.kv == ("dml", 1) and "NVIDIA RTX 4060" in attachment.notes[0]


def test_dml_before_1_23_pins_session_and_kv_to_adapter_0_and_says_why() -> None:
    attachment = _attach("dml", "1.22.1")
    assert attachment.options == {"device_id": 0} and attachment.kv == ("dml", 0)
    assert "has no device list (needs 1.23)" in attachment.notes[0]
    assert "provider.dml.device_id" in attachment.notes[0]


def test_dml_on_an_ort_that_lists_no_dml_adapter_says_so_and_pins_adapter_0() -> None:
    attachment = _attach("dml", "1.24.4", devices=(ep_device("CPUExecutionProvider", "CPU"),))
    assert attachment.kv == ("dml", 0) and "lists no DirectML adapter" in attachment.notes[0]


def test_the_device_list_shows_the_dxgi_adapter_number_to_put_in_device_id() -> None:
    report = devices_report(fake_runtime("1.24.4", devices=HYBRID))
    adapters = {d["description"]: d["adapter"] for d in report["devices"]}
    assert adapters == {"Intel Arc iGPU": 0, "NVIDIA RTX 4060": 1, "Intel AI Boost": None, "": None}


def test_dml_device_id_keeps_session_and_kv_on_that_adapter() -> None:
    attachment = _attach("dml", "1.24.4", {"device_id": 2}, devices=HYBRID)
    assert attachment.options == {"device_id": 2} and attachment.kv == ("dml", 2)


def test_dml_device_id_with_a_preference_is_refused_because_ort_would_ignore_the_preference() -> None:
    with pytest.raises(HarnessError, match="ignores the latter once device_id is set"):
        _attach("dml", "1.24.4", {"device_id": 0, "performance_preference": "high_performance"})


def test_dml_npu_filter_is_refused_because_the_kv_cache_cannot_live_there() -> None:
    with pytest.raises(HarnessError, match="use qnn"):
        _attach("dml", "1.24.4", {"device_filter": "npu"}, devices=HYBRID)


def test_dml_adapters_without_a_dxgi_number_are_never_chosen() -> None:
    npu_only = (ep_device(DML, "NPU", Description="NPU"),)
    assert resolve_dml_adapter(list(npu_only), "high_performance", "any") is None


# -- sessions: no silent CPU retry, strict mode -------------------------------------------------------


@pytest.mark.parametrize("version", ["1.20.1", "1.22.1", "1.23.0", "1.24.4"])
def test_a_failing_session_is_never_retried_on_cpu(version: str, tmp_path: Path) -> None:
    runtime = fake_runtime(version, {"onnxruntime-directml": version}, available=(DML, "CPUExecutionProvider"),
                           fail_with="D3D12 device removed")
    with pytest.raises(HarnessError, match="D3D12 device removed"):
        create_session(tmp_path / "model.onnx", ProviderSettings(name="dml", options={"device_id": 0}), runtime)
    assert runtime.module.sessions[-1]["retried_on_cpu"] is False


def test_the_fake_wrapper_before_1_23_really_retries_when_not_stopped(tmp_path: Path) -> None:
    """The premise of the test above: ORT < 1.23's wrapper ignores enable_fallback=0."""
    ort = fake_runtime("1.22.1", fail_with="EP failed").module
    ort.InferenceSession(str(tmp_path / "m.onnx"), None, providers=[DML], enable_fallback=0)
    assert ort.sessions[-1]["retried_on_cpu"] is True


@pytest.mark.parametrize("name", ["dml", "cuda"])
def test_strict_mode_failure_on_dml_and_cuda_explains_shape_ops_on_cpu(name: str) -> None:
    error = RuntimeError("This session contains graph nodes that are assigned to the default CPU EP, but "
                         "fallback to CPU EP has been explicitly disabled by the user.")
    message = session_error("model.onnx", ProviderSettings(name=name, strict=True), error)
    assert message.startswith(f"strict mode refused the session on {name}") and "shape computations" in message
    assert "ORT said: This session contains graph nodes" in message
    plain = session_error("model.onnx", ProviderSettings(name="qnn", strict=True), error)
    assert "shape computations" not in plain and "cannot create an ONNX Runtime session" in plain


# -- KV cache on the device ---------------------------------------------------------------------------


def test_device_kv_buffers_are_zero_filled_on_the_sessions_adapter() -> None:
    import numpy as np

    from harness.model.kv_cache import _zeros
    from harness.model.placement import Placement

    made: list[tuple] = []

    class OrtValue:
        @staticmethod
        def ortvalue_from_numpy(array, device: str = "cpu", device_id: int = 0):
            made.append((array.copy(), device, device_id))
            return array

        @staticmethod
        def ortvalue_from_shape_and_type(*args):  # uninitialised device memory: must not be used
            raise AssertionError("KV buffers must be zero-filled")

    fake = type("Ort", (), {"OrtValue": OrtValue})
    _zeros((1, 2, 8, 4), np.dtype(np.float16), Placement("dml", 1), fake)
    [(array, device, device_id)] = made
    assert (device, device_id) == ("dml", 1) and array.dtype == np.float16 and not array.any()
