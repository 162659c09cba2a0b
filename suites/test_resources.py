"""Proof that the provider executes the graph, and memory growth over repeated requests."""

from __future__ import annotations

from harness.judge.table import BY_KEY
from harness.measure.prompts import exact_length_prompt
from harness.measure.proof import prove_provider
from harness.suite import gather
from harness.suite.session import SuiteSession
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request
from harness.targets.engine import Engine

# The slope leaves out the first quarter as warm-up; what remains must reach the item's minimum.
REPEATED_REQUESTS = 3 * BY_KEY["memory_stable"].min_samples


def test_provider_executes_the_graph(suite: SuiteSession, engine: Engine, provider: str) -> None:
    evidence = suite.evidence(provider)
    request = Request(prompt_ids=exact_length_prompt(engine.tokenizer, min(suite.config.matrix.prompt_lengths)),
                      max_new_tokens=4)
    evidence.proof = prove_provider(suite.model_dir, suite.config.provider_settings(provider), request, suite.run_dir)
    suite.save_proofs()
    assert evidence.proof["providers"], f"{provider}: the profile recorded no kernel"


def test_memory_over_repeated_requests(suite: SuiteSession, target: SuiteTarget, provider: str) -> None:
    length = max(suite.config.matrix.prompt_lengths)
    request = Request(prompt_ids=exact_length_prompt(target.tokenizer, length),
                      max_new_tokens=suite.config.matrix.max_new_tokens)
    records = gather.repeated_requests(suite, target.target, request, case=suite.case_id(target.target, length),
                                       prompt_length=length, count=REPEATED_REQUESTS)
    assert all(r.ok for r in records), [r.error for r in records if not r.ok][:1]
