"""Case families: which request records each item reads (the ``family`` column of the table).

Selections go by the records' own fields (test, concurrency, prompt length, cold), never by the
text of a case id, so a change of case-id format cannot move an item onto other records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # frames are pandas at run time; the checklist table loads without it (gate.py)
    import pandas as pd

LATENCY_SWEEP = "latency sweep: warm requests, shortest prompt, concurrency 1 (test latency)"
COLD = "cold requests: the first request after each model load"
RESPONSES = "responses to distinct chat prompts (test real_responses)"
MEMORY_GROWTH = "repeated requests (test memory), memory read at each request's end"
CONCURRENCY_TESTS = ("concurrency", "open_loop")  # the tests that gather the concurrency evidence
CONCURRENT = "closed-loop cases at concurrency > 1 and open-loop cases (tests concurrency, open_loop)"
ALL_TELEMETRY = "telemetry of every case of the provider"
DURING_GENERATION = "telemetry samples taken while the provider's cases ran"


def latency_sweep(records: pd.DataFrame) -> pd.DataFrame:
    """Warm single-stream latency requests at the shortest prompt length the sweep measured."""
    rows = records[(records["test"] == "latency") & (records["concurrency"] == 1) & ~records["cold"]]
    if rows.empty:
        return rows
    return rows[rows["prompt_length"] == rows["prompt_length"].min()]


def cold(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["cold"]]


def responses(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["test"] == "real_responses"]


def memory_growth(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["test"] == "memory"]


def concurrent(records: pd.DataFrame) -> pd.DataFrame:
    """Closed loop with more than one worker, and open loop (concurrency 0 marks Poisson arrivals).

    Only the concurrency suites' own tests: the rate sweep (test "sweep") has no single-stream comparison
    and measures capacity, not cross-talk, so it must not make this item inconclusive.
    """
    suites = records[records["test"].isin(CONCURRENCY_TESTS)]
    return suites[(suites["concurrency"] > 1) | (suites["concurrency"] == 0)]


def cases(frame: pd.DataFrame) -> str:
    """The case ids of the rows, in order of appearance, comma-separated."""
    return ", ".join(dict.fromkeys(str(c) for c in frame["case_id"])) if len(frame) else ""


def failures(frame: pd.DataFrame) -> str:
    """"2 of 8 requests failed (exception:RuntimeError: boom)", or "" when none failed."""
    failed = frame[~frame["ok"]]
    if failed.empty:
        return ""
    first = failed.iloc[0]
    return f"{len(failed)} of {len(frame)} requests failed ({first['error_kind']}: {first['error']})"


def during_generation(telemetry: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Telemetry rows inside a case's window (its first submit .. its last end)."""
    if telemetry.empty or records.empty:
        return telemetry.iloc[0:0]
    inside = np.zeros(len(telemetry), dtype=bool)
    times = telemetry["t_ns"].to_numpy(dtype=float)
    for _, group in records.groupby("case_id", sort=False):
        inside |= (times >= float(group["submit_ns"].min())) & (times <= float(group["end_ns"].max()))
    return telemetry[inside]
