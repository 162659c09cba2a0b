"""Latency per case (provider x prompt length, one stream): TTFT, TPOT, E2E as pytest-benchmark rounds."""

from __future__ import annotations

import itertools

from harness.stats import summarize
from harness.suite.targets import SuiteTarget
from harness.measure.prompts import exact_length_prompt
from harness.suite.session import SuiteSession
from harness.targets.base import Request


def test_latency(suite: SuiteSession, target: SuiteTarget, provider: str, prompt_length: int, benchmark) -> None:
    matrix = suite.config.matrix
    case = suite.case_id(target.target, prompt_length)
    request = Request(prompt_ids=exact_length_prompt(target.tokenizer, prompt_length), max_new_tokens=matrix.max_new_tokens)
    records = []
    index = itertools.count()

    def one_request() -> None:
        records.append(suite.measure(target.target, request, case=case, test="latency", prompt_length=prompt_length, index=next(index)))

    with suite.sampling(case):
        for _ in range(matrix.warmup):  # not recorded: warms caches and the allocator
            target.run_alone(request)
        benchmark.pedantic(one_request, rounds=matrix.repetitions, iterations=1, warmup_rounds=0)

    failed = [r for r in records if not r.ok]
    assert not failed, f"{case}: {len(failed)} of {len(records)} requests failed: {failed[0].error}"
    stats = {name: summarize([getattr(r, name) for r in records]) for name in ("ttft_s", "tpot_s", "e2e_s", "decode_tok_s", "prefill_tok_s")}
    benchmark.extra_info.update(
        case=case, provider=provider, prompt_length=prompt_length, max_new_tokens=matrix.max_new_tokens,
        **{f"{name}_p50": s.p50 for name, s in stats.items()},
        **{f"{name}_p90": s.p90 for name, s in stats.items() if name.endswith("_s")},
        warnings=[f"{name}: {s.warning}" for name, s in stats.items() if s.warning],
    )
    if target.kind == "engine":  # over HTTP the prompt travels as text and the server counts it
        assert all(r.prompt_tokens == prompt_length for r in records), f"{case}: prompt is not {prompt_length} tokens"
    assert all(r.completion_tokens > 0 for r in records), f"{case}: a request generated no token"
