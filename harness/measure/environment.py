"""The environment stamp written to environment.json with every run.

It says what produced the numbers: harness version and git commit, ONNX Runtime version and which
ORT distributions are installed (two side by side break each other), available providers, OS, CPU,
Python, and the model folder with a hash of its files.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterable

import psutil

import harness
from harness.cache import cache_root
from harness.providers.inventory import ort_inventory, unverified_on_hardware
from harness.providers.platform import platform_info

HASH_CHUNK = 1 << 20
_hash_memo: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_hash_lock = threading.Lock()


def collect_environment(
    model_dir: str | Path | None,
    provider_names: Iterable[str],
    *,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to tell two runs' conditions apart, as plain JSON-ready data."""
    from harness.measure.results import SCHEMA_VERSION

    env: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "harness": {"version": harness.__version__, **harness_checkout_state()},
        "onnxruntime": onnxruntime_info(),
        "providers_requested": list(provider_names),
        "platform": platform_info().to_dict(),  # native vs Python architecture (x64 Python on Arm)
        "os": os_info(),
        "cpu": cpu_info(),
        "python": python_info(),
        "telemetry": telemetry_info(),
        "model": model_info(model_dir) if model_dir is not None else None,
    }
    if extra:
        env.update(extra)
    return env


def harness_checkout_state() -> dict[str, Any]:
    """Git state of the harness's own source checkout; None values for an installed wheel.

    Only a folder with pyproject.toml beside the package counts as a checkout: site-packages inside
    some other repository must not lend that repository's commit.
    """
    root = Path(harness.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        return {"git_commit": None, "git_dirty": None}
    return git_state(root)


def git_state(path: Path) -> dict[str, Any]:
    """Commit and dirty flag of the checkout ``path`` is in; None values outside a repository."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": (bool(status) if status is not None else None)}


def onnxruntime_info() -> dict[str, Any]:
    """The ORT inventory (harness/providers/inventory.py) plus what is unverified on hardware."""
    info = ort_inventory()
    info["unverified_on_hardware"] = unverified_on_hardware(info)
    return info


def os_info() -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "platform": platform.platform(),
        "memory_total_bytes": psutil.virtual_memory().total,
    }


def cpu_name() -> str:
    """A readable CPU name; platform.processor() is empty on Linux and terse on Windows."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
                for line in cpuinfo:
                    if line.lower().startswith(("model name", "hardware", "cpu model")):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    elif sys.platform == "win32":
        try:
            import winreg

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
                return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
        except OSError:
            pass
    elif sys.platform == "darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def cpu_info() -> dict[str, Any]:
    return {
        "name": cpu_name(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
    }


def python_info() -> dict[str, Any]:
    """What platform_info does not say about the interpreter."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def telemetry_info() -> dict[str, Any]:
    """What the telemetry columns mean on this machine (peak source, GPU counters, CPU% base)."""
    from harness.measure.gpu_counters import gpu_counters_for
    from harness.measure.telemetry import peak_rss_source

    counters = gpu_counters_for(os.getpid())
    counters.close()
    return {
        "peak_rss_source": peak_rss_source(os.getpid()),
        "gpu_counters_available": counters.available,
        "gpu_counters_reason": counters.reason,
        "cpu_percent_base_cores": psutil.cpu_count(logical=True),
    }


def model_info(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir).resolve()
    if not path.is_dir():
        return {"path": str(path), "sha256": None, "error": "not a folder"}
    stamps = _file_stamps(path)
    return {
        "path": str(path),
        "files": len(stamps),
        "bytes": sum(size for _, size, _ in stamps),
        "sha256": _cached_hash(path, stamps, None),
    }


def _file_stamps(folder: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = file.stat()
        stamps.append((file.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def model_hash(model_dir: str | Path, cache_dir: str | Path | None = None) -> str:
    """sha256 over the sorted relative file names and contents of the folder.

    A real Phi-3 folder is gigabytes, so the digest is cached per (path, name, size, mtime) of every
    file: in memory, and in ``cache_dir``/model-hashes.json across runs. Changing any file's size
    or mtime (which every normal write does) invalidates it.
    """
    folder = Path(model_dir).resolve()
    return _cached_hash(folder, _file_stamps(folder), cache_dir)


def _cached_hash(folder: Path, stamps: tuple[tuple[str, int, int], ...], cache_dir: str | Path | None) -> str:
    key = (str(folder), stamps)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    cache_file = Path(cache_dir or cache_root()) / "model-hashes.json"
    fingerprint = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    cached = _read_cache(cache_file).get(fingerprint)
    digest = cached if isinstance(cached, str) else _hash_files(folder, stamps)
    if cached is None:
        _write_cache(cache_file, fingerprint, digest)
    with _hash_lock:
        _hash_memo[key] = digest
    return digest


def _hash_files(folder: Path, stamps: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, size, _ in stamps:
        # name and size delimit each file, so moving bytes between files changes the digest
        digest.update(f"{name}\0{size}\0".encode())
        with (folder / name).open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, fingerprint: str, digest: str) -> None:
    """Best effort: a read-only home only costs re-hashing next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[fingerprint] = digest
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        pass
