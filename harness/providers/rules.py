"""The version- and platform-dependent rules that the provider records (spec.py) point at.

Each ``attach_*`` turns the configured options into what this ONNX Runtime needs (an
``Attachment``); each ``*_hint`` says what to install on this platform. Facts, from ONNX Runtime's
sources and the published wheels (onnxruntime-directml 1.20-1.24, onnxruntime-qnn 1.20-2.7):
- DirectML: the factory returns as soon as ``device_id`` is set, before reading
  ``performance_preference`` / ``device_filter``. ``'dml'`` OrtValues made from Python live on the
  DXGI adapter numbered ``device_id``, so the KV cache must use the adapter the session uses.
  ORT >= 1.23 lists DML devices with ``DxgiAdapterNumber`` and ``DxgiHighPerformanceIndex``.
- QNN before 1.22 knows only ``backend_path`` (``backend_type`` is ignored without a word); from
  1.22 both together are an error. onnxruntime-qnn 2.x is a plugin (``onnxruntime_qnn``,
  ``get_library_path()``) for the CPU ``onnxruntime>=1.24.2``: it never appears in
  ``get_available_providers()`` and is attached with ``add_provider_for_devices`` to the NPU device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.errors import HarnessError

from harness.providers.attachment import Attachment, Placement

if TYPE_CHECKING:
    from harness.providers.platform import PlatformInfo
    from harness.providers.runtime import OrtRuntime

QNN_BACKEND_TYPE_FROM = (1, 22, 0)
QNN_PLUGIN_MAJOR = 2
QNN_PLUGIN_NEEDS_ORT = (1, 24, 2)
DML_EP = "DmlExecutionProvider"

SHAPE_OPS_ON_CPU = (
    "ONNX Runtime places shape computations of DirectML and CUDA graphs on the CPU on purpose, so "
    "strict mode (session.disable_cpu_ep_fallback) refuses the session even for a model built for this "
    "provider: drop strict mode and judge the provider proof's share of nodes instead"
)
DML_UNVERIFIED = (
    "DirectML adapter choice: performance_preference/device_filter are resolved to one DXGI adapter from "
    "ORT's device list (DxgiHighPerformanceIndex) and the session and KV cache are pinned to it; "
    "not run on a multi-GPU laptop here",
    "DirectML KV cache zero-filled on the adapter and the growing KV strategy refused: from ORT and "
    "onnxruntime-genai sources, not run on a DirectML device here",
)
QNN_UNVERIFIED = (
    "QNN: backend_type/backend_path chosen by ORT version and the onnxruntime-qnn 2.x plugin path "
    "(register_execution_provider_library + add_provider_for_devices on the NPU device) follow ORT's and "
    "onnxruntime-qnn's sources; never run on a Snapdragon here",
)
CUDA_UNVERIFIED = (
    "CUDA: KV cache on 'cuda' device_id, zero-filled, and the session options are from ORT's sources; "
    "no NVIDIA GPU was lent to this build, so the CUDA path never ran end to end here",
)


def _attachment(mode: str, options: Mapping[str, Any], device: str, device_id: int, **extra: Any) -> Attachment:
    return Attachment(mode=mode, options=dict(options), kv=Placement(device, device_id), **extra)


# -- CPU and CUDA -------------------------------------------------------------------------------


def attach_cpu(runtime: "OrtRuntime", options: Mapping[str, Any]) -> Attachment:
    return _attachment("providers", options, "cpu", 0)


def attach_cuda(runtime: "OrtRuntime", options: Mapping[str, Any]) -> Attachment:
    device_id = int(options.get("device_id", 0))
    return _attachment("providers", options, "cuda", device_id, unverified=CUDA_UNVERIFIED)


# -- DirectML -----------------------------------------------------------------------------------


def attach_dml(runtime: "OrtRuntime", options: Mapping[str, Any]) -> Attachment:
    """One adapter for the session and the KV cache, chosen as the user asked where ORT can tell."""
    chooses = [key for key in ("performance_preference", "device_filter") if key in options]
    if "device_id" in options and chooses:
        raise HarnessError(
            f"provider.dml sets device_id and {' and '.join(chooses)}: ONNX Runtime ignores the latter once "
            "device_id is set: keep device_id (one adapter) or drop it (choose by preference)"
        )
    if "device_id" in options:
        adapter = int(options["device_id"])
        note = f"DirectML adapter {adapter} from provider.dml.device_id; the KV cache is placed on the same adapter"
        return _attachment("providers", options, "dml", adapter, notes=(note,), unverified=DML_UNVERIFIED)
    preference = str(options.get("performance_preference", "default"))
    wanted = str(options.get("device_filter", "gpu"))
    if wanted == "npu":
        raise HarnessError(
            "provider.dml.device_filter = npu: a DirectML NPU is no DXGI adapter, so the engine cannot place "
            "its KV cache on it: use qnn for the Snapdragon NPU, or device_filter = gpu"
        )
    found = resolve_dml_adapter(runtime.ep_devices(), preference, wanted)
    if found is None:
        why = ("lists no DirectML adapter with a DXGI number" if runtime.has_ep_devices
               else "has no device list (needs 1.23)")
        note = (f"ONNX Runtime {runtime.version_text} {why}, so it cannot say which adapter "
                f"performance_preference={preference} picks: session and KV cache pinned to DXGI adapter 0, the "
                "primary display adapter; set provider.dml.device_id to choose another")
        return _attachment("providers", {"device_id": 0}, "dml", 0, notes=(note,), unverified=DML_UNVERIFIED)
    adapter, name = found
    note = (f"performance_preference={preference}, device_filter={wanted} resolved through ORT's device list to "
            f"DXGI adapter {adapter} ({name or 'unnamed'}); session and KV cache pinned to it")
    return _attachment("providers", {"device_id": adapter}, "dml", adapter, notes=(note,), unverified=DML_UNVERIFIED)


def resolve_dml_adapter(devices: list[Any], preference: str, device_filter: str) -> tuple[int, str] | None:
    """(DXGI adapter number, description) ORT's device list ranks first for this preference, or None.

    ``DxgiHighPerformanceIndex`` is DXGI's high-performance ranking; minimum power takes it reversed;
    "default" keeps DXGI's enumeration order (the primary display adapter first).
    """
    kinds = {"gpu": {"GPU"}, "any": {"GPU", "NPU"}}.get(device_filter, {"GPU"})
    ranked = []
    for entry in devices:
        if str(getattr(entry, "ep_name", "")) != DML_EP or hardware_type(entry) not in kinds:
            continue
        meta = metadata(entry)
        adapter = _int(meta.get("DxgiAdapterNumber"))
        if adapter is None:
            continue  # no DXGI adapter (a compute-only NPU): Python cannot place tensors there
        speed = _int(meta.get("DxgiHighPerformanceIndex"))
        speed = adapter if speed is None else speed
        key = {"high_performance": speed, "minimum_power": -speed}.get(preference, adapter)
        ranked.append((key, adapter, str(meta.get("Description") or meta.get("description") or "")))
    if not ranked:
        return None
    _, adapter, name = min(ranked)
    return adapter, name


def hardware_type(entry: Any) -> str:
    """CPU / GPU / NPU of an OrtEpDevice (its ``device.type`` enum), "unknown" when it has none."""
    kind = getattr(getattr(getattr(entry, "device", None), "type", None), "name", None)
    return str(kind).upper() if kind else "unknown"


def metadata(entry: Any) -> dict[str, Any]:
    try:
        return dict(getattr(getattr(entry, "device", None), "metadata", None) or {})
    except (TypeError, ValueError):
        return {}


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# -- QNN ----------------------------------------------------------------------------------------

_QNN_LIBRARIES = {"htp": "QnnHtp", "cpu": "QnnCpu", "gpu": "QnnGpu", "saver": "QnnSaver"}


def qnn_is_plugin(runtime: "OrtRuntime") -> bool:
    """onnxruntime-qnn 2.x: a plugin package, not a build of onnxruntime."""
    version = runtime.distribution("onnxruntime-qnn")
    return version is not None and version[0] >= QNN_PLUGIN_MAJOR


def attach_qnn(runtime: "OrtRuntime", options: Mapping[str, Any]) -> Attachment:
    if "backend_type" in options and "backend_path" in options:
        raise HarnessError(
            "provider.qnn sets backend_type and backend_path: ONNX Runtime >= 1.22 refuses both and older ones "
            "ignore backend_type: keep one (backend_type = \"htp\" for the NPU)"
        )
    if qnn_is_plugin(runtime):
        return _attach_qnn_plugin(runtime, options)
    opts, notes = dict(options), []
    if runtime.version < QNN_BACKEND_TYPE_FROM and "backend_type" in opts:
        backend = str(opts.pop("backend_type"))
        opts["backend_path"] = qnn_library(backend, runtime.platform)
        notes.append(f"ONNX Runtime {runtime.version_text} has no backend_type (from 1.22; ignored silently before): "
                     f"backend_type={backend} sent as backend_path={opts['backend_path']}")
    return _attachment("providers", opts, "cpu", 0, notes=tuple(notes), unverified=QNN_UNVERIFIED)


def _attach_qnn_plugin(runtime: "OrtRuntime", options: Mapping[str, Any]) -> Attachment:
    plugin = ".".join(str(part) for part in runtime.distribution("onnxruntime-qnn") or ())
    if not runtime.can_register_plugins or runtime.version < QNN_PLUGIN_NEEDS_ORT:
        raise HarnessError(
            f"onnxruntime-qnn {plugin} is a plugin that needs the CPU onnxruntime >= 1.24.2 beside it "
            f"(this one is {runtime.version_text}): pip install -U \"onnxruntime>=1.24.2\""
        )
    note = (f"onnxruntime-qnn {plugin} plugin: registered with register_execution_provider_library and attached "
            "to the NPU device with add_provider_for_devices (QNN never appears in get_available_providers)")
    return _attachment("plugin", options, "cpu", 0, plugin_package="onnxruntime_qnn", plugin_device_type="NPU",
                       notes=(note,), unverified=QNN_UNVERIFIED)


def qnn_library(backend: str, platform: str) -> str:
    base = _QNN_LIBRARIES.get(backend.lower())
    if base is None:
        raise HarnessError(f"provider.qnn.backend_type {backend!r} is unknown: use one of {', '.join(_QNN_LIBRARIES)}")
    return f"{base}.dll" if platform == "win32" else f"lib{base}.so"


# -- install hints ------------------------------------------------------------------------------


def dml_hint(info: "PlatformInfo") -> str:
    if not info.is_windows:
        return "DirectML exists only on Windows; on this OS use cpu (or cuda with onnxruntime-gpu)"
    if info.python_arch == "arm64":
        return ("onnxruntime-directml has no Windows-on-Arm (arm64) wheel: use an x64 Python, "
                "or reach the Hexagon NPU through qnn (pip install onnxruntime-qnn)")
    return "pip uninstall onnxruntime onnxruntime-directml, then pip install onnxruntime-directml (only that one)"


def qnn_hint(info: "PlatformInfo") -> str:
    return ("pip install onnxruntime-qnn (2.x is a plugin that keeps the CPU onnxruntime >= 1.24.2 beside it; "
            "1.x replaces onnxruntime) - Snapdragon: the Hexagon NPU is reached only through QNN")


def cuda_hint(info: "PlatformInfo") -> str:
    return ("pip install onnxruntime-gpu in place of onnxruntime (needs an NVIDIA GPU and the CUDA and cuDNN "
            "versions that onnxruntime-gpu release names)")


def cpu_hint(info: "PlatformInfo") -> str:
    return "reinstall onnxruntime"
