"""Which hardware sits behind each execution provider (CPU, GPU or NPU), where ORT can tell.

ONNX Runtime 1.22+ has ``get_ep_devices()``: one entry per (execution provider, hardware device)
pair it can use, each with the device type and vendor. Older builds have no such call; then every
answer is "unknown" rather than a guess from the provider's name (DirectML, for one, may run on a
GPU or an NPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from harness.providers import execution_provider_name, import_onnxruntime

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ep_devices_supported() -> bool:
    return hasattr(import_onnxruntime(), "get_ep_devices")


def get_ep_devices() -> list[EpDevice]:
    """Every (provider, device) pair ORT reports; empty when this ORT cannot say."""
    ort = import_onnxruntime()
    if not hasattr(ort, "get_ep_devices"):
        return []
    try:
        raw = ort.get_ep_devices()
    except Exception:  # a build that has the call but no EP factories behind it
        return []
    return [_convert(entry) for entry in raw]


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


def devices_report() -> dict[str, Any]:
    """Plain data for the doctor and the environment stamp."""
    supported = ep_devices_supported()
    devices = get_ep_devices() if supported else []
    return {
        "supported": supported,
        "note": "" if supported else "this ONNX Runtime has no get_ep_devices() (1.22+): device kind unknown",
        "devices": [device.to_dict() for device in devices],
    }


def _convert(entry: Any) -> EpDevice:
    hardware = getattr(entry, "device", None)
    kind = getattr(getattr(hardware, "type", None), "name", None) or UNKNOWN
    metadata = _mapping(getattr(hardware, "metadata", None))
    return EpDevice(
        execution_provider=str(getattr(entry, "ep_name", UNKNOWN)),
        device_type=str(kind).upper() if kind != UNKNOWN else UNKNOWN,
        vendor=str(getattr(hardware, "vendor", "") or ""),
        vendor_id=_int_or_none(getattr(hardware, "vendor_id", None)),
        device_id=_int_or_none(getattr(hardware, "device_id", None)),
        ep_vendor=str(getattr(entry, "ep_vendor", "") or ""),
        description=str(metadata.get("Description") or metadata.get("description") or ""),
    )


def _mapping(value: Any) -> dict[str, Any]:
    try:
        return dict(value or {})
    except (TypeError, ValueError):
        return {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
