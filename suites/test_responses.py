"""Real responses and token counting: distinct prompts, decodable output, the reference engine agrees,
and the reported token counts equal counts made from the model folder's own template and tokenizer."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.judge.table import BY_KEY
from harness.measure.prompts import DISTINCT_QUESTIONS
from harness.suite import gather
from harness.suite.session import SuiteSession
from harness.targets.base import Request, TokenEvent
from harness.targets.engine import Engine

N_PROMPTS = max(BY_KEY["real_responses"].min_samples, BY_KEY["token_counting"].min_samples)


def test_real_responses(suite: SuiteSession, engine: Engine, provider: str) -> None:
    evidence = suite.evidence(provider)
    requests, records = gather.chat_responses(
        suite, provider, engine, DISTINCT_QUESTIONS[:N_PROMPTS], suite.config.matrix.max_new_tokens,
        prompt_length=lambda request: len(engine.prompt_ids(request)),
    )
    _compare_with_reference(suite, engine, provider, requests, [r.output_ids for r in records])
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert evidence.decodes is not False, "streamed text differs from the decoded ids"


def _compare_with_reference(suite: SuiteSession, engine: Engine, provider: str,
                            requests: list[Request], outputs: list[list[int]]) -> None:
    """onnxruntime-genai on the same folder and the same ids is the reference engine."""
    evidence = suite.evidence(provider)
    try:
        from harness.targets.genai import GenaiTarget

        reference = GenaiTarget(suite.model_dir, provider)
    except HarnessError as error:
        evidence.matches_reference, evidence.reference_note = None, f"reference comparison skipped: {error}"
        return
    expected = []
    for request in requests:
        ids = tuple(engine.prompt_ids(request))
        same_ids = Request(prompt_ids=ids, max_new_tokens=request.max_new_tokens)
        expected.append([e.token_id for e in reference.stream(same_ids) if isinstance(e, TokenEvent)])
    reference.close()
    evidence.matches_reference = expected == outputs
    evidence.reference_note = f"greedy output {'equals' if evidence.matches_reference else 'differs from'} onnxruntime-genai's"
    if not evidence.matches_reference:
        pytest.fail(f"{provider}: greedy output differs from onnxruntime-genai's on the same ids")
