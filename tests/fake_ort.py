"""Stand-ins for ONNX Runtime builds this machine does not have (1.20-1.22, DirectML, QNN 2.x).

They implement only the interface harness/providers/ calls (``__version__``,
``get_available_providers``, ``get_ep_devices``, ``register_execution_provider_library``,
``SessionOptions``, ``InferenceSession``), with the behaviour read from ORT's sources: the
InferenceSession wrapper of ORT < 1.23 sets ``_enable_fallback = True`` whatever it is given and
retries a failed session on CPU. Version-dependent choices are tested against these; everything
that can run for real here (CPU sessions, profiles, doctor) runs on the real ORT in other tests.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.providers.runtime import OrtRuntime, parse_version


def ep_device(ep: str, kind: str, **metadata: Any) -> SimpleNamespace:
    """An OrtEpDevice as the Python binding shows it: ep_name, device.type.name, device.metadata."""
    hardware = SimpleNamespace(type=SimpleNamespace(name=kind), metadata=dict(metadata), vendor="vendor",
                               vendor_id=0x1234, device_id=0x42)
    return SimpleNamespace(ep_name=ep, ep_vendor="Microsoft", device=hardware)


class FakeSessionOptions:
    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self.plugin_devices: list[Any] = []
        self.plugin_options: dict[str, Any] = {}
        self.enable_mem_pattern = True
        self.execution_mode = "sequential"
        self.intra_op_num_threads = self.inter_op_num_threads = 0

    def get_session_config_entry(self, key: str) -> str:
        return self.entries[key]

    def add_session_config_entry(self, key: str, value: str) -> None:
        self.entries[key] = value

    def add_provider_for_devices(self, devices: list[Any], options: dict[str, Any]) -> None:
        self.plugin_devices, self.plugin_options = list(devices), dict(options)


class FakeOrt:
    """One ORT build: ``version``, compiled-in providers, devices, and whether sessions fail."""

    def __init__(self, version: str, available: tuple[str, ...] = ("CPUExecutionProvider",),
                 devices: tuple[Any, ...] = (), plugin_devices: tuple[Any, ...] = (),
                 fail_with: str | None = None) -> None:
        self.__version__ = version
        self.__file__ = "/fake/onnxruntime/__init__.py"
        self._available = list(available)
        self._devices = list(devices)
        self._plugin_devices = list(plugin_devices)  # listed only after registration
        self.registered: list[tuple[str, str]] = []
        self.sessions: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.SessionOptions = FakeSessionOptions
        self.ExecutionMode = SimpleNamespace(ORT_SEQUENTIAL="sequential", ORT_PARALLEL="parallel")
        self.InferenceSession = _session_class(self, fallback_flag_honoured=parse_version(version) >= (1, 23, 0))
        if parse_version(version) >= (1, 23, 0):
            self.get_ep_devices = self._get_ep_devices
            self.register_execution_provider_library = self._register

    def get_available_providers(self) -> list[str]:
        return list(self._available)

    def _get_ep_devices(self) -> list[Any]:
        return self._devices + (self._plugin_devices if self.registered else [])

    def _register(self, name: str, path: str) -> None:
        if any(done == name for done, _ in self.registered):
            raise RuntimeError(f"EP library {name} is already registered")
        self.registered.append((name, path))


def _session_class(ort: FakeOrt, fallback_flag_honoured: bool) -> type:
    class InferenceSession:
        """The Python wrapper's fallback logic, as in onnxruntime_inference_collection.py."""

        def __init__(self, path: str, sess_options: Any = None, providers: Any = None, **kwargs: Any) -> None:
            self._enable_fallback = True  # ORT < 1.23: always, whatever kwargs say
            if fallback_flag_honoured:
                self._enable_fallback = int(kwargs.get("enable_fallback", 1)) == 1
            self._options = sess_options
            call = {"path": path, "options": sess_options, "providers": providers, "retried_on_cpu": False}
            ort.sessions.append(call)
            try:
                self._create(providers, sess_options)
            except RuntimeError:
                if self._enable_fallback:
                    call["retried_on_cpu"] = True
                    self._create(["CPUExecutionProvider"], sess_options, fail=False)
                    return
                raise

        def _create(self, providers: Any, options: Any, fail: bool = True) -> None:
            if fail and ort.fail_with:
                raise RuntimeError(ort.fail_with)
            names = [p[0] if isinstance(p, tuple) else p for p in providers or []]
            if not names and options is not None and options.plugin_devices:
                names = [options.plugin_devices[0].ep_name, "CPUExecutionProvider"]
            self._providers = names

        def get_providers(self) -> list[str]:
            return list(self._providers)

        def get_session_options(self) -> Any:
            return self._options

    return InferenceSession


def fake_runtime(version: str, distributions: dict[str, str] | None = None, platform: str = "win32",
                 plugin_path: str = "C:/py/onnxruntime_qnn/onnxruntime_providers_qnn.dll",
                 **ort_args: Any) -> OrtRuntime:
    """An OrtRuntime over a FakeOrt; the plugin package (onnxruntime_qnn) imports when it is installed."""
    module = FakeOrt(version, **ort_args)
    distributions = {"onnxruntime": version} if distributions is None else distributions
    plugin = SimpleNamespace(get_library_path=lambda: plugin_path)

    def importer(name: str) -> Any:
        if name == "onnxruntime_qnn" and "onnxruntime-qnn" in distributions:
            return plugin
        raise ImportError(f"No module named {name!r}")

    return OrtRuntime(module, parse_version(version), distributions, importer, platform)
