"""Concurrent requests all succeed, really overlap, and each equals its own single-stream output.

Closed loop: N workers, each sending its next request when the last one ends. Open loop: Poisson
arrivals at a fixed rate, whatever the engine's speed (queueing shows up as latency). The evidence
(single-stream comparison per case) is gathered by harness/suite/gather.py and judged by
harness/judge/concurrency.py, which also requires the observed peak in flight to reach the level.
"""

from __future__ import annotations

from harness.measure.load import LoadResult
from harness.measure.prompts import exact_length_prompt
from harness.judge.evidence import ConcurrencyComparison
from harness.suite import gather
from harness.suite.session import SuiteSession
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request

DISTINCT_PROMPTS = 4  # per open-loop case, cycled over the requests


def _requests(suite: SuiteSession, target: SuiteTarget, prompt_length: int, count: int) -> list[Request]:
    prompts = [exact_length_prompt(target.tokenizer, prompt_length, variant=v) for v in range(count)]
    return [Request(prompt_ids=p, max_new_tokens=suite.config.matrix.max_new_tokens) for p in prompts]


def _check(case: str, result: LoadResult, comparison: ConcurrencyComparison, total: int) -> None:
    assert len(result.records) == total, f"{case}: {total - len(result.records)} requests were not recorded"
    assert not result.failed, f"{case}: {len(result.failed)} of {total} failed: {result.failed[0].error}"
    assert not comparison.mismatched, f"{case}: requests {comparison.mismatched[:5]} differ from single-stream output"


def test_concurrency(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int,
                     concurrency: int) -> None:
    case = suite.case_id(target.target, prompt_length, concurrency=concurrency)
    total = max(suite.config.matrix.requests_per_level, concurrency)
    result, comparison = gather.closed_loop(suite, provider, target, _requests(suite, target, prompt_length, concurrency),
                                            case=case, prompt_length=prompt_length, concurrency=concurrency,
                                            total=total)
    for note in result.notes:  # e.g. the HTTP client saturating a core
        print(f"{case}: {note}")
    _check(case, result, comparison, total)


def test_open_loop(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int,
                   arrival_rate: float) -> None:
    case = suite.case_id(target.target, prompt_length, rate_per_s=arrival_rate)
    total = suite.config.matrix.requests_per_level
    requests = _requests(suite, target, prompt_length, DISTINCT_PROMPTS)
    result, comparison = gather.open_loop(suite, provider, target, requests, case=case, prompt_length=prompt_length,
                                          rate_per_s=arrival_rate, total=total)
    for note in result.notes:
        print(f"{case}: {note}")
    _check(case, result, comparison, total)
