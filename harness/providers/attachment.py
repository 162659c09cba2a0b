"""What a provider's version-dependent rules decide (rules.py), as plain records (spec.py, session.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.model.placement import Placement


@dataclass(frozen=True)
class Attachment:
    """How a session gets this provider on this ONNX Runtime: the version-dependent part, decided once."""

    mode: str  # "providers": InferenceSession(providers=[(ep, options)]) | "plugin": add_provider_for_devices
    options: dict[str, Any]  # provider options exactly as ORT receives them
    kv: Placement
    plugin_package: str | None = None  # Python package with get_library_path() (plugin mode)
    plugin_device_type: str | None = None  # OrtHardwareDevice type to attach to (plugin mode): "NPU"
    notes: tuple[str, ...] = ()  # what was translated or chosen, and why, in words (recorded per run)
    unverified: tuple[str, ...] = ()  # behaviour built from ORT's sources, never run on hardware here
