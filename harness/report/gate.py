"""Comparison maths for two runs: pair cases on their identity, compare raw samples, give verdicts.

No rendering here (report/compare.py draws the page, report/compare_text.py the terminal table);
the statistics themselves are harness.stats. A case is identified by every field that changes its
numbers (CASE_FIELDS, read from the records, never parsed out of case ids); a run by its model hash
and ONNX Runtime version. Only cases present in both runs are compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.providers.settings_text import threading_settings_text
from harness.report.environment_facts import per_provider_text
from harness.report.runs import RunData
from harness.stats import MetricComparison, judge_family

CASE_FIELDS = ("test", "provider", "target", "precision", "prompt_length", "max_new_tokens", "concurrency",
               "arrival_rate")

# Tests whose records are not repeated samples of one case.
NOT_COMPARED = {
    "cold": "one request per run (the first after load)",
    "real_responses": "distinct chat prompts, not repeated samples of one case",
    "open_loop": "at a fixed arrival rate, latency grows non-linearly with service time (queueing), so its "
                 "ratio says little about the size of a change; the closed-loop cases measure the same engine",
}


# A change smaller than this in the duration a metric measures does not count (--min-change-ms):
# back-to-back runs of one build on a busy machine move sub-millisecond figures by 10-30 % (which
# cores, which other processes), and no sample inside one run can see that run-to-run spread.
MIN_CHANGE_S = 0.001


@dataclass(frozen=True)
class GatedMetric:
    column: str  # RequestRecord field holding one sample per request
    label: str
    unit: str  # unit shown
    scale: float  # stored value x scale = value shown (seconds -> ms)
    better: str  # "lower" | "higher"
    duration: tuple[str, ...]  # the time it measures: one column, or (end, start) columns to subtract


GATED_METRICS = (
    GatedMetric("ttft_s", "TTFT", "ms", 1000.0, "lower", ("ttft_s",)),
    GatedMetric("e2e_s", "E2E", "ms", 1000.0, "lower", ("e2e_s",)),
    GatedMetric("decode_tok_s", "decode tok/s", "tok/s", 1.0, "higher", ("e2e_s", "ttft_s")),
)


COMPARISON_COLUMNS = [
    "baseline", "current", "test", "case_id", "metric", "unit", "better", "n_baseline", "n_current",
    "baseline_median", "current_median", "ratio", "ratio_low", "ratio_high", "worse", "worse_low", "worse_high",
    "confidence", "p_value", "p_adjusted", "verdict", "samples_needed", "reason",
]


@dataclass(frozen=True)
class CaseResult:
    case_id: str  # as the baseline's records name it
    key: tuple[Any, ...]  # the values of CASE_FIELDS
    metric: GatedMetric
    result: MetricComparison


@dataclass
class RunComparison:
    """Everything the page, the terminal table and the exit code need about one pair of runs."""

    baseline: str
    current: str
    limit_pct: float
    results: list[CaseResult]
    only_baseline: list[str] = field(default_factory=list)  # case ids without a partner
    only_current: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # run-level differences compared anyway

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.results if r.result.verdict == verdict)

    def of(self, verdict: str) -> list[CaseResult]:
        return [r for r in self.results if r.result.verdict == verdict]

    @property
    def tested(self) -> int:
        """Metrics with enough samples in both runs to be tested (the Holm family's size)."""
        return sum(1 for r in self.results if r.result.p_value is not None)

    def failed(self, fail_on_inconclusive: bool) -> bool:
        return bool(self.count("regression") or (fail_on_inconclusive and self.count("inconclusive")))

    def frame(self) -> pd.DataFrame:
        """One row per (case, metric): the comparison as plain numbers (comparison.csv, the page's table)."""
        rows = []
        for item in self.results:
            row = {"baseline": self.baseline, "current": self.current, "test": item.key[0], "case_id": item.case_id,
                   "metric": item.metric.label, "unit": item.metric.unit, "better": item.metric.better}
            row.update(item.result.as_dict())
            for name in ("baseline_median", "current_median"):  # in the unit shown
                row[name] = None if row[name] is None else row[name] * item.metric.scale
            rows.append(row)
        return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(kind)} {kind}" for kind in
                           ("regression", "improvement", "no change", "inconclusive"))
        return f"{self.tested} metric(s) tested of {len(self.results)} compared: {counts}"


