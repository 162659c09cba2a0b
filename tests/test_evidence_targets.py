"""The checklist catches real misbehaviour: targets wrapping the real engine leak, swap outputs
between concurrent requests, serialise requests, or use a wrong chat template, and the suites'
own evidence-gathering code (harness/suite/gather.py) plus the judges fail them; the plain engine
passes the same path."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_targets import LeakingTarget, SerialisingTarget, SwappingTarget, Wrapped, WrongTemplateTarget
from harness.config import load_config
from harness.measure.prompts import DISTINCT_QUESTIONS, exact_length_prompt
from harness.suite import gather
from harness.suite.session import SuiteSession
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request, Target
from harness.targets.engine import Engine

MEMORY_REQUESTS = 24
CONCURRENCY = 4


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    engine = Engine.load(tiny_model_dir)
    yield engine
    engine.close()


def session(tiny_model_dir: Path, run_dir: Path, interval_s: float = 0.05) -> SuiteSession:
    config = load_config("quick", {"matrix.providers": ["cpu"], "telemetry.interval_s": interval_s,
                                   "matrix.max_new_tokens": 8})
    run_dir.mkdir(parents=True)
    return SuiteSession(config, tiny_model_dir, run_dir, ["cpu"])


def test_the_misbehaving_targets_are_real_targets(engine: Engine) -> None:
    for target in (Wrapped(engine), LeakingTarget(engine, 1), SwappingTarget(engine), SerialisingTarget(engine),
                   WrongTemplateTarget(engine)):
        assert isinstance(target, Target)


@pytest.mark.parametrize("interval_s", [0.01, 5.0])
@pytest.mark.parametrize("leak_mib, expected", [(4.0, "fail"), (0.0, "pass")])
def test_memory_stable_fails_a_leaking_target_at_fast_and_slow_sampler_intervals(
        engine: Engine, tiny_model_dir: Path, tmp_path: Path, interval_s: float, leak_mib: float, expected: str) -> None:
    suite = session(tiny_model_dir, tmp_path / "run", interval_s)
    request = Request(prompt_ids=tuple(exact_length_prompt(engine.tokenizer, 16)), max_new_tokens=8)
    target = LeakingTarget(engine, leak_mib)
    try:
        gather.repeated_requests(suite, target, request, case="cpu-memory", prompt_length=16, count=MEMORY_REQUESTS)
        verdict = suite.verdict("cpu", "memory_stable")
    finally:
        target.close()
        suite.close()
    assert verdict.verdict == expected, verdict.reason
    assert verdict.samples == MEMORY_REQUESTS - MEMORY_REQUESTS // 4
    if expected == "fail":
        assert verdict.measured == pytest.approx(leak_mib, rel=0.25)


def _concurrency_verdict(target: Target, engine: Engine, tiny_model_dir: Path, run_dir: Path):
    # 32 new tokens and 4 waves: long enough that a busy 2-core machine still starts every worker
    # before the first request ends
    suite = session(tiny_model_dir, run_dir)
    requests = [Request(prompt_ids=tuple(exact_length_prompt(engine.tokenizer, 16, variant=v)), max_new_tokens=32)
                for v in range(CONCURRENCY)]
    try:
        gather.closed_loop(suite, "cpu", SuiteTarget("engine", target, engine.tokenizer), requests,
                           case="cpu-p16-c4", prompt_length=16,
                           concurrency=CONCURRENCY, total=4 * CONCURRENCY)
        return suite.verdict("cpu", "concurrency")
    finally:
        suite.close()


def test_a_target_that_swaps_outputs_between_concurrent_requests_fails(engine, tiny_model_dir, tmp_path) -> None:
    verdict = _concurrency_verdict(SwappingTarget(engine), engine, tiny_model_dir, tmp_path / "run")
    assert verdict.verdict == "fail" and "cross-talk" in verdict.reason


def test_a_target_that_serialises_requests_does_not_pass_as_concurrent(engine, tiny_model_dir, tmp_path) -> None:
    verdict = _concurrency_verdict(SerialisingTarget(engine), engine, tiny_model_dir, tmp_path / "run")
    assert verdict.verdict == "fail" and "never two generating at once" in verdict.reason


def test_the_engine_itself_passes_the_concurrency_item(engine, tiny_model_dir, tmp_path) -> None:
    verdict = _concurrency_verdict(Wrapped(engine), engine, tiny_model_dir, tmp_path / "run")
    assert verdict.verdict == "pass", verdict.reason


def _token_verdict(target: Target, engine: Engine, tiny_model_dir: Path, run_dir: Path):
    suite = session(tiny_model_dir, run_dir)
    try:
        gather.chat_responses(suite, "cpu", target, DISTINCT_QUESTIONS[:3], 8,
                              prompt_length=lambda request: len(engine.prompt_ids(request)))
        return suite.verdict("cpu", "token_counting")
    finally:
        suite.close()


def test_a_target_with_a_wrong_chat_template_fails_token_counting(engine, tiny_model_dir, tmp_path) -> None:
    verdict = _token_verdict(WrongTemplateTarget(engine), engine, tiny_model_dir, tmp_path / "run")
    assert verdict.verdict == "fail"
    assert "prompt_tokens reported" in verdict.reason and "independent count" in verdict.reason


def test_the_engine_passes_token_counting_against_the_folders_own_template(engine, tiny_model_dir, tmp_path) -> None:
    verdict = _token_verdict(Wrapped(engine), engine, tiny_model_dir, tmp_path / "run")
    assert verdict.verdict == "pass", verdict.reason
