"""Real responses: distinct prompts get distinct, non-placeholder answers that decode from the
generated ids and equal the reference engine's greedy output."""

from __future__ import annotations

from harness.judge import families
from harness.judge.evidence import CheckInputs
from harness.judge.placeholders import placeholder_hits
from harness.judge.verdicts import PARTIAL, Judgement
from harness.measure.results import Verdict


def _problems(texts: list[str], inputs: CheckInputs) -> list[str]:
    evidence = inputs.evidence
    problems = []
    if empty := sum(not text.strip() for text in texts):
        problems.append(f"{empty} empty output(s)")
    if len(set(texts)) < len(texts):
        problems.append(f"{len(texts) - len(set(texts))} output(s) repeat another prompt's output")
    if hits := placeholder_hits(texts, evidence.prompts):
        problems.append("placeholder text " + "; ".join(hits[:2]))
    if evidence.decodes is False:
        problems.append("output text differs from the decoded generated ids")
    if evidence.matches_reference is False:
        problems.append("greedy output differs from the reference engine's")
    return problems


def real_responses(j: Judgement, inputs: CheckInputs) -> Verdict:
    rows = families.responses(inputs.records).sort_values("request_index")
    case = families.cases(rows)
    if rows.empty:
        return j.skip("no responses to distinct prompts were recorded")
    if problem := families.failures(rows):
        return j.fail(problem, case=case, samples=len(rows))
    texts = [str(text) for text in rows["output_text"]]
    measured = f"{len(set(texts))}/{len(texts)} distinct"
    if (short := j.too_few(len(texts), "responses to distinct prompts", case, measured)) is not None:
        return short
    if problems := _problems(texts, inputs):
        return j.fail("; ".join(problems), measured, case, len(texts))
    evidence = inputs.evidence
    not_run = [name for name, flag in (("decoding check", evidence.decodes),
                                       ("reference comparison", evidence.matches_reference)) if flag is None]
    note = evidence.reference_note
    if not_run:
        reason = f"not run: {', '.join(not_run)}" + (f" ({note})" if note else "")
        return j.make(PARTIAL, reason, measured, case=case, samples=len(texts))
    return j.passed(note or "distinct, decodable, equal to the reference", measured, case, len(texts))
