"""Rate sweep (run --sweep, or matrix.sweep): open-loop Poisson arrivals from well under the
single-stream capacity to past it, so the report can show where latency takes off and goodput stops
growing ("how many users can this machine serve under the SLO").

Capacity is measured here, not guessed: 1 / the median E2E of a few unrecorded single requests at
the shortest prompt length. Each offered load is a multiple of it; every load sends
``max(matrix.requests_per_level, SWEEP_REQUESTS)`` requests, so the sweep's length scales with the
model's speed (a few seconds on the tiny model).
"""

from __future__ import annotations

import statistics
import time

import pytest

from harness.measure.load import CaseInfo, LoadResult, run_open_loop
from harness.measure.prompts import exact_length_prompt
from harness.report.sweep import SATURATED_SHARE
from harness.suite.session import SuiteSession
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request

CAPACITY_PROBES = 3  # unrecorded single requests timed to estimate capacity
DISTINCT_PROMPTS = 4
MAX_EXTRA_DOUBLINGS = 3  # past the ladder, at most this many doubled rates to reach saturation
SWEEP_REQUESTS = 32  # per load at least: fewer Poisson arrivals make the achieved rate mostly noise


def _capacity_per_s(target: SuiteTarget, request: Request) -> float:
    seconds = []
    for _ in range(CAPACITY_PROBES):
        started = time.perf_counter()
        target.run_alone(request)
        seconds.append(time.perf_counter() - started)
    return 1.0 / max(statistics.median(seconds), 1e-6)


def test_rate_sweep(suite: SuiteSession, target: SuiteTarget, provider: str) -> None:
    loads = suite.config.matrix.sweep
    if not loads:
        pytest.skip("no rate sweep in this run: add --sweep (or matrix.sweep = [0.25, 0.5, 1, 2, 3])")
    matrix = suite.config.matrix
    length = min(matrix.prompt_lengths)
    requests = [Request(prompt_ids=exact_length_prompt(target.tokenizer, length, variant=v),
                        max_new_tokens=matrix.max_new_tokens) for v in range(DISTINCT_PROMPTS)]
    capacity = _capacity_per_s(target, requests[0])
    print(f"{provider}: sweep capacity estimate {capacity:.3g} req/s (1 / median single-request E2E)")
    failed = []
    ladder = sorted(loads)
    for extra in range(MAX_EXTRA_DOUBLINGS + 1):
        for load in ladder:
            result = _one_rate(suite, target, requests, length, float(f"{load * capacity:.3g}"))
            failed += result.failed
        if _kept_up(result) is False or extra == MAX_EXTRA_DOUBLINGS:
            break
        # concurrent requests overlap (threads, idle cores), so one stream's capacity can be beaten:
        # go on past the ladder until the deployment falls behind, so the knee lands on the plot
        ladder = [ladder[-1] * 2]
    assert not failed, f"{len(failed)} sweep requests failed: {failed[0].error}"


def _one_rate(suite: SuiteSession, target: SuiteTarget, requests: list[Request], length: int,
              rate: float) -> LoadResult:
    """``rate`` rounded to 3 figures: a readable case id; the records carry this exact rate."""
    case = suite.case_id(target.target, length, rate_per_s=rate)
    with suite.sampling(case):
        return run_open_loop(target.target, requests, CaseInfo(suite.run_id, case, "sweep", length),
                             rate_per_s=rate, seed=suite.config.matrix.seed,
                             total_requests=max(suite.config.matrix.requests_per_level, SWEEP_REQUESTS),
                             on_record=suite.add_record)


def _kept_up(result: LoadResult) -> bool | None:
    """Achieved at least SATURATED_SHARE of the offered rate (None: nothing to tell)."""
    records = result.records
    if not records:
        return None
    window_s = (max(r.end_ns for r in records) - min(r.submit_ns for r in records)) / 1e9
    offered = records[0].arrival_rate
    return window_s > 0 and offered is not None and len(records) / window_s >= SATURATED_SHARE * offered
