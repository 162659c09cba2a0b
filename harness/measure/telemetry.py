"""Background sampler of this process's resources while measured code runs.

    with TelemetrySampler(interval_s=0.05, label="cpu-p128-c1", sink=writer) as sampler:
        ... measured code ...
    sampler.samples  # list[TelemetrySample]
    sampler.cost     # the sampler's own CPU use

Each sample: process RSS, the OS's peak (peak working set on Windows, ru_maxrss elsewhere), process
CPU normalised to all logical cores (100 % = every core busy), system memory in use, and GPU engine
utilisation + GPU memory (dedicated, shared and their sum) of the process where the platform
exposes them (see gpu_counters.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import psutil

from harness.measure.gpu_counters import GpuCounters, gpu_counters_for
from harness.measure.results import TelemetrySample


@dataclass(frozen=True)
class SamplerCost:
    """What sampling cost: CPU time of the sampler thread over the wall time it ran."""

    cpu_s: float
    wall_s: float
    samples: int

    @property
    def percent_of_one_core(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def peak_rss_source(pid: int) -> str:
    """Which OS figure ``os_peak_rss`` reads for ``pid`` (stated in the environment stamp)."""
    if sys.platform == "win32":
        return "peak working set (GetProcessMemoryInfo)"
    if pid == os.getpid():
        return "getrusage ru_maxrss"
    if sys.platform.startswith("linux"):
        return "/proc/<pid>/status VmHWM"
    return "highest sampled RSS (no OS peak for another process here)"


def os_peak_rss(process: psutil.Process, rss: int) -> int:
    """The OS's lifetime peak resident memory of ``process`` in bytes, never below ``rss``.

    Units differ per OS: ru_maxrss is KiB on Linux and bytes on macOS; VmHWM is in kB (KiB). The
    kernel updates its high-water mark lazily, so it can trail the current RSS by a few pages.
    Where no OS peak exists the current RSS is returned and the sampler keeps the running maximum.
    """
    peak = rss
    if sys.platform == "win32":
        peak = int(process.memory_info().peak_wset)
    elif process.pid == os.getpid():
        import resource  # Unix only

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = int(maxrss if sys.platform == "darwin" else maxrss * 1024)
    elif sys.platform.startswith("linux"):
        with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    return max(peak, rss)


class TelemetrySampler:
    """Context manager sampling a process every ``interval_s`` on a background thread.

    The thread is stopped in ``__exit__`` (so in ``finally`` of a with block) and takes one last
    sample there, so even a region shorter than the interval gets one row. ``label`` may be changed
    while running (e.g. to the current case id). ``sink`` receives each sample as it is taken (e.g.
    a TelemetryWriter), on the sampler thread.
    """

    def __init__(
        self,
        interval_s: float = 0.05,
        label: str = "",
        *,
        pid: int | None = None,
        sink: Callable[[TelemetrySample], None] | None = None,
        gpu: GpuCounters | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self.label = label
        self.samples: list[TelemetrySample] = []
        self.error: BaseException | None = None  # what stopped the thread early, if anything
        self.cost = SamplerCost(0.0, 0.0, 0)
        self._process = psutil.Process(pid)
        self._cores = psutil.cpu_count(logical=True) or 1
        self._sink = sink
        self._gpu = gpu
        self._own_gpu = gpu is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_seen = 0
        self.started_ns = 0

    @property
    def gpu_reason(self) -> str:
        """Why GPU figures are None ("" when the counters are readable)."""
        return self._gpu.reason if self._gpu is not None else "GPU counters not opened yet"

    @property
    def gpu_available(self) -> bool:
        return self._gpu is not None and self._gpu.available

    def __enter__(self) -> "TelemetrySampler":
        if self._own_gpu:  # fresh counters per region: closed ones from a previous region are not reused
            self._gpu = gpu_counters_for(self._process.pid)
        self._stop.clear()
        self._last_wall = self.started_ns = time.perf_counter_ns()  # the first sample's CPU% counts from here
        self._last_cpu = self._cpu_seconds()
        self._thread = threading.Thread(target=self._run, name="telemetry-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self.error is not None:
                warnings.warn(f"telemetry stopped early after {len(self.samples)} samples: {self.error!r}", stacklevel=3)
        if self._own_gpu and self._gpu is not None:
            self._gpu.close()

    def _cpu_seconds(self) -> float:
        if self._process.pid == os.getpid():
            # ns-resolution process CPU clock (CLOCK_PROCESS_CPUTIME_ID on Unix); psutil's cpu_times
            # tick in 10 ms steps, which turns the short last interval of a region into noise.
            return time.process_time()
        times = self._process.cpu_times()
        return times.user + times.system

    def _run(self) -> None:
        started_wall, started_cpu = time.perf_counter(), time.thread_time()
        try:
            # wait() returns True once stop is set: one last sample covers the tail of the region.
            while True:
                stopping = self._stop.wait(self.interval_s)
                self._take()
                if stopping:
                    break
        except Exception as error:  # process gone, disk full in the sink: kept, reported on stop
            self.error = error
        finally:
            self.cost = SamplerCost(time.thread_time() - started_cpu, time.perf_counter() - started_wall, len(self.samples))

    def _take(self) -> None:
        now = time.perf_counter_ns()
        cpu = self._cpu_seconds()
        wall_s = (now - self._last_wall) / 1e9
        cpu_percent = 100.0 * (cpu - self._last_cpu) / (wall_s * self._cores) if wall_s > 0 else 0.0
        self._last_wall, self._last_cpu = now, cpu
        rss = int(self._process.memory_info().rss)
        self._peak_seen = max(self._peak_seen, rss, os_peak_rss(self._process, rss))
        memory = psutil.virtual_memory()
        gpu = self._gpu.read() if self._gpu is not None else None
        sample = TelemetrySample(
            t_ns=now,
            rss_bytes=rss,
            peak_rss_bytes=self._peak_seen,
            cpu_percent=cpu_percent,
            # total - available: "used" is defined differently on each OS; this one compares.
            system_mem_used_bytes=int(memory.total - memory.available),
            gpu_util_percent=gpu.util_percent if gpu else None,
            gpu_mem_bytes=gpu.mem_bytes if gpu else None,
            gpu_dedicated_bytes=gpu.dedicated_bytes if gpu else None,
            gpu_shared_bytes=gpu.shared_bytes if gpu else None,
            label=self.label,
        )
        self.samples.append(sample)
        if self._sink is not None:
            self._sink(sample)
