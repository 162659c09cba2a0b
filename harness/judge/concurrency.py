"""Concurrency: concurrent requests all succeed, really overlap, and each equals its own
single-stream output (no cross-talk between requests).

Two counts prove the overlap. In flight: submitted and not finished (submit .. last token); its
peak must reach the configured level, or the case did not test that level (inconclusive: requests
sent one after another, or so short that the first ended before the last worker started). Generating: from
the first token to the last; a target that queues requests behind one another still shows N in
flight (they all wait) but never two generating at once, so that peak must reach 2. Requiring N
generating at once would be wrong: with long prompts a request's prefill can outlast another's
whole decode on a busy machine although the target does run them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.judge import families
from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement
from harness.measure.results import Verdict

if TYPE_CHECKING:  # frames are pandas at run time; the checklist table loads without it (gate.py)
    import pandas as pd


def peak_overlap(starts: pd.Series, ends: pd.Series) -> int:
    """Most intervals open at the same moment; one that ends as another starts does not overlap it."""
    events = [(int(start), 1) for start in starts] + [(int(end), -1) for end in ends]
    open_now = peak = 0
    for _, step in sorted(events):  # at one instant an end (-1) sorts before a start (+1)
        open_now += step
        peak = max(peak, open_now)
    return peak


def peak_in_flight(rows: pd.DataFrame) -> int:
    """Most requests submitted and not yet finished at the same moment."""
    return peak_overlap(rows["submit_ns"], rows["end_ns"])


def peak_generating(rows: pd.DataFrame) -> int:
    """Most successful requests between their first and last token at the same moment."""
    spans = rows[rows["ok"] & rows["first_token_ns"].notna()]
    return peak_overlap(spans["first_token_ns"], spans["end_ns"])


def _overlap_problems(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(closed-loop cases that serialised requests, cases that never had their level in flight)."""
    serialised, short = [], []
    for case, group in rows[rows["concurrency"] > 1].groupby("case_id", sort=False):
        level, in_flight, generating = int(group["concurrency"].iloc[0]), peak_in_flight(group), peak_generating(group)
        if in_flight < level:
            short.append(f"{case}: at most {in_flight} of {level} requests in flight (the load never had {level} "
                         "going at once: requests sent one after another, or too short for this machine)")
        elif generating < 2:
            serialised.append(f"{case}: {in_flight} in flight but never two generating at once "
                              "(the target serialises them)")
    return serialised, short


def _comparison_gaps(rows: pd.DataFrame, inputs: CheckInputs) -> tuple[list[str], list[str]]:
    """(cases with outputs that differ from single-stream, cases not (fully) compared)."""
    compared = {c.case: c for c in inputs.evidence.concurrency}
    differ, missing = [], []
    for case, group in rows.groupby("case_id", sort=False):
        comparison = compared.get(str(case))
        if comparison is None or comparison.compared < int(group["ok"].sum()):
            done = 0 if comparison is None else comparison.compared
            missing.append(f"{case} ({done} of {int(group['ok'].sum())} outputs compared)")
        if comparison is not None and comparison.mismatched:
            differ.append(f"{case}: requests {comparison.mismatched[:5]} differ from their single-stream output")
    return differ, missing


def concurrency(j: Judgement, inputs: CheckInputs) -> Verdict:
    rows = families.concurrent(inputs.records)
    case = families.cases(rows)
    if rows.empty:
        return j.skip("no requests at concurrency > 1 or open-loop requests were recorded")
    measured = f"{int(rows['ok'].sum())}/{len(rows)} ok"
    peaks = f"up to {peak_in_flight(rows)} in flight, {peak_generating(rows)} generating at once"
    if problem := families.failures(rows):
        return j.fail(f"{problem}; {peaks}", measured, case, len(rows))
    differ, missing = _comparison_gaps(rows, inputs)
    if differ:
        return j.fail("outputs differ from single-stream outputs (cross-talk): " + "; ".join(differ), measured,
                      case, len(rows))
    serialised, short = _overlap_problems(rows)
    if serialised:
        return j.fail("requests did not run concurrently: " + "; ".join(serialised), measured, case, len(rows))
    if short:
        return j.inconclusive("concurrency not reached: " + "; ".join(short), measured, case, len(rows))
    if missing:
        return j.inconclusive("the single-stream comparison did not run for " + ", ".join(missing), measured,
                              case, len(rows))
    if rows[rows["concurrency"] > 1].empty:
        return j.inconclusive(f"only open-loop cases ({peaks}): no configured level to reach", measured, case,
                              len(rows))
    if (short := j.too_few(len(rows), "concurrent requests", case, measured)) is not None:
        return short
    return j.passed(f"{peaks}; every output equals its single-stream output", measured, case, len(rows))
