"""Real responses and token counting: distinct prompts, decodable output, the reference engine agrees."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.targets.engine import Engine
from harness.measure.prompts import DISTINCT_QUESTIONS
from harness.suite.session import SuiteSession
from harness.targets.base import Request, TokenEvent

N_PROMPTS = 3


def _requests(max_new_tokens: int) -> list[Request]:
    return [Request.chat(q, max_new_tokens=max_new_tokens) for q in DISTINCT_QUESTIONS[:N_PROMPTS]]


def test_real_responses(suite: SuiteSession, engine: Engine, provider: str) -> None:
    state = suite.state(provider)
    requests = _requests(suite.config.matrix.max_new_tokens)
    with suite.sampling(f"{provider}-responses"):
        records = [
            suite.measure(engine, r, case=f"{provider}-responses", test="real_responses",
                          prompt_length=len(engine.prompt_ids(r)), index=i)
            for i, r in enumerate(requests)
        ]
    state.decodes = all(r.output_text == engine.tokenizer.decode(r.output_ids) for r in records)
    state.token_counts = [
        {
            "case": f"{provider}-responses#{r.request_index}",
            "reported_prompt_tokens": r.prompt_tokens,
            "expected_prompt_tokens": len(engine.tokenizer.encode_chat(req.messages, add_bos=True)),
            "reported_completion_tokens": r.completion_tokens,
            "expected_completion_tokens": len(r.output_ids),
        }
        for r, req in zip(records, requests)
    ]
    _compare_with_reference(suite, engine, provider, requests, [r.output_ids for r in records])
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert state.decodes, "streamed text differs from the decoded ids"


def _compare_with_reference(suite: SuiteSession, engine: Engine, provider: str,
                            requests: list[Request], outputs: list[list[int]]) -> None:
    """onnxruntime-genai on the same folder and the same ids is the reference engine."""
    state = suite.state(provider)
    try:
        from harness.targets.genai import GenaiTarget

        reference = GenaiTarget(suite.model_dir, provider)
    except HarnessError as error:
        state.matches_reference, state.reference_note = None, f"reference comparison skipped: {error}"
        return
    expected = []
    for request in requests:
        ids = tuple(engine.prompt_ids(request))
        same_ids = Request(prompt_ids=ids, max_new_tokens=request.max_new_tokens)
        expected.append([e.token_id for e in reference.stream(same_ids) if isinstance(e, TokenEvent)])
    reference.close()
    state.matches_reference = expected == outputs
    state.reference_note = f"greedy output {'equals' if state.matches_reference else 'differs from'} onnxruntime-genai's"
    if not state.matches_reference:
        pytest.fail(f"{provider}: greedy output differs from onnxruntime-genai's on the same ids")
