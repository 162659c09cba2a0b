"""Evidence gathering shared by the suites (suites/*.py) and the tests that run them on odd targets.

Each function measures through a Target, writes records through the session, and leaves what the
judges need in the provider's Evidence. Nothing here judges: harness/judge/ reads what is left.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from harness.errors import HarnessError
from harness.judge.evidence import ConcurrencyComparison, TokenCount
from harness.measure.load import CaseInfo, LoadResult, run_closed_loop, run_open_loop
from harness.measure.results import RequestRecord
from harness.suite.targets import SuiteTarget
from harness.suite.token_count import IndependentCounter
from harness.targets.base import Request, Target


def _key(request: Request) -> tuple[Any, ...]:
    return (request.prompt_ids, request.messages, request.max_new_tokens)


def single_stream_outputs(session: Any, provider: str, target: SuiteTarget, requests: Sequence[Request]) -> None:
    """Each prompt's output with nothing else in flight (ids, or text over HTTP), computed once and kept."""
    known = session.state(provider).single_stream
    for request in requests:
        if _key(request) not in known:
            known[_key(request)] = target.run_alone(request)


def compare_with_single_stream(session: Any, provider: str, target: SuiteTarget, case: str,
                               requests: Sequence[Request], result: LoadResult) -> ConcurrencyComparison:
    """Record, in the evidence, which concurrent outputs differ from their own single-stream output."""
    known = session.state(provider).single_stream
    compared, mismatched = 0, []
    for record in result.records:
        if not record.ok:
            continue
        request = requests[record.request_index % len(requests)]
        compared += 1
        if target.output_of(record) != known[_key(request)]:
            mismatched.append(record.request_index)
    comparison = ConcurrencyComparison(case, compared, mismatched)
    session.evidence(provider).concurrency.append(comparison)
    return comparison


def closed_loop(session: Any, provider: str, target: SuiteTarget, requests: Sequence[Request], *, case: str,
                prompt_length: int, concurrency: int, total: int) -> tuple[LoadResult, ConcurrencyComparison]:
    single_stream_outputs(session, provider, target, requests)
    with session.sampling(case):
        result = run_closed_loop(target.target, list(requests),
                                 CaseInfo(session.run_id, case, "concurrency", prompt_length),
                                 concurrency=concurrency, total_requests=total, on_record=session.add_record)
    return result, compare_with_single_stream(session, provider, target, case, requests, result)


def open_loop(session: Any, provider: str, target: SuiteTarget, requests: Sequence[Request], *, case: str,
              prompt_length: int, rate_per_s: float, total: int) -> tuple[LoadResult, ConcurrencyComparison]:
    single_stream_outputs(session, provider, target, requests)
    with session.sampling(case):
        result = run_open_loop(target.target, list(requests), CaseInfo(session.run_id, case, "open_loop", prompt_length),
                               rate_per_s=rate_per_s, seed=session.config.matrix.seed, total_requests=total,
                               on_record=session.add_record)
    return result, compare_with_single_stream(session, provider, target, case, requests, result)


def repeated_requests(session: Any, target: Target, request: Request, *, case: str, prompt_length: int,
                      count: int) -> list[RequestRecord]:
    """The memory-growth case: the same request ``count`` times, memory read at each request's end."""
    with session.sampling(case):
        return [session.measure(target, request, case=case, test="memory", prompt_length=prompt_length, index=i,
                                read_memory=True) for i in range(count)]


def _known_ids(record: RequestRecord) -> list[int] | None:
    """The streamed ids, or None where the target could not know them (e.g. HTTP text chunks)."""
    ids = list(record.output_ids)
    if (not ids and record.output_text) or any(token < 0 for token in ids):
        return None
    return ids


def count_tokens(session: Any, provider: str, requests: Sequence[Request], records: Sequence[RequestRecord]) -> None:
    """Reported counts beside independent ones (harness/suite/token_count.py), into the evidence."""
    evidence = session.evidence(provider)
    try:
        counter = IndependentCounter(session.model_dir)
    except HarnessError as error:
        evidence.token_count_note = str(error)
        return
    decoded = [counter.decodes_to(record.output_text, ids) for record in records if (ids := _known_ids(record)) is not None]
    evidence.decodes = all(decoded) if decoded else None
    if counter.missing_template:
        evidence.token_count_note = counter.missing_template
        return
    for record, request in zip(records, requests):
        completion, how = counter.completion_tokens(record.output_text, _known_ids(record))
        evidence.token_counts.append(TokenCount.of(record, f"{record.case_id}#{record.request_index}",
                                                   counter.prompt_tokens(request.messages), completion, how))


def chat_responses(session: Any, provider: str, target: Target, questions: Sequence[str], max_new_tokens: int,
                   prompt_length: Callable[[Request], int]) -> tuple[list[Request], list[RequestRecord]]:
    """One request per distinct question; the questions, whether outputs decode from their ids, and
    independent token counts go to the evidence."""
    requests = [Request.chat(question, max_new_tokens=max_new_tokens) for question in questions]
    case = f"{provider}-responses"
    with session.sampling(case):
        records = [session.measure(target, request, case=case, test="real_responses",
                                   prompt_length=prompt_length(request), index=i) for i, request in enumerate(requests)]
    evidence = session.evidence(provider)
    evidence.prompts = list(questions)
    count_tokens(session, provider, requests, records)
    return requests, records