def compare_runs(baseline: RunData, current: RunData, limit_pct: float, allow_mismatch: bool = False,
                 min_change_s: float = MIN_CHANGE_S) -> RunComparison:
    """Pair the cases of two runs and judge every gated metric of every pair.

    A metric's limit is PCT % or a change of ``min_change_s`` in the time it measures, whichever is larger.

    Raises HarnessError (one line naming the differing keys) when the model or ONNX Runtime differ
    and ``allow_mismatch`` is off, or when no case is in both runs.
    """
    mismatches = run_differences(baseline.environment, current.environment)
    if mismatches and not allow_mismatch:
        raise HarnessError(f"{current.run_id} is not comparable with {baseline.run_id}: {'; '.join(mismatches)}: "
                           "compare runs of the same model, ONNX Runtime and threading, or pass --allow-mismatch")
    base_cases, now_cases = case_samples(baseline), case_samples(current)
    common = [key for key in base_cases if key in now_cases]
    if not common:
        differing = case_differences(list(base_cases), list(now_cases))
        raise HarnessError(f"{current.run_id} and {baseline.run_id} have no case in common "
                           f"({'; '.join(differing) or 'one of them has no measured case'}): "
                           "compare runs of the same config")
    pairs = [(key, metric) for key in common for metric in GATED_METRICS]
    samples = [(base_cases[key][1][metric.column], now_cases[key][1][metric.column]) for key, metric in pairs]
    floors = [_floor(base_cases[key][1], metric, min_change_s) for key, metric in pairs]
    verdicts = judge_family(samples, [metric.better for _, metric in pairs], limit_pct, floors)
    return RunComparison(
        baseline=baseline.run_id, current=current.run_id, limit_pct=limit_pct,
        results=[CaseResult(base_cases[key][0], key, metric, verdict)
                 for (key, metric), verdict in zip(pairs, verdicts)],
        only_baseline=[base_cases[k][0] for k in base_cases if k not in now_cases],
        only_current=[now_cases[k][0] for k in now_cases if k not in base_cases],
        mismatches=mismatches,
    )


def _floor(frame: pd.DataFrame, metric: GatedMetric, min_change_s: float) -> float | None:
    """``min_change_s`` as a ratio of the baseline's median duration (None without a duration)."""
    end = frame[metric.duration[0]]
    duration = end - frame[metric.duration[1]] if len(metric.duration) > 1 else end
    median = duration.median()
    return 1.0 + min_change_s / median if min_change_s and median and median > 0 else None


def case_samples(run: RunData) -> dict[tuple[Any, ...], tuple[str, pd.DataFrame]]:
    """Warm successful records of each comparable case, keyed by the values of CASE_FIELDS."""
    records = run.records
    if records.empty:
        return {}
    records = records[records["ok"] & ~records["cold"] & ~records["test"].isin(list(NOT_COMPARED))]
    fallback_new_tokens = _configured_max_new_tokens(run.environment)
    cases: dict[tuple[Any, ...], tuple[str, pd.DataFrame]] = {}
    for _, group in records.groupby(list(CASE_FIELDS), dropna=False, sort=False):
        first = group.iloc[0]
        key = tuple(_plain(first.get(name)) for name in CASE_FIELDS)
        if key[CASE_FIELDS.index("max_new_tokens")] is None:  # a run written before the field existed
            key = _replace(key, "max_new_tokens", fallback_new_tokens)
        cases[key] = (str(first["case_id"]), group)
    return cases


def _configured_max_new_tokens(environment: dict[str, Any]) -> int | None:
    matrix = (environment.get("config") or {}).get("matrix") if isinstance(environment.get("config"), dict) else None
    value = matrix.get("max_new_tokens") if isinstance(matrix, dict) else None
    return int(value) if isinstance(value, (int, float)) else None


def _replace(key: tuple[Any, ...], name: str, value: Any) -> tuple[Any, ...]:
    index = CASE_FIELDS.index(name)
    return key[:index] + (value,) + key[index + 1:]


def _plain(value: Any) -> Any:
    """Key values that compare equal across runs: NaN/None -> None, whole floats -> int."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Run-level keys that change every number: the model's hash, the ONNX Runtime version and, per
    provider both runs loaded, the threading its session ran with (a stamp without it is not compared)."""
    found = []
    for label, path in (("model sha256", ("model", "sha256")), ("onnxruntime", ("onnxruntime", "version"))):
        before, after = _dig(baseline, path), _dig(current, path)
        if before != after:
            found.append(f"{label} differs ({_short(before)} vs {_short(after)})")
    before, after = (per_provider_text(env, "threading", threading_settings_text) for env in (baseline, current))
    for provider in sorted(before.keys() & after.keys()):
        if before[provider] != after[provider]:
            found.append(f"{provider} threads differ ({before[provider]} vs {after[provider]})")
    return found


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _short(value: Any) -> str:
    if value is None:
        return "unknown"
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a sha256: its first 12 hex digits name it


def case_differences(baseline: list[tuple[Any, ...]], current: list[tuple[Any, ...]]) -> list[str]:
    """The case fields whose values differ between two runs, e.g. "max_new_tokens 16 vs 32"."""
    found = []
    for index, name in enumerate(CASE_FIELDS):
        before = {key[index] for key in baseline}
        after = {key[index] for key in current}
        if before != after:
            found.append(f"{name} {_values(before)} vs {_values(after)}")
    return found


def _values(values: set[Any]) -> str:
    shown = sorted(("-" if v is None else str(v) for v in values), key=lambda text: (len(text), text))
    return ",".join(shown) if shown else "none"
