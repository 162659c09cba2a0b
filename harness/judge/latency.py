"""Latency items: simple query (E2E p50) and subsequent responses (warm TTFT p50) on the latency
sweep, first response (TTFT of every cold request)."""

from __future__ import annotations

from harness.judge import families
from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement
from harness.measure.results import Verdict


def _sweep_percentile(j: Judgement, inputs: CheckInputs, metric: str) -> Verdict:
    rows = families.latency_sweep(inputs.records)
    case = families.cases(rows)
    if rows.empty:
        return j.skip("the latency sweep recorded no warm request at concurrency 1")
    if problem := families.failures(rows):
        return j.fail(problem, case=case, samples=len(rows))
    values = rows[metric].dropna()
    if len(values) < len(rows):
        return j.fail(f"{len(rows) - len(values)} of {len(rows)} requests have no {metric} (no token generated?)",
                      case=case, samples=len(values))
    return j.percentile(values, 50, case=case)


def simple_query(j: Judgement, inputs: CheckInputs) -> Verdict:
    return _sweep_percentile(j, inputs, "e2e_s")


def subsequent_responses(j: Judgement, inputs: CheckInputs) -> Verdict:
    return _sweep_percentile(j, inputs, "ttft_s")


def first_response(j: Judgement, inputs: CheckInputs) -> Verdict:
    """Every cold request must meet the threshold: the slowest one is the measured value. One with
    no TTFT (no token) fails the item; it is never dropped in favour of another."""
    rows = families.cold(inputs.records)
    case = families.cases(rows)
    if rows.empty:
        return j.skip("no cold request (the first after load) was recorded")
    if problem := families.failures(rows):
        return j.fail(problem, case=case, samples=len(rows))
    missing = rows[rows["ttft_s"].isna()]
    if len(missing):
        return j.fail(f"{len(missing)} of {len(rows)} cold requests generated no token "
                      f"({families.cases(missing)})", case=case, samples=len(rows) - len(missing))
    ttft = rows["ttft_s"].astype(float)
    if (short := j.too_few(len(ttft), "cold requests", case)) is not None:
        return short
    note = f"slowest of {len(ttft)} cold requests" if len(ttft) > 1 else "one cold request"
    return j.against(float(ttft.max()), case=case, samples=len(ttft), note=note)
