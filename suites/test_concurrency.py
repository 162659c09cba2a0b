"""N concurrent requests all succeed, and each equals its own single-stream output (no cross-talk)."""

from __future__ import annotations

from harness.load import CaseInfo, run_closed_loop
from harness.model.engine import Engine
from harness.prompts import exact_length_prompt
from harness.suite import SuiteSession, case_id
from harness.targets.base import Request


def test_concurrency(suite: SuiteSession, engine: Engine, provider: str, prompt_length: int, concurrency: int) -> None:
    matrix = suite.config.matrix
    state = suite.state(provider)
    case = case_id(provider, prompt_length, concurrency)
    prompts = [exact_length_prompt(engine.tokenizer, prompt_length, variant=v) for v in range(concurrency)]
    requests = [Request(prompt_ids=p, max_new_tokens=matrix.max_new_tokens) for p in prompts]
    # Single-stream outputs first, one at a time (greedy, so each is the one right answer).
    for request in requests:
        if request.prompt_ids not in state.single_stream:
            state.single_stream[request.prompt_ids] = engine.generate(request).output_ids
    total = max(matrix.requests_per_level, concurrency)
    with suite.sampling(case):
        result = run_closed_loop(
            engine, requests, CaseInfo(suite.run_id, case, "concurrency", prompt_length),
            concurrency=concurrency, total_requests=total, on_record=suite.add_record,
        )
    mismatched = [
        r.request_index for r in result.records
        if r.ok and r.output_ids != state.single_stream[requests[r.request_index % len(requests)].prompt_ids]
    ]
    if mismatched:
        state.concurrency_details.append(f"{case}: requests {mismatched[:5]} differ from single-stream output")
    state.concurrent_outputs_match = (state.concurrent_outputs_match is not False) and not mismatched
    assert len(result.records) == total, f"{case}: {total - len(result.records)} requests were not recorded"
    assert not result.failed, f"{case}: {len(result.failed)} of {total} failed: {result.failed[0].error}"
    assert not mismatched, state.concurrency_details[-1]
