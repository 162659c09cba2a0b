"""GPU engine utilisation and GPU memory of one process.

One interface (``GpuCounters``), one class per way of reading it, chosen in ``gpu_counters_for``:
- Windows: PDH performance counters, the source Task Manager uses.
      \\GPU Engine(pid_<PID>*)\\Utilization Percentage
      \\GPU Process Memory(pid_<PID>*)\\Dedicated Usage
      \\GPU Process Memory(pid_<PID>*)\\Shared Usage
  read through ctypes on pdh.dll (no extra dependency). Integrated GPUs (Adreno, Intel/AMD iGPU)
  have almost no dedicated memory: their allocations are Shared Usage, so both are read and the
  process's GPU memory is their sum.
- elsewhere: ``UnavailableGpuCounters`` says why; it never returns zeros, because a zero would read
  as "the accelerator was idle" when nothing was measured.
"""

from __future__ import annotations

import ctypes
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Protocol


@dataclass(frozen=True)
class GpuReading:
    util_percent: float | None  # busiest engine type of this process, 0-100
    dedicated_bytes: int | None = None  # dedicated GPU memory of this process, all adapters
    shared_bytes: int | None = None  # shared (system) memory the GPU driver holds for this process

    @property
    def mem_bytes(self) -> int | None:
        """Dedicated + shared: what the process holds through the GPU (None when neither was read)."""
        if self.dedicated_bytes is None and self.shared_bytes is None:
            return None
        return (self.dedicated_bytes or 0) + (self.shared_bytes or 0)


class GpuCounters(Protocol):
    available: bool
    reason: str  # why unavailable ("" when available)

    def read(self) -> GpuReading: ...

    def close(self) -> None: ...


class UnavailableGpuCounters:
    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self) -> GpuReading:
        return GpuReading(None)

    def close(self) -> None:
        pass


# --- instance names -> figures (pure, tested on every platform) --------------------------------

# e.g. "pid_1234_luid_0x00000000_0x0000D1B5_phys_0_eng_3_engtype_Compute"
_ENGINE = re.compile(r"^pid_(\d+)_luid_(0x[0-9A-Fa-f]+_0x[0-9A-Fa-f]+)_phys_(\d+)_eng_(\d+)_engtype_(.*)$")
_PROCESS_MEMORY = re.compile(r"^pid_(\d+)_luid_")


def engine_utilisation(pid: int, values: Iterable[tuple[str, float]]) -> float | None:
    """Utilisation of ``pid`` from (instance, percent) pairs of ``\\GPU Engine(*)``.

    Engines of one type on one adapter are summed (work can spread over several 3D/Compute queues),
    then the busiest type counts, capped at 100: the rule Task Manager's GPU column follows.
    None when the process has no engine instance (it never touched a GPU).
    """
    per_type: dict[tuple[str, str, str], float] = {}
    for name, value in values:
        match = _ENGINE.match(name)
        if match is None or int(match.group(1)) != pid:  # "pid_12*" also matches pid_123: compare exactly
            continue
        key = (match.group(2), match.group(3), match.group(5))
        per_type[key] = per_type.get(key, 0.0) + float(value)
    if not per_type:
        return None
    return min(100.0, max(per_type.values()))


def process_memory(pid: int, values: Iterable[tuple[str, float]]) -> int | None:
    """GPU memory of ``pid`` (one counter: dedicated or shared) summed over adapters; None without instance."""
    total: int | None = None
    for name, value in values:
        match = _PROCESS_MEMORY.match(name)
        if match is not None and int(match.group(1)) == pid:
            total = (total or 0) + int(value)
    return total


def readable_figure(values: list | None, figure: float | int | None, idle: float | int) -> float | int | None:
    """None when the counters gave no data; ``idle`` when they did but this process has no instance.

    A process without a GPU engine instance has used no GPU: that is a measured zero, unlike a
    failed read, which must stay None.
    """
    if values is None:
        return None
    return idle if figure is None else figure


# --- Windows PDH ------------------------------------------------------------------------------

_PDH_FMT_DOUBLE = 0x00000200
_PDH_MORE_DATA = 0x800007D2
_PDH_CSTATUS_VALID_DATA = 0x0
_PDH_CSTATUS_NEW_DATA = 0x1


class _FmtValue(ctypes.Structure):
    # PDH_FMT_COUNTERVALUE: DWORD CStatus, then an 8-byte union (we ask for doubleValue).
    _fields_ = [("CStatus", ctypes.c_uint32), ("doubleValue", ctypes.c_double)]


class _FmtItem(ctypes.Structure):
    # PDH_FMT_COUNTERVALUE_ITEM_W
    _fields_ = [("szName", ctypes.c_wchar_p), ("FmtValue", _FmtValue)]


