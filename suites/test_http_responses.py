"""Real responses and token counting over HTTP (``run --target-url``): what the endpoint answers.

Distinct prompts must give distinct, non-empty answers. With ``--model DIR`` (the folder the server
runs), greedy answers are compared as text with the in-process reference engine's, the reported
``usage.prompt_tokens`` with the folder's tokenizer count of the templated prompt, and
``usage.completion_tokens`` with the reference engine's generated count (or, where the texts
differ, with the re-tokenized answer, which is then only an estimate and says so).
"""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.measure.prompts import DISTINCT_QUESTIONS
from harness.measure.results import RequestRecord
from harness.suite.remote_target import REMOTE
from harness.suite.session import ModelLoadFailed, SuiteSession
from harness.suite.targets import SuiteTarget, reference_answers
from harness.targets.base import Request

N_PROMPTS = 3


def test_real_responses_over_http(suite: SuiteSession, provider: str) -> None:
    if provider != REMOTE or suite.remote_options is None:
        pytest.skip("HTTP targets only (run --target-url); the engine's answers are checked in test_responses")
    try:
        target = suite.target(provider)
    except ModelLoadFailed as failed:
        pytest.fail(str(failed), pytrace=False)
    requests = [Request.chat(q, max_new_tokens=suite.config.matrix.max_new_tokens) for q in DISTINCT_QUESTIONS[:N_PROMPTS]]
    with suite.sampling(f"{provider}-responses"):
        records = [suite.measure(target.target, r, case=f"{provider}-responses", test="real_responses",
                                 prompt_length=len(target.prompt_ids(r)), index=i) for i, r in enumerate(requests)]
    state = suite.state(provider)
    if target.tokenizer_is_the_servers and suite.remote_options.model_dir is not None:
        _compare_with_reference(suite, target, requests, records)
    else:
        state.reference_note = "reference comparison and token counting need --model DIR (the server's model folder)"
    assert all(r.ok for r in records), [f"{r.error_kind}: {r.error}" for r in records if not r.ok][:1]


def _compare_with_reference(suite: SuiteSession, target: SuiteTarget, requests: list[Request],
                            records: list[RequestRecord]) -> None:
    state = suite.state(REMOTE)
    try:
        answers = reference_answers(suite.remote_options.model_dir, requests)
    except HarnessError as error:
        state.reference_note = f"reference comparison skipped: {error}"
        return
    same = [record.output_text == text for record, (text, _) in zip(records, answers)]
    state.matches_reference = all(same)
    state.reference_note = (f"greedy answers {'equal' if all(same) else 'differ from'} the in-process engine's "
                            f"({sum(same)}/{len(same)} equal, compared as text)")
    if all(r.details.get("usage_source") == "server" for r in records):
        state.token_counts = [_token_count(target, record, request, answer, equal)
                              for record, request, answer, equal in zip(records, requests, answers, same)]
    else:  # the counts in the records were made by the harness itself: nothing to check them against
        state.reference_note += "; token counting skipped: the server sends no usage (asked with include_usage)"


def _token_count(target: SuiteTarget, record: RequestRecord, request: Request, answer: tuple[str, int],
                 equal: bool) -> dict:
    expected_completion = answer[1] if equal else target.tokenizer.count(record.output_text)
    return {
        "case": f"{REMOTE}-responses#{record.request_index}",
        "reported_prompt_tokens": record.prompt_tokens,
        "expected_prompt_tokens": len(target.prompt_ids(request)),
        "reported_completion_tokens": record.completion_tokens,
        "expected_completion_tokens": expected_completion,
        "completion_note": "the reference engine's generated tokens" if equal else "re-tokenized answer (estimate)",
        "usage_source": record.details.get("usage_source"),
    }
