"""The comparison of two runs as terminal lines (at most 100 columns): one block per case.

    latency · cpu-engine-fp32-p16-n16-c1 (10 vs 10 samples)
      TTFT             8.12 ms     10.5 ms   x1.29 [1.21-1.38]   0.0004  REGRESSION
"""

from __future__ import annotations

from harness.report.gate import CaseResult, RunComparison
from harness.units import number as fmt_number
from harness.stats import MetricComparison

WIDTH = 100
ROW = "  {metric:<13} {base:>11} {now:>11}   {ratio:<20} {p:>7}  {verdict}"


def comparison_lines(comparison: RunComparison) -> list[str]:
    """Heading, mismatches and unmatched cases, then each case with its metrics' rows."""
    lines = [_fit(f"{comparison.baseline} -> {comparison.current} (limit {comparison.limit_pct:g} %)"),
             "ratio = median now / median baseline [simultaneous 95 % interval]; p = Holm-adjusted Mann-Whitney"]
    lines += [_fit(f"  compared anyway (--allow-mismatch): {m}") for m in comparison.mismatches]
    lines.append(ROW.format(metric="metric", base="baseline", now="current", ratio="ratio [interval]",
                            p="p adj", verdict="verdict"))
    current_case = None
    for result in comparison.results:
        if result.key != current_case:
            current_case = result.key
            lines.append(_fit(case_heading(result)))
        lines.append(_fit(_row(result)))
    for label, ids in (("only in the baseline", comparison.only_baseline), ("only in the current run", comparison.only_current)):
        if ids:
            lines.append(_fit(f"not compared, {label}: {', '.join(ids)}"))
    lines.append(_fit(comparison.summary()))
    return lines


def case_heading(result: CaseResult) -> str:
    """A case's line above its metrics (terminal and page): test, case id and the samples compared."""
    samples = f"{result.result.n_baseline} vs {result.result.n_current} samples"
    return f"{result.key[0]} · {result.case_id} ({samples})"


def _row(result: CaseResult) -> str:
    metric, r = result.metric, result.result
    return ROW.format(
        metric=metric.label,
        base=_value(r.baseline_median, metric.scale, metric.unit),
        now=_value(r.current_median, metric.scale, metric.unit),
        ratio=ratio_text(r),
        p="-" if r.p_adjusted is None else f"{r.p_adjusted:.2g}",
        verdict=verdict_text(r),
    )


def ratio_text(result: MetricComparison) -> str:
    """x1.29 [1.21-1.38]: current / baseline, for any metric direction."""
    if result.ratio is None:
        return "-"
    return f"x{result.ratio:.3g} [{result.ratio_low:.3g}-{result.ratio_high:.3g}]"


def verdict_text(result: MetricComparison) -> str:
    text = result.verdict.upper() if result.verdict in ("regression", "improvement") else result.verdict
    if result.verdict == "inconclusive" and result.samples_needed:
        text += f" (n~{result.samples_needed})"
    return text


def _value(value: float | None, scale: float, unit: str) -> str:
    return "-" if value is None else f"{fmt_number(value * scale)} {'ms' if unit == 'ms' else ''}".rstrip()


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"
