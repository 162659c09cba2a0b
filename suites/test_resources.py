"""Proof that the provider executes the graph, and memory growth over repeated requests."""

from __future__ import annotations

from harness.judge.checklist import MIN_GROWTH_REQUESTS
from harness.targets.engine import Engine
from harness.measure.proof import prove_provider
from harness.measure.prompts import exact_length_prompt
from harness.suite.session import SuiteSession
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request

REPEATED_REQUESTS = 3 * MIN_GROWTH_REQUESTS


def test_provider_executes_the_graph(suite: SuiteSession, engine: Engine, provider: str) -> None:
    state = suite.state(provider)
    request = Request(prompt_ids=exact_length_prompt(engine.tokenizer, min(suite.config.matrix.prompt_lengths)),
                      max_new_tokens=4)
    state.proof = prove_provider(suite.model_dir, suite.config.provider_settings(provider), request, suite.run_dir)
    suite.save_proofs()
    assert state.proof["providers"], f"{provider}: the profile recorded no kernel"


def test_memory_over_repeated_requests(suite: SuiteSession, target: SuiteTarget, provider: str) -> None:
    length = max(suite.config.matrix.prompt_lengths)
    request = Request(prompt_ids=exact_length_prompt(target.tokenizer, length), max_new_tokens=suite.config.matrix.max_new_tokens)
    case = suite.case_id(target.target, length)
    with suite.sampling(case):
        records = [
            suite.measure(target.target, request, case=case, test="memory", prompt_length=length, index=i)
            for i in range(REPEATED_REQUESTS)
        ]
    assert all(r.ok for r in records), [r.error for r in records if not r.ok][:1]
