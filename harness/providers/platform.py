"""What machine and which Python this is, including the case that matters most for DirectML.

On Windows on Arm an x64 Python runs emulated, and ``platform.machine()`` then reports the
*emulated* architecture (AMD64). The native one comes from ``IsWow64Process2``, so the doctor can
say "Snapdragon, x64 Python" instead of guessing.
"""

from __future__ import annotations

import platform
import struct
import sys
import sysconfig
from dataclasses import asdict, dataclass

# IMAGE_FILE_MACHINE_* values returned by IsWow64Process2 as the native machine.
_WINDOWS_MACHINES = {0x8664: "AMD64", 0xAA64: "ARM64", 0x014C: "x86", 0x01C4: "ARM"}

_ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}


@dataclass(frozen=True)
class PlatformInfo:
    os: str  # Windows | Linux | Darwin
    os_release: str
    cpu_arch: str  # native CPU architecture, normalised: x86_64 | arm64 | ...
    python_arch: str  # architecture the Python interpreter was built for, normalised
    python_version: str
    python_platform: str  # sysconfig platform tag, e.g. win-amd64, win-arm64, linux-x86_64
    python_bits: int
    processor: str

    @property
    def is_windows(self) -> bool:
        return self.os == "Windows"

    @property
    def windows_on_arm(self) -> bool:
        return self.is_windows and self.cpu_arch == "arm64"

    @property
    def emulated_python(self) -> bool:
        """True when the interpreter's architecture differs from the CPU's (x64 Python on Arm)."""
        return self.cpu_arch != self.python_arch

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = asdict(self)
        data["windows_on_arm"] = self.windows_on_arm
        data["emulated_python"] = self.emulated_python
        return data


def normalise_arch(name: str) -> str:
    return _ARCH_ALIASES.get(name.lower(), name.lower() or "unknown")


def native_machine() -> str:
    """The CPU's own architecture, seen through any emulation layer (Windows only needs care)."""
    if sys.platform == "win32":
        machine = _windows_native_machine()
        if machine:
            return normalise_arch(machine)
    return normalise_arch(platform.machine())


def python_machine() -> str:
    """The architecture this interpreter was built for (win-amd64 under emulation reports x86_64)."""
    tag = sysconfig.get_platform()  # e.g. win-amd64, win-arm64, linux-x86_64, macosx-11.0-arm64
    return normalise_arch(tag.rsplit("-", 1)[-1]) if "-" in tag else normalise_arch(platform.machine())


def platform_info() -> PlatformInfo:
    return PlatformInfo(
        os=platform.system() or sys.platform,
        os_release=platform.release(),
        cpu_arch=native_machine(),
        python_arch=python_machine(),
        python_version=platform.python_version(),
        python_platform=sysconfig.get_platform(),
        python_bits=struct.calcsize("P") * 8,
        processor=platform.processor() or "",
    )


def _windows_native_machine() -> str | None:
    try:
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        function = kernel32.IsWow64Process2  # Windows 10 1709 and later
    except (AttributeError, OSError):
        return None
    process_machine = wintypes.USHORT()
    native = wintypes.USHORT()
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    function.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.USHORT), ctypes.POINTER(wintypes.USHORT)]
    handle = kernel32.GetCurrentProcess()
    if not function(handle, ctypes.byref(process_machine), ctypes.byref(native)):
        return None
    return _WINDOWS_MACHINES.get(native.value)
