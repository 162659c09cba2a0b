"""The checklist as text for the terminal, the page's gate banner, and the folding of an unavailable
provider into one row."""

from __future__ import annotations

import dataclasses
import html
from typing import Any, Sequence

from harness.judge.gate import MEASURED, gate, provider_of, providers_in
from harness.judge.table import CHECKS
from harness.judge.verdicts import fmt
from harness.measure.results import Verdict


def fold_unavailable(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """For display: one line for a provider whose every item skipped for the same reason."""
    groups: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        groups.setdefault(provider_of(verdict), []).append(verdict)
    folded: list[Verdict] = []
    for verdict in verdicts:
        group = groups[provider_of(verdict)]
        if len(group) < len(CHECKS) or len({v.reason for v in group}) > 1 or any(v.verdict != "skip" for v in group):
            folded.append(verdict)
        elif verdict is group[0]:
            folded.append(Verdict("all", f"All {len(CHECKS)} items", "skip", None, None, case=verdict.case,
                                  reason=verdict.reason, provider=provider_of(verdict), target=verdict.target))
    return folded


def verdict_label(verdict: Verdict) -> str:
    """PASS, FAIL, SKIP, INFO, INCONCLUSIVE, MARGINAL, PASS (partial); "(non-gating)" on a non-gating
    pass or fail."""
    word = verdict.verdict.upper().replace("(PARTIAL)", "(partial)")
    quiet = verdict.verdict in ("skip", "info") or verdict.gating
    return word + ("" if quiet else " (non-gating)")


def measured_text(verdict: Verdict) -> str:
    unit = f" {verdict.unit}" if verdict.unit and verdict.measured is not None else ""
    text = fmt(verdict.measured) + unit
    if verdict.low is not None and verdict.high is not None:
        text += f" [{fmt(verdict.low)}-{fmt(verdict.high)}]"
    return text


def format_table(verdicts: Sequence[Verdict]) -> str:
    """Plain-text table for the terminal: item, verdict, measured, threshold, case, reason."""
    header = ("item", "verdict", "measured", "threshold", "case", "reason")
    rows = [header]
    for v in verdicts:
        numeric = isinstance(v.threshold, (int, float))
        limit = f"{v.comparison} {fmt(v.threshold)}".strip() + (f" {v.unit}" if v.unit and numeric else "")
        rows.append((v.title, verdict_label(v), measured_text(v), limit if v.threshold is not None else "-",
                     v.case or "-", v.reason or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * 6)
    return "\n".join(line.rstrip() for line in lines)


def gate_banner(run: Any) -> str:
    """The exit rule of harness/judge/gate.py in words: failures, and providers with nothing measured."""
    if not run.checklist:
        return '<span class="gate bad">No checklist: checklist.json missing, the run has no verdicts</span>'
    known = {f.name for f in dataclasses.fields(Verdict)}
    verdicts = [Verdict(**{k: v for k, v in item.items() if k in known}) for item in run.checklist]
    result = gate(verdicts, run.environment.get("required_providers") or [])
    if result.code:
        return f'<span class="gate bad">Checklist gate: FAIL ({html.escape(result.message)})</span>'
    providers = providers_in(verdicts)
    tested = [p for p in providers if any(v.verdict in MEASURED for v in verdicts if provider_of(v) == p)]
    untested = [p for p in providers if p not in tested]
    text = f"measured on {', '.join(tested) or 'nothing'}"
    text += f"; not measured: {', '.join(untested)}" if untested else ""
    return f'<span class="gate ok">Checklist gate: PASS — {html.escape(text)}</span>'
