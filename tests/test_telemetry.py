"""The telemetry sampler measures this process, states its own cost, and never invents GPU figures."""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from harness.measure.gpu_counters import (
    GpuReading,
    engine_utilisation,
    gpu_counters_for,
    process_memory,
    readable_figure,
)
from harness.measure.results import TelemetryWriter, load_telemetry
from harness.measure.telemetry import TelemetrySampler, os_peak_rss

MIB = 1024 * 1024


def _busy(cpu_seconds: float) -> None:
    """Spin until this thread has used ``cpu_seconds`` of CPU, however busy the machine is."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


def test_samples_cover_the_region_and_stop_on_exit() -> None:
    with TelemetrySampler(interval_s=0.02, label="case-a") as sampler:
        time.sleep(0.15)
        sampler.label = "case-b"
        time.sleep(0.05)
    count = len(sampler.samples)
    assert count >= 4
    time.sleep(0.06)
    assert len(sampler.samples) == count  # the thread is gone
    labels = [s.label for s in sampler.samples]
    assert labels[0] == "case-a" and labels[-1] == "case-b"
    times = [s.t_ns for s in sampler.samples]
    assert times == sorted(times) and times[0] > sampler.started_ns
    for sample in sampler.samples:
        assert sample.rss_bytes > 0 and sample.peak_rss_bytes >= sample.rss_bytes
        assert 0 < sample.system_mem_used_bytes <= psutil.virtual_memory().total


def test_a_region_shorter_than_the_interval_still_gets_a_sample() -> None:
    with TelemetrySampler(interval_s=5.0) as sampler:
        pass
    assert len(sampler.samples) == 1


def test_cpu_percent_is_normalised_to_all_cores() -> None:
    # Each sample's CPU% times its interval adds back up to the CPU time the process used.
    process = psutil.Process()
    cores = psutil.cpu_count(logical=True)
    before = sum(process.cpu_times()[:2])
    with TelemetrySampler(interval_s=0.05) as sampler:
        _busy(0.3)
    after = sum(process.cpu_times()[:2])
    previous, accounted = sampler.started_ns, 0.0
    for sample in sampler.samples:
        accounted += sample.cpu_percent / 100 * cores * (sample.t_ns - previous) / 1e9
        previous = sample.t_ns
    assert accounted == pytest.approx(after - before, abs=0.05)
    assert accounted >= 0.3 - 0.05  # the busy thread's CPU time was seen
    assert all(0 <= s.cpu_percent <= 100 * 1.05 for s in sampler.samples)


def test_peak_follows_an_allocation_and_is_in_bytes() -> None:
    process = psutil.Process()
    rss = process.memory_info().rss
    peak = os_peak_rss(process, rss)
    assert peak >= rss and peak < 64 * psutil.virtual_memory().total  # KiB read as bytes would be 1024x too small
    with TelemetrySampler(interval_s=0.02) as sampler:
        block = bytearray(80 * MIB)
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page so it is resident
        time.sleep(0.06)
        del block
    assert max(s.peak_rss_bytes for s in sampler.samples) >= rss + 70 * MIB


def test_sink_gets_every_sample_as_it_is_taken(tmp_path) -> None:
    with TelemetryWriter(tmp_path) as writer, TelemetrySampler(interval_s=0.02, label="x", sink=writer) as sampler:
        time.sleep(0.1)
        rows_while_running = (tmp_path / "telemetry.csv").read_text().count("\n") - 1
        time.sleep(0.05)
    assert rows_while_running >= 2
    frame = load_telemetry(tmp_path)
    assert list(frame["t_ns"].astype(int)) == [s.t_ns for s in sampler.samples]
    assert set(frame["label"]) == {"x"}


def test_the_sampler_reports_its_own_cost() -> None:
    with TelemetrySampler(interval_s=0.02) as sampler:
        time.sleep(0.2)
    cost = sampler.cost
    assert cost.samples == len(sampler.samples)
    assert cost.wall_s >= 0.2 and cost.cpu_s >= 0
    assert 0 <= cost.percent_of_one_core <= 100


def test_a_failing_sink_stops_sampling_with_a_warning_not_silently() -> None:
    def broken(sample):
        raise OSError("disk full")

    with pytest.warns(UserWarning, match="disk full"):
        with TelemetrySampler(interval_s=0.01, sink=broken) as sampler:
            time.sleep(0.05)
    assert isinstance(sampler.error, OSError) and len(sampler.samples) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="Windows reads real PDH counters")
def test_gpu_counters_are_unavailable_with_a_reason_off_windows() -> None:
    counters = gpu_counters_for(os.getpid())
    assert not counters.available and sys.platform in counters.reason
    assert counters.read() == GpuReading(None, None)
    with TelemetrySampler(interval_s=0.01) as sampler:
        time.sleep(0.03)
    assert all(s.gpu_util_percent is None and s.gpu_mem_bytes is None for s in sampler.samples)
    assert not sampler.gpu_available and "PDH" in sampler.gpu_reason


ENGINES = [
    ("pid_1234_luid_0x00000000_0x0000D1B5_phys_0_eng_0_engtype_3D", 20.0),
    ("pid_1234_luid_0x00000000_0x0000D1B5_phys_0_eng_1_engtype_3D", 15.0),
    ("pid_1234_luid_0x00000000_0x0000D1B5_phys_0_eng_2_engtype_Compute", 30.0),
    ("pid_1234_luid_0x00000000_0x0000D1B5_phys_0_eng_3_engtype_Copy", 5.0),
    ("pid_12345_luid_0x00000000_0x0000D1B5_phys_0_eng_2_engtype_Compute", 90.0),  # another process
    ("pid_999_luid_0x00000000_0x0000D1B5_phys_0_eng_0_engtype_3D", 70.0),
]


def test_engine_utilisation_is_the_busiest_engine_type_of_exactly_this_pid() -> None:
    assert engine_utilisation(1234, ENGINES) == pytest.approx(35.0)  # 3D: 20 + 15
    assert engine_utilisation(12345, ENGINES) == pytest.approx(90.0)
    assert engine_utilisation(4321, ENGINES) is None
    saturated = [(f"pid_7_luid_0x0_0x1_phys_0_eng_{i}_engtype_Compute", 80.0) for i in range(2)]
    assert engine_utilisation(7, saturated) == 100.0


def test_process_memory_sums_adapters_and_reading_failures_stay_none() -> None:
    memory = [("pid_1234_luid_0x00000000_0x0000D1B5_phys_0", 3 * MIB), ("pid_1234_luid_0x00000000_0x0000AAAA_phys_0", MIB),
              ("pid_12345_luid_0x00000000_0x0000D1B5_phys_0", 50 * MIB)]
    assert process_memory(1234, memory) == 4 * MIB
    assert process_memory(55, memory) is None
    assert readable_figure(None, None, 0) is None  # PDH gave no data: not a zero
    assert readable_figure(memory, None, 0) == 0  # counters read, this process has no GPU memory
    assert readable_figure(memory, 4 * MIB, 0) == 4 * MIB
