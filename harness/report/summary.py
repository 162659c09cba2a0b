"""The run's serving summary per target and provider, as `vllm bench serve` users expect it.

Computed from results.jsonl records only. Duration is *busy time*: the union of the intervals in
which at least one request was in flight, so the pauses between cases (loading, profiling, warm-up
bookkeeping) do not dilute request/s and output tok/s. Cold requests (first after load) are kept
out of the latency figures and reported on their own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from harness.judge.goodput import Goodput, goodput
from harness.stats import finite

# metric label -> (records column, is a list column)
METRICS: dict[str, tuple[str, bool]] = {
    "TTFT": ("ttft_s", False),
    "TPOT": ("tpot_s", False),
    "ITL": ("itl_s", True),
    "E2E": ("e2e_s", False),
}


@dataclass(frozen=True)
class MetricLine:
    n: int
    mean: float | None
    p50: float | None
    p99: float | None


@dataclass(frozen=True)
class GroupSummary:
    target: str
    provider: str
    busy_s: float
    ok: int
    failed: int
    output_tokens: int
    metrics: dict[str, MetricLine] = field(default_factory=dict)
    cold_ttft_s: float | None = None
    goodput: Goodput | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def request_rate(self) -> float | None:
        return self.ok / self.busy_s if self.busy_s > 0 else None

    @property
    def output_token_rate(self) -> float | None:
        return self.output_tokens / self.busy_s if self.busy_s > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target, "provider": self.provider, "busy_s": self.busy_s, "ok": self.ok,
            "failed": self.failed, "request_rate_per_s": self.request_rate,
            "output_tok_per_s": self.output_token_rate, "cold_ttft_s": self.cold_ttft_s,
            "metrics_s": {k: vars(v) for k, v in self.metrics.items()},
            "goodput": self.goodput.as_dict() if self.goodput else None, "error_kinds": self.error_kinds,
        }


def busy_seconds(submit_ns: np.ndarray, end_ns: np.ndarray) -> float:
    """Length of the union of [submit, end] intervals, in seconds."""
    if submit_ns.size == 0:
        return 0.0
    order = np.argsort(submit_ns, kind="stable")
    total, start, stop = 0, int(submit_ns[order[0]]), int(end_ns[order[0]])
    for begin, end in zip(submit_ns[order[1:]], end_ns[order[1:]]):
        if begin > stop:
            total += stop - start
            start, stop = int(begin), int(end)
        else:
            stop = max(stop, int(end))
    return (total + stop - start) / 1e9


def metric_line(values: pd.Series, is_list: bool) -> MetricLine:
    flat = [v for row in values for v in (row or [])] if is_list else list(values)
    data = finite(flat)
    if data.size == 0:
        return MetricLine(0, None, None, None)
    p50, p99 = (float(x) for x in np.percentile(data, [50, 99]))
    return MetricLine(int(data.size), float(data.mean()), p50, p99)


def summarize_group(records: pd.DataFrame, limits: Mapping[str, float] | None = None) -> GroupSummary:
    ok = records[records["ok"].astype(bool)]
    warm = ok[~ok["cold"].astype(bool)]
    cold = ok[ok["cold"].astype(bool)]["ttft_s"].dropna()
    busy = busy_seconds(records["submit_ns"].to_numpy(dtype=np.int64), records["end_ns"].to_numpy(dtype=np.int64))
    failed = records[~records["ok"].astype(bool)]
    return GroupSummary(
        target=str(records["target"].iloc[0]), provider=str(records["provider"].iloc[0]), busy_s=busy,
        ok=len(ok), failed=len(failed), output_tokens=int(ok["completion_tokens"].sum()),
        metrics={label: metric_line(warm[column], is_list) for label, (column, is_list) in METRICS.items()},
        cold_ttft_s=float(cold.iloc[0]) if len(cold) else None,
        goodput=goodput(records[~records["cold"].astype(bool)], limits, busy) if limits else None,
        error_kinds={str(k): int(v) for k, v in failed["error_kind"].fillna("unknown").value_counts().items()},
    )


def summarize_run(records: pd.DataFrame, limits: Mapping[str, float] | None = None) -> list[GroupSummary]:
    """One summary per (target, provider) that has records, in order of first appearance."""
    if records.empty:
        return []
    groups = records.groupby(["target", "provider"], sort=False)
    return [summarize_group(frame, limits) for _, frame in groups]


def goodput_by_case(records: pd.DataFrame, limits: Mapping[str, float]) -> pd.DataFrame:
    """Per case: good, total, share and good requests per busy second (warm requests only)."""
    rows = []
    for case, frame in records[~records["cold"].astype(bool)].groupby("case_id", sort=False):
        busy = busy_seconds(frame["submit_ns"].to_numpy(dtype=np.int64), frame["end_ns"].to_numpy(dtype=np.int64))
        rows.append({"case_id": case, **goodput(frame, limits, busy).as_dict()})
    return pd.DataFrame(rows)
