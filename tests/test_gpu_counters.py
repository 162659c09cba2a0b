"""GPU counters through the real PDH reading code (ctypes structures, sizing calls, statuses),
with pdh.dll replaced by a stand-in that serves counter arrays from tests/fixtures/pdh/."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import pytest

from harness.measure.gpu_counters import (
    _PDH_MORE_DATA,
    GpuReading,
    PdhGpuCounters,
    _FmtItem,
    array_outcome,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pdh"
PDH_CSTATUS_INVALID_DATA = 0xC0000BBA
PDH_CSTATUS_NO_OBJECT = 0xC0000BB8


class FakePdh:
    """pdh.dll's five functions over recorded arrays: {counter name: [(instance, value), ...]}."""

    def __init__(self, arrays: dict[str, list], refuse: str | None = None, item_status: int = 0,
                 no_instance_answer: tuple[int, int] = (0, 0)) -> None:
        self.arrays, self.refuse, self.item_status = arrays, refuse, item_status
        self.no_instance_answer = no_instance_answer
        self.paths: dict[int, str] = {}
        self.closed, self._keep = 0, []

    def PdhOpenQueryW(self, source: Any, user: Any, query: Any) -> int:
        query._obj.value = 1
        return 0

    def PdhAddEnglishCounterW(self, query: Any, path: str, user: Any, handle: Any) -> int:
        if self.refuse and self.refuse in path:
            return PDH_CSTATUS_NO_OBJECT
        handle._obj.value = len(self.paths) + 100
        self.paths[handle._obj.value] = path
        return 0

    def PdhCollectQueryData(self, query: Any) -> int:
        return 0

    def PdhCloseQuery(self, query: Any) -> int:
        self.closed += 1
        return 0

    def PdhGetFormattedCounterArrayW(self, counter: Any, fmt: int, size: Any, count: Any, buffer: Any) -> int:
        path = self.paths[counter.value]
        rows = self.arrays[path.rsplit("\\", 1)[-1]] if "Memory" in path else self.arrays["GPU Engine"]
        if not rows:
            size._obj.value, count._obj.value = self.no_instance_answer[1], 0
            return self.no_instance_answer[0]
        needed = ctypes.sizeof(_FmtItem) * len(rows)
        if buffer is None:
            size._obj.value = needed
            return _PDH_MORE_DATA
        items = (_FmtItem * len(rows)).from_buffer(buffer)
        for item, (name, value) in zip(items, rows):
            item.szName, item.FmtValue.CStatus, item.FmtValue.doubleValue = name, self.item_status, value
        self._keep.append(items)  # the instance-name strings must outlive the call, as PDH's buffer does
        count._obj.value = len(rows)
        return 0


class _Function:
    """A DLL function as ctypes shows it: callable, with a ``restype`` the reader sets."""

    def __init__(self, call: Any) -> None:
        self.call, self.restype = call, None

    def __call__(self, *args: Any) -> int:
        return self.call(*args)


def _dll(pdh: FakePdh) -> FakePdh:
    for name in ("PdhOpenQueryW", "PdhAddEnglishCounterW", "PdhCollectQueryData", "PdhCloseQuery",
                 "PdhGetFormattedCounterArrayW"):
        setattr(pdh, name, _Function(getattr(pdh, name)))
    return pdh


def _recorded(name: str) -> tuple[int, dict[str, list]]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data["pid"], {key: data[key] for key in ("GPU Engine", "Dedicated Usage", "Shared Usage")}


def test_an_integrated_gpu_process_reports_shared_memory_and_the_sum() -> None:
    pid, arrays = _recorded("snapdragon_adreno.json")
    counters = PdhGpuCounters(pid, pdh=_dll(FakePdh(arrays)))
    reading = counters.read()
    # 3D engine 61.5 %; the two Compute engines of the same adapter add up to 21 %; pid 73120 is not ours
    assert reading.util_percent == 61.5
    assert (reading.dedicated_bytes, reading.shared_bytes) == (0, 3 * 1024**3)
    assert reading.mem_bytes == 3 * 1024**3  # dedicated + shared: the GPU side of the memory item


def test_a_process_with_no_gpu_instance_reads_zero_not_unreadable() -> None:
    pid, arrays = _recorded("no_gpu_instance.json")
    reading = PdhGpuCounters(pid, pdh=_dll(FakePdh(arrays))).read()
    assert reading == GpuReading(0.0, 0, 0) and reading.mem_bytes == 0


def test_a_failed_sizing_call_stays_unreadable() -> None:
    pid, arrays = _recorded("no_gpu_instance.json")
    reading = PdhGpuCounters(pid, pdh=_dll(FakePdh(arrays, no_instance_answer=(PDH_CSTATUS_INVALID_DATA, 0)))).read()
    assert reading == GpuReading(None, None, None) and reading.mem_bytes is None


def test_instances_without_valid_data_are_unreadable_not_zero() -> None:
    pid, arrays = _recorded("snapdragon_adreno.json")
    reading = PdhGpuCounters(pid, pdh=_dll(FakePdh(arrays, item_status=PDH_CSTATUS_INVALID_DATA))).read()
    assert reading.util_percent is None and reading.mem_bytes is None


def test_a_counter_that_cannot_be_added_closes_the_query_and_says_which() -> None:
    pid, arrays = _recorded("snapdragon_adreno.json")
    pdh = _dll(FakePdh(arrays, refuse="Shared Usage"))
    with pytest.raises(OSError, match="Shared Usage"):
        PdhGpuCounters(pid, pdh=pdh)
    assert pdh.closed == 1  # no leaked query handle


def test_the_partial_wildcard_is_asked_first_for_each_counter() -> None:
    pid, arrays = _recorded("snapdragon_adreno.json")
    pdh = _dll(FakePdh(arrays))
    PdhGpuCounters(pid, pdh=pdh).close()
    assert sorted(pdh.paths.values()) == sorted([
        f"\\GPU Engine(pid_{pid}*)\\Utilization Percentage",
        f"\\GPU Process Memory(pid_{pid}*)\\Dedicated Usage",
        f"\\GPU Process Memory(pid_{pid}*)\\Shared Usage",
    ])
    assert pdh.closed == 1


@pytest.mark.parametrize("status,size,outcome", [(_PDH_MORE_DATA, 480, "data"), (0, 0, "no_instance"),
                                                 (PDH_CSTATUS_INVALID_DATA, 0, "failed"), (_PDH_MORE_DATA, 0, "failed")])
def test_sizing_call_outcomes(status: int, size: int, outcome: str) -> None:
    assert array_outcome(status, size) == outcome
