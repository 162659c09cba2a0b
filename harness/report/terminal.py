"""What a run prints at the end, in at most 100 columns: serving summary, checklist, gate verdict.

Colour only when the stream is a terminal and NO_COLOR is not set (https://no-color.org).
"""

from __future__ import annotations

import os
import textwrap
from typing import IO, TYPE_CHECKING, Mapping

from harness.judge.slo import describe
from harness.units import duration, number

if TYPE_CHECKING:  # summary.py loads pandas; `run` imports this module before it starts the suites
    from harness.report.summary import GroupSummary

WIDTH = 100
_COLOURS = {"pass": "32", "fail": "31;1", "marginal": "33", "inconclusive": "33", "skip": "2", "info": "36"}


COLOUR_ENV = "PHI3_HARNESS_COLOUR"  # "1"/"0": set by `run` for the suites, whose stdout is its pipe
UNDER_RUN_ENV = "PHI3_HARNESS_UNDER_RUN"  # "1": `run` prints the gate line itself, last


def use_colour(stream: IO[str]) -> bool:
    if os.environ.get(COLOUR_ENV) in ("0", "1"):
        return os.environ[COLOUR_ENV] == "1"
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, verdict: str, colour: bool) -> str:
    code = _COLOURS.get(verdict.split()[0].lower()) if colour else None
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def _rule(title: str) -> str:
    title = f" {title} "
    left = (WIDTH - len(title)) // 2
    return "=" * left + title + "=" * (WIDTH - left - len(title))


def summary_lines(summary: GroupSummary, limits: Mapping[str, float] | None = None) -> list[str]:
    """One block like `vllm bench serve`'s: throughput, then mean/p50/p99 per latency metric."""
    lines = [_rule(f"{summary.target} on {summary.provider}")]
    rate, tokens = summary.request_rate, summary.output_token_rate
    lines.append(f"{'Requests ok / failed:':<34}{summary.ok} / {summary.failed}")
    if summary.error_kinds:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in summary.error_kinds.items())
        lines.extend(textwrap.wrap(f"{'Failures:':<34}{kinds}", WIDTH, subsequent_indent=" " * 34))
    lines.append(f"{'Busy time (requests in flight):':<34}{duration(summary.busy_s)}")
    lines.append(f"{'Request throughput:':<34}{number(rate)} req/s")
    lines.append(f"{'Output token throughput:':<34}{number(tokens)} tok/s")
    if summary.goodput is not None and limits:
        share = summary.goodput.share
        lines.append(f"{'Goodput:':<34}{number(summary.goodput.per_s)} req/s, {summary.goodput.good}/"
                     f"{summary.goodput.total} good ({number(None if share is None else share * 100)} %)")
        lines.append(f"{'  SLO:':<34}{describe(limits)}")
    lines.append(f"{'Cold TTFT (first after load):':<34}{duration(summary.cold_ttft_s)}")
    lines.append(f"{'metric (warm requests, ms)':<28}{'mean':>12}{'p50':>12}{'p99':>12}{'samples':>10}")
    for label, line in summary.metrics.items():
        cells = [number(None if v is None else v * 1000) for v in (line.mean, line.p50, line.p99)]
        lines.append(f"{label:<28}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}{line.n:>10}")
    return lines


def gate_line(exit_code: int, reason: str, colour: bool = False) -> str:
    """``gate: PASS: why`` (the judge's wording); a long reason wraps at 100 columns, never cut."""
    verdict = "PASS" if exit_code == 0 else "FAIL"
    text = f"gate: {verdict}: {reason}" if reason else f"gate: {verdict}"
    lines = textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    return "\n".join(paint(line, "pass" if exit_code == 0 else "fail", colour) for line in lines)
