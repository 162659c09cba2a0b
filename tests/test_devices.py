"""Device kind behind each execution provider, from ORT's get_ep_devices() where it exists."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from harness.providers.devices import UNKNOWN, EpDevice, device_kind, devices_report, get_ep_devices
from harness.providers.platform import normalise_arch, platform_info


def _device(ep: str, kind: str, vendor: str = "Qualcomm") -> EpDevice:
    return EpDevice(ep, kind, vendor, None, None, "Microsoft", "")


def test_device_kind_reads_the_device_type_of_that_provider() -> None:
    devices = [_device("CPUExecutionProvider", "CPU"), _device("DmlExecutionProvider", "GPU"),
               _device("QNNExecutionProvider", "NPU")]
    assert device_kind("cpu", devices) == "CPU"
    assert device_kind("dml", devices) == "GPU"
    assert device_kind("QNNExecutionProvider", devices) == "NPU"
    assert device_kind("cuda", devices) == UNKNOWN  # not listed: never guessed from the name


def test_a_provider_on_several_kinds_lists_each_once() -> None:
    devices = [_device("DmlExecutionProvider", "GPU"), _device("DmlExecutionProvider", "NPU"),
               _device("DmlExecutionProvider", "GPU")]
    assert device_kind("dml", devices) == "GPU+NPU"


@pytest.mark.skipif(not hasattr(ort, "get_ep_devices"), reason="this ONNX Runtime has no get_ep_devices() (1.22+)")
def test_the_real_cpu_provider_runs_on_a_cpu() -> None:
    devices = get_ep_devices()
    assert any(d.execution_provider == "CPUExecutionProvider" for d in devices)
    assert device_kind("cpu") == "CPU"
    report = devices_report()
    assert report["supported"] and report["devices"] and report["note"] == ""


@pytest.mark.parametrize("given,expected", [("AMD64", "x86_64"), ("x86_64", "x86_64"), ("ARM64", "arm64"),
                                            ("aarch64", "arm64"), ("riscv64", "riscv64")])
def test_architecture_names_are_normalised(given: str, expected: str) -> None:
    assert normalise_arch(given) == expected


def test_platform_info_describes_this_interpreter() -> None:
    info = platform_info()
    assert info.python_bits in (32, 64) and info.python_arch and info.cpu_arch
    assert info.to_dict()["emulated_python"] == (info.cpu_arch != info.python_arch)
