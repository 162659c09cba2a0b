"""Memory items: the peak of the serving process, and its growth over repeated requests.

Growth is a least-squares slope of resident memory against the request's position, from one
reading per request taken at that request's end. Readings come from the record itself
(``rss_after_bytes``, read by the measuring code right after the request) or, for runs without
them, from telemetry: each request then gets only a sample taken after it ended and before the
next one ended, so a sample is never shared, and too few of them is inconclusive, never a pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.judge import families
from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement, fmt
from harness.measure.results import Verdict

if TYPE_CHECKING:  # frames are pandas at run time; the checklist table loads without it (gate.py)
    import pandas as pd

GIB = 1024**3
MIB = 1024**2
WARMUP_SHARE = 4  # the first 1/4 of the readings is arena and cache warm-up: left out of the slope


def memory(j: Judgement, inputs: CheckInputs) -> Verdict:
    """OS peak of process memory, plus peak GPU process memory where the counters read it."""
    generating = families.during_generation(inputs.telemetry, inputs.records)
    telemetry = generating if len(generating) else inputs.telemetry
    peaks = telemetry["peak_rss_bytes"].dropna() if len(telemetry) else None  # an empty frame may lack columns
    if peaks is None or peaks.empty:
        return j.skip("no telemetry was recorded")
    gpu = telemetry["gpu_mem_bytes"].dropna()
    measured = (float(peaks.max()) + (float(gpu.max()) if len(gpu) else 0.0)) / GIB
    gpu_note = f" + GPU process memory {fmt(float(gpu.max()) / GIB)} GiB (dedicated + shared)"
    note = "process peak (OS, lifetime)" + (gpu_note if len(gpu) else "; GPU process memory not readable here")
    return j.against(measured, samples=len(peaks), note=note)


def readings_at_request_ends(records: pd.DataFrame, telemetry: pd.DataFrame) -> tuple[list[int], list[float], str]:
    """(positions, RSS bytes, where they came from) for the successful requests, in order of end."""
    done = records[records["ok"]].sort_values("end_ns")
    if len(done) and done["rss_after_bytes"].notna().all():
        return list(range(len(done))), [float(v) for v in done["rss_after_bytes"]], "read at each request's end"
    times = telemetry["t_ns"].to_numpy(dtype=float)
    rss = telemetry["rss_bytes"].to_numpy(dtype=float)
    order = np.argsort(times, kind="stable")
    times, rss = times[order], rss[order]
    ends = done["end_ns"].to_numpy(dtype=float)
    positions, values = [], []
    for position, end in enumerate(ends):
        next_end = ends[position + 1] if position + 1 < len(ends) else np.inf
        first = int(np.searchsorted(times, end, side="left"))
        if first < len(times) and times[first] < next_end:
            positions.append(position)
            values.append(float(rss[first]))
    return positions, values, "telemetry sample after each request's end, none shared"


def memory_stable(j: Judgement, inputs: CheckInputs) -> Verdict:
    rows = families.memory_growth(inputs.records)
    case = families.cases(rows)
    if rows.empty:
        return j.skip("no repeated requests (test memory) were recorded")
    if problem := families.failures(rows):
        return j.fail(problem, case=case, samples=len(rows))
    positions, values, source = readings_at_request_ends(rows, inputs.telemetry)
    skipped = len(values) // WARMUP_SHARE
    kept_x, kept_y = positions[skipped:], values[skipped:]
    if (short := j.too_few(len(kept_y), f"memory readings after warm-up ({source}, {len(rows)} requests)",
                           case)) is not None:
        return short
    slope = float(np.polyfit(np.array(kept_x, dtype=float), np.array(kept_y), 1)[0]) / MIB
    note = f"RSS slope over {len(kept_y)} readings ({source}; first {skipped} skipped as warm-up)"
    return j.against(slope, case=case, samples=len(kept_y), note=note)
