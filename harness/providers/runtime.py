"""The installed ONNX Runtime as one object: its version, its module, the pip packages beside it.

Every version-dependent choice in harness/providers/ reads an ``OrtRuntime``, never ``onnxruntime``
directly, so each choice can be tested per version with a fake module and a version string
(tests/test_provider_versions.py). Facts about versions, from ONNX Runtime's sources and wheels:
- ``InferenceSession(..., enable_fallback=0)`` is honoured from 1.23; before that the Python wrapper
  sets ``_enable_fallback = True`` unconditionally and retries a failed session on CPU.
- ``get_ep_devices()`` exists from 1.23; plugin providers (QNN 2.x) appear in it only after
  ``register_execution_provider_library``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.errors import HarnessError

Version = tuple[int, int, int]

FALLBACK_FLAG_FROM: Version = (1, 23, 0)  # enable_fallback=0 honoured
EP_DEVICES_FROM: Version = (1, 23, 0)  # ort.get_ep_devices()

_registered: dict[int, set[str]] = {}  # id(ort module) -> plugin EP registration names done
_register_lock = threading.Lock()


def parse_version(text: str | None) -> Version | None:
    """"1.22.1" -> (1, 22, 1); "1.24.0.dev20250101" -> (1, 24, 0); None when there is no version."""
    if not text:
        return None
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise HarnessError(
            "ONNX Runtime is not installed: pip install 'phi3-harness[cpu]' "
            "(or [directml], [qnn], [cuda] - exactly one of them)"
        ) from None
    return onnxruntime


@functools.lru_cache(maxsize=1)
def _scan_distributions() -> tuple[tuple[str, str], ...]:
    found = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if name.lower().replace("_", "-").startswith("onnxruntime") or name.lower().startswith("ort-nightly"):
            found.append((name, dist.version))
    return tuple(sorted(found))


def ort_distributions() -> dict[str, str]:
    """Installed distributions named onnxruntime* (onnxruntime, -directml, -qnn, -gpu, -genai, -ep-*).

    Scanned once per process: pip does not change them under a running harness."""
    return dict(_scan_distributions())


@dataclass(frozen=True)
class OrtRuntime:
    """ONNX Runtime as the harness sees it. ``module`` is ``onnxruntime`` (or a test's fake)."""

    module: Any
    version: Version
    distributions: Mapping[str, str] = field(default_factory=dict)
    importer: Any = importlib.import_module  # how plugin packages (onnxruntime_qnn) are imported
    platform: str = sys.platform  # library names differ: QnnHtp.dll vs libQnnHtp.so

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)

    @property
    def honours_enable_fallback(self) -> bool:
        return self.version >= FALLBACK_FLAG_FROM

    @property
    def has_ep_devices(self) -> bool:
        return self.version >= EP_DEVICES_FROM and hasattr(self.module, "get_ep_devices")

    @property
    def can_register_plugins(self) -> bool:
        return hasattr(self.module, "register_execution_provider_library") and self.has_ep_devices

    def compiled_in(self) -> list[str]:
        """What this build was compiled with (not proof that any of them works; plugins never appear)."""
        return list(self.module.get_available_providers())

    def distribution(self, name: str) -> Version | None:
        """Version of an installed pip distribution (names compared without case, '_' = '-')."""
        wanted = name.lower().replace("_", "-")
        for dist, version in self.distributions.items():
            if dist.lower().replace("_", "-") == wanted:
                return parse_version(version)
        return None

    def register_plugin(self, registration: str, library: str) -> None:
        """``register_execution_provider_library`` once per process and name (ORT refuses a second)."""
        with _register_lock:
            done = _registered.setdefault(id(self.module), set())
            if registration in done:
                return
            try:
                self.module.register_execution_provider_library(registration, library)
            except Exception as error:  # ORT's own error types; "already registered" is fine
                if "already" not in str(error).lower():
                    raise
            done.add(registration)

    def ep_devices(self) -> list[Any]:
        """ORT's (execution provider, device) pairs; [] before 1.23 or when the call fails."""
        if not self.has_ep_devices:
            return []
        try:
            return list(self.module.get_ep_devices())
        except Exception:  # a build that has the call but no EP factories behind it
            return []


def detect_runtime() -> OrtRuntime:
    """The installed ONNX Runtime; a one-line HarnessError when none is importable."""
    ort = import_onnxruntime()
    version = parse_version(getattr(ort, "__version__", "")) or (0, 0, 0)
    return OrtRuntime(ort, version, ort_distributions())