def array_outcome(status: int, size: int) -> str:
    """What PdhGetFormattedCounterArray's sizing call said: "data", "no_instance" or "failed".

    Asked with no buffer, PDH answers PDH_MORE_DATA and the size when instances exist, and success
    with size 0 when the counter has no instance at all (a process that never touched a GPU): that
    is a measured zero, not an unreadable counter.
    """
    if status == _PDH_MORE_DATA and size > 0:
        return "data"
    if status == 0 and size == 0:
        return "no_instance"
    return "failed"


class PdhGpuCounters:
    """GPU engine utilisation and GPU memory (dedicated and shared) of one process from Windows PDH.

    PDH rate counters need two collections; the first reading after opening therefore has no
    utilisation yet (None), later ones cover the time since the previous ``read``. ``pdh`` is
    pdh.dll; tests pass a stand-in with the same five functions.
    """

    available = True
    reason = ""

    def __init__(self, pid: int, pdh: Any = None) -> None:
        self.pid = pid
        self._pdh = pdh if pdh is not None else ctypes.WinDLL("pdh.dll")  # type: ignore[attr-defined]
        for name in ("PdhOpenQueryW", "PdhAddEnglishCounterW", "PdhCollectQueryData",
                     "PdhGetFormattedCounterArrayW", "PdhCloseQuery"):
            getattr(self._pdh, name).restype = ctypes.c_uint32
        self._query = ctypes.c_void_p()
        self._check(self._pdh.PdhOpenQueryW(None, ctypes.c_size_t(0), ctypes.byref(self._query)), "PdhOpenQuery")
        try:
            self._engine = self._add_counter("GPU Engine", "Utilization Percentage")
            self._dedicated = self._add_counter("GPU Process Memory", "Dedicated Usage")
            self._shared = self._add_counter("GPU Process Memory", "Shared Usage")
        except OSError:
            self.close()  # the query handle must not outlive a failed set-up
            raise
        self._pdh.PdhCollectQueryData(self._query)  # baseline for the rate counter

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise OSError(f"{what} failed with PDH status 0x{status:08X}")

    def _add_counter(self, counter_set: str, counter: str) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        # The partial wildcard keeps the expansion to this process; "*" is the fallback for systems
        # whose PDH refuses partial instance wildcards. Names are filtered by exact pid either way.
        for instance in (f"pid_{self.pid}*", "*"):
            path = f"\\{counter_set}({instance})\\{counter}"
            status = self._pdh.PdhAddEnglishCounterW(self._query, path, ctypes.c_size_t(0), ctypes.byref(handle))
            if status == 0:
                return handle
        self._check(status, f"PdhAddEnglishCounter({path})")
        return handle

    def _values(self, counter: ctypes.c_void_p) -> list[tuple[str, float]] | None:
        """Valid (instance, value) pairs; [] when the counter has no instance; None when unreadable."""
        size, count = ctypes.c_uint32(0), ctypes.c_uint32(0)
        status = self._pdh.PdhGetFormattedCounterArrayW(
            counter, _PDH_FMT_DOUBLE, ctypes.byref(size), ctypes.byref(count), None
        )
        outcome = array_outcome(status, size.value)
        if outcome != "data":
            return [] if outcome == "no_instance" else None
        buffer = (ctypes.c_byte * size.value)()
        status = self._pdh.PdhGetFormattedCounterArrayW(
            counter, _PDH_FMT_DOUBLE, ctypes.byref(size), ctypes.byref(count), buffer
        )
        if status != 0:
            return None
        items = ctypes.cast(buffer, ctypes.POINTER(_FmtItem))
        valid = [
            (items[i].szName, items[i].FmtValue.doubleValue)
            for i in range(count.value)
            if items[i].FmtValue.CStatus in (_PDH_CSTATUS_VALID_DATA, _PDH_CSTATUS_NEW_DATA)
        ]
        if count.value and not valid:
            return None  # instances without valid data: e.g. the first rate sample after opening
        return valid

    def read(self) -> GpuReading:
        if self._pdh.PdhCollectQueryData(self._query) != 0:
            return GpuReading(None)
        engines, dedicated, shared = (self._values(c) for c in (self._engine, self._dedicated, self._shared))
        return GpuReading(
            readable_figure(engines, engine_utilisation(self.pid, engines or []), 0.0),
            readable_figure(dedicated, process_memory(self.pid, dedicated or []), 0),
            readable_figure(shared, process_memory(self.pid, shared or []), 0),
        )

    def close(self) -> None:
        if self._query:
            self._pdh.PdhCloseQuery(self._query)
            self._query = ctypes.c_void_p()


def gpu_counters_for(pid: int) -> GpuCounters:
    """The way this platform can read GPU counters of ``pid``, or an unavailable one saying why."""
    if sys.platform != "win32":
        return UnavailableGpuCounters(
            f"GPU engine counters are read from Windows PDH; not available on {sys.platform}"
        )
    try:
        return PdhGpuCounters(pid)
    except OSError as error:  # pdh.dll missing, or a Windows without GPU counter sets (no WDDM 2 GPU)
        return UnavailableGpuCounters(f"Windows GPU counters unreadable: {error}")
