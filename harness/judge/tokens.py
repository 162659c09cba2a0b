"""Token counting: the target's reported prompt and completion counts equal counts made without it
(the model folder's own chat template and tokenizer; the output text re-tokenized)."""

from __future__ import annotations

from harness.judge.evidence import CheckInputs, TokenCount
from harness.judge.verdicts import Judgement
from harness.measure.results import Verdict

PARTS = ("prompt_tokens", "completion_tokens")


def _problems(count: TokenCount) -> list[str]:
    problems = []
    where = f" in {count.case}" if count.case else ""
    for part in PARTS:
        reported, expected = getattr(count, f"reported_{part}"), getattr(count, f"expected_{part}")
        if reported is None:
            problems.append(f"no reported {part}{where}")
        elif expected is None:
            problems.append(f"no independent {part} count{where}")
        elif reported != expected:
            problems.append(f"{part} reported {reported}, independent count {expected}{where}")
    return problems


def token_counting(j: Judgement, inputs: CheckInputs) -> Verdict:
    counts, note = inputs.evidence.token_counts, inputs.evidence.token_count_note
    if not counts:
        if note:
            return j.inconclusive(f"no independent count was made: {note}")
        return j.skip("no reported counts were compared with an independent count")
    problems = [problem for count in counts for problem in _problems(count)]
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        return j.fail("; ".join(problems[:3]) + more, f"{len(problems)} mismatch(es)", samples=len(counts))
    measured = f"{len(counts)} compared"
    if (short := j.too_few(len(counts), "requests compared", measured=measured)) is not None:
        return short
    methods = sorted({count.completion_note for count in counts if count.completion_note})
    reason = f"{len(counts)} requests match the independent counts" + (f" ({'; '.join(methods)})" if methods else "")
    return j.passed(reason, measured, samples=len(counts))
