"""Concurrent requests all succeed, and each equals its own single-stream output (no cross-talk).

Closed loop: N workers, each sending its next request when the last one ends. Open loop: Poisson
arrivals at a fixed rate, whatever the engine's speed (queueing shows up as latency).
"""

from __future__ import annotations

from harness.measure.load import CaseInfo, LoadResult, run_closed_loop, run_open_loop
from harness.suite.targets import SuiteTarget
from harness.measure.prompts import exact_length_prompt
from harness.suite.session import SuiteSession
from harness.targets.base import Request

DISTINCT_PROMPTS = 4  # per case, cycled over the requests


def _requests(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int, count: int) -> list[Request]:
    """Distinct prompts of one length, with their single-stream outputs computed first (greedy)."""
    state = suite.state(provider)
    prompts = [exact_length_prompt(target.tokenizer, prompt_length, variant=v) for v in range(count)]
    requests = [Request(prompt_ids=p, max_new_tokens=suite.config.matrix.max_new_tokens) for p in prompts]
    for request in requests:
        if request.prompt_ids not in state.single_stream:
            state.single_stream[request.prompt_ids] = target.run_alone(request)
    return requests


def _judge(suite: SuiteSession, target: SuiteTarget, provider: str, case: str, requests: list[Request],
           result: LoadResult, total: int) -> None:
    state = suite.state(provider)
    mismatched = [
        r.request_index for r in result.records
        if r.ok and target.output_of(r) != state.single_stream[requests[r.request_index % len(requests)].prompt_ids]
    ]
    if mismatched:
        state.concurrency_details.append(f"{case}: requests {mismatched[:5]} differ from single-stream output")
    state.concurrent_outputs_match = (state.concurrent_outputs_match is not False) and not mismatched
    assert len(result.records) == total, f"{case}: {total - len(result.records)} requests were not recorded"
    assert not result.failed, f"{case}: {len(result.failed)} of {total} failed: {result.failed[0].error}"
    assert not mismatched, state.concurrency_details[-1]


def test_concurrency(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int, concurrency: int) -> None:
    case = suite.case_id(target.target, prompt_length, concurrency=concurrency)
    requests = _requests(suite, target, provider, prompt_length, concurrency)
    total = max(suite.config.matrix.requests_per_level, concurrency)
    with suite.sampling(case):
        result = run_closed_loop(
            target.target, requests, CaseInfo(suite.run_id, case, "concurrency", prompt_length),
            concurrency=concurrency, total_requests=total, on_record=suite.add_record,
        )
    for note in result.notes:  # e.g. the HTTP client saturating a core
        print(f"{case}: {note}")
    _judge(suite, target, provider, case, requests, result, total)


def test_open_loop(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int, arrival_rate: float) -> None:
    case = suite.case_id(target.target, prompt_length, rate_per_s=arrival_rate)
    requests = _requests(suite, target, provider, prompt_length, DISTINCT_PROMPTS)
    total = suite.config.matrix.requests_per_level
    with suite.sampling(case):
        result = run_open_loop(
            target.target, requests, CaseInfo(suite.run_id, case, "open_loop", prompt_length),
            rate_per_s=arrival_rate, seed=suite.config.matrix.seed, total_requests=total, on_record=suite.add_record,
        )
    for note in result.notes:
        print(f"{case}: {note}")
    _judge(suite, target, provider, case, requests, result, total)
