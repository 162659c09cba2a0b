"""Items about the model being there at all: it loads; an HTTP server's health endpoint says so."""

from __future__ import annotations

from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement, fmt
from harness.measure.results import Verdict


def model_loads(j: Judgement, inputs: CheckInputs) -> Verdict:
    evidence = inputs.evidence
    if evidence.load_error:
        return j.fail(f"load failed: {evidence.load_error}")
    if evidence.load_s is None and evidence.health_model_loaded:  # a server that does not say how long it took
        return j.passed("the server reports the model loaded; its load time is not visible", samples=1)
    if evidence.load_s is None:
        return j.skip("the model load was not measured")
    return j.passed(f"loaded in {fmt(float(evidence.load_s))} s", float(evidence.load_s), samples=1)


def health(j: Judgement, inputs: CheckInputs) -> Verdict:
    evidence = inputs.evidence
    detail = evidence.health_detail
    if evidence.health_model_loaded is None:
        return j.skip("the health endpoint was not asked")
    if not evidence.health_model_loaded:
        return j.fail("the health endpoint does not report the model loaded" + (f": {detail}" if detail else ""),
                      detail or "model not loaded", samples=1)
    return j.passed(detail or "the health endpoint reports the model loaded", "ok", samples=1)
