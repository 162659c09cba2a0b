"""Which hardware sits behind each execution provider (CPU, GPU or NPU), where ORT can tell.

ONNX Runtime 1.23+ has ``get_ep_devices()``: one entry per (execution provider, hardware device)
pair it *could* use, each with the device type and vendor - not the adapter a session chose.
Plugin providers (onnxruntime-qnn 2.x) appear in it only after their library is registered, so
installed plugins are registered first. Older builds have no such call; then every answer is
"unknown" rather than a guess from the provider's name (DirectML may run on a GPU or an NPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from harness.errors import HarnessError
from harness.providers.rules import hardware_type
from harness.providers.runtime import OrtRuntime, detect_runtime
from harness.providers.spec import SPECS, execution_provider_name

UNKNOWN = "unknown"


@dataclass(frozen=True)
class EpDevice:
    execution_provider: str
    device_type: str  # CPU | GPU | NPU | unknown
    vendor: str
    vendor_id: int | None
    device_id: int | None
    ep_vendor: str
    description: str  # the OS's name for the device where ORT passes it on (Windows: adapter name)
    adapter: int | None = None  # DXGI adapter number (Windows GPUs): the value for provider.dml.device_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register_installed_plugins(runtime: OrtRuntime) -> list[str]:
    """Register every installed plugin provider so ORT lists its devices; returns problems in words."""
    from harness.providers.session import ProviderSettings, attachment_for

    problems = []
    for name in SPECS:
        try:
            attachment = attachment_for(ProviderSettings(name=name), runtime)
            if attachment.mode != "plugin":
                continue
            package = runtime.importer(attachment.plugin_package)
            runtime.register_plugin(SPECS[name].execution_provider, package.get_library_path())
        except HarnessError as error:
            problems.append(f"{name}: {error}")
        except Exception as error:  # ImportError, or ORT refusing the library
            problems.append(f"{name}: plugin not registered ({type(error).__name__}: {error})")
    return problems


def get_ep_devices(runtime: OrtRuntime | None = None) -> list[EpDevice]:
    """Every (provider, device) pair ORT reports, plugins registered first; empty when ORT cannot say."""
    runtime = runtime or detect_runtime()
    if not runtime.has_ep_devices:
        return []
    register_installed_plugins(runtime)
    return [_convert(entry) for entry in runtime.ep_devices()]


def device_kind(provider: str, devices: Sequence[EpDevice] | None = None) -> str:
    """CPU, GPU or NPU behind ``provider`` (short or ORT name); "GPU+NPU" when ORT lists several."""
    ep = execution_provider_name(provider)
    found = get_ep_devices() if devices is None else devices
    kinds: list[str] = []
    for device in found:
        if device.execution_provider == ep and device.device_type not in kinds:
            kinds.append(device.device_type)
    known = [kind for kind in kinds if kind != UNKNOWN]
    return "+".join(known) if known else UNKNOWN


def devices_report(runtime: OrtRuntime | None = None) -> dict[str, Any]:
    """Plain data for the doctor and the environment stamp."""
    runtime = runtime or detect_runtime()
    supported = runtime.has_ep_devices
    problems = register_installed_plugins(runtime) if supported else []
    devices = [_convert(entry) for entry in runtime.ep_devices()] if supported else []
    note = "" if supported else f"ONNX Runtime {runtime.version_text} has no get_ep_devices() (1.23+): device kind unknown"
    return {"supported": supported, "note": note, "problems": problems, "devices": [d.to_dict() for d in devices]}


def _convert(entry: Any) -> EpDevice:
    hardware = getattr(entry, "device", None)
    metadata = _mapping(getattr(hardware, "metadata", None))
    return EpDevice(
        execution_provider=str(getattr(entry, "ep_name", UNKNOWN)),
        device_type=hardware_type(entry),
        vendor=str(getattr(hardware, "vendor", "") or ""),
        vendor_id=_int_or_none(getattr(hardware, "vendor_id", None)),
        device_id=_int_or_none(getattr(hardware, "device_id", None)),
        ep_vendor=str(getattr(entry, "ep_vendor", "") or ""),
        description=str(metadata.get("Description") or metadata.get("description") or ""),
        adapter=_int_or_none(_digits(metadata.get("DxgiAdapterNumber"))),
    )


def _mapping(value: Any) -> dict[str, Any]:
    try:
        return dict(value or {})
    except (TypeError, ValueError):
        return {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _digits(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None
