"""One checklist item as data: what it compares, in which unit, on which records, from how many samples.

The table of all items is harness/judge/table.py; the judging functions read their operator, unit,
family and minimum samples from the row they are given, so those facts live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from harness.measure.results import Verdict
from harness.providers.spec import runs_on_cpu

# (provider, target) -> why the item does not apply there, or None when it does
Applicability = Callable[[str, str], "str | None"]


def never(provider: str) -> bool:
    return False


def everywhere(provider: str, target: str) -> str | None:
    return None


def http_targets_only(provider: str, target: str) -> str | None:
    return None if target == "http" else "not applicable: health is checked on HTTP targets only"


def in_process_only(provider: str, target: str) -> str | None:
    if target == "http":
        return "not applicable: the server's execution provider cannot be profiled from outside its process"
    return None


def accelerators_only(provider: str, target: str) -> str | None:
    if runs_on_cpu(provider):
        return "not applicable: the CPU provider uses no accelerator"
    if provider == "remote":
        return "not applicable: the target runs in another process; this process's counters say nothing"
    return None


@dataclass(frozen=True)
class Item:
    """A row of the checklist table."""

    key: str  # stable key in checklist.json
    title: str  # what the terminal and the page show
    operator: str  # "<=", ">=", ">" against a numeric threshold; "" when the requirement is words
    unit: str
    family: str  # the records or evidence the item reads, in words
    min_samples: int  # fewer samples than this: inconclusive, never pass
    threshold: str  # a Thresholds field name (numeric items) or the requirement in words
    judge: Callable[[Any, Any], Verdict]  # (verdicts.Judgement, evidence.CheckInputs) -> Verdict
    applies: Applicability = everywhere
    gating: bool = True  # a non-gating item is reported and never changes the exit code
    info_on: Callable[[str], bool] = never  # providers on which the item is reported as info (never gating)

    @property
    def numeric(self) -> bool:
        return self.operator != ""
