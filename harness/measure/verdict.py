"""A checklist verdict as written to checklist.json (plain data; harness/judge/ makes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "inconclusive": measured, but too few samples (or too wide an interval) to say; "marginal": the
# confidence interval straddles the threshold; "pass (partial)": passed what was checked, but a part
# of the item (e.g. the reference comparison) did not run. docs/ARCHITECTURE.md has the gate's rule.
VerdictKind = Literal["pass", "fail", "skip", "info", "inconclusive", "marginal", "pass (partial)"]


@dataclass
class Verdict:
    check: str  # stable key, e.g. "first_response"
    title: str  # human title, e.g. "First response (cold TTFT)"
    verdict: VerdictKind
    measured: float | str | None
    threshold: float | str | None
    unit: str = ""
    comparison: str = ""  # "<=", ">=", "==", ">"
    case: str = ""
    reason: str = ""  # why it failed, skipped, or is info only
    gating: bool = True  # a failing gating check makes the exit code non-zero
    provider: str = ""  # which provider the verdict is for
    target: str = ""  # engine | genai | http
    family: str = ""  # the records the item reads (harness/judge/table.py)
    samples: int | None = None  # how many samples the verdict rests on
    min_samples: int | None = None  # fewer than this: inconclusive
    low: float | None = None  # confidence interval of ``measured`` (percentile items)
    high: float | None = None
    confidence: float | None = None
    applicable: bool = True  # False: the item means nothing for this provider/target (never gates)
