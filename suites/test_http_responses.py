"""Real responses and token counting over HTTP (``run --target-url``): what the endpoint answers.

Distinct prompts must give distinct, non-empty answers. With ``--model DIR`` (the folder the server
runs), greedy answers are compared as text with the in-process reference engine's, the reported
``usage.prompt_tokens`` with an independent count (the folder's own chat_template rendered with
jinja2, tokenized apart: harness/suite/token_count.py), and
``usage.completion_tokens`` with the reference engine's generated count (or, where the texts
differ, with the re-tokenized answer, which is then only an estimate and says so).
"""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.measure.prompts import DISTINCT_QUESTIONS
from harness.judge.evidence import TokenCount
from harness.measure.results import RequestRecord
from harness.suite.remote_target import REMOTE
from harness.suite.session import ModelLoadFailed, SuiteSession
from harness.suite.targets import SuiteTarget, reference_answers
from harness.suite.token_count import IndependentCounter
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
    evidence = suite.evidence(provider)
    evidence.prompts = [question for question in DISTINCT_QUESTIONS[:N_PROMPTS]]
    if target.tokenizer_is_the_servers and suite.remote_options.model_dir is not None:
        _compare_with_reference(suite, target, requests, records)
    else:
        evidence.reference_note = "reference comparison and token counting need --model DIR (the server's model folder)"
    assert all(r.ok for r in records), [f"{r.error_kind}: {r.error}" for r in records if not r.ok][:1]


def _compare_with_reference(suite: SuiteSession, target: SuiteTarget, requests: list[Request],
                            records: list[RequestRecord]) -> None:
    evidence = suite.evidence(REMOTE)
    try:
        answers = reference_answers(suite.remote_options.model_dir, requests)
        counter = IndependentCounter(suite.remote_options.model_dir)
    except HarnessError as error:
        evidence.reference_note = f"reference comparison skipped: {error}"
        return
    same = [record.output_text == text for record, (text, _) in zip(records, answers)]
    evidence.matches_reference = all(same)
    evidence.reference_note = (f"greedy answers {'equal' if all(same) else 'differ from'} the in-process engine's "
                               f"({sum(same)}/{len(same)} equal, compared as text)")
    if all(r.details.get("usage_source") == "server" for r in records):
        evidence.token_counts = [_token_count(counter, record, request, answer, equal)
                                 for record, request, answer, equal in zip(records, requests, answers, same)]
    else:  # the counts in the records were made by the harness itself: nothing to check them against
        evidence.token_count_note = "the server sends no usage (asked with include_usage)"


def _token_count(counter: IndependentCounter, record: RequestRecord, request: Request, answer: tuple[str, int],
                 equal: bool) -> TokenCount:
    if equal:
        expected_completion, note = answer[1], "the reference engine's generated tokens"
    else:
        expected_completion, note = counter.completion_tokens(record.output_text, None)
    return TokenCount.of(record, f"{REMOTE}-responses#{record.request_index}",
                         counter.prompt_tokens(request.messages), expected_completion, note)
