"""Report tables as pandas DataFrames: raw numbers (seconds, tok/s, bytes), formatted only in HTML.

Column names are CSV-friendly and carry their unit (``ttft_p50_s``); ``COLUMN_TITLES`` gives the
words shown on the page.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report.checklist_table import fold_unavailable
from harness.report.runs import RunData
from harness.measure.results import Verdict
from harness.stats import summarize as _summarize

CASE_KEYS = ["test", "case_id", "provider", "prompt_length", "concurrency"]
PERCENTILES = ("p50", "p90", "p99")

CHECKLIST_COLUMNS = ["title", "verdict", "measured", "threshold", "unit", "comparison", "case", "gating", "reason", "check"]

COLUMN_TITLES = {
    "title": "item",
    "case_id": "case",
    "prompt_length": "prompt (tok)",
    "concurrency": "conc.",
    "n_warm_ok": "warm ok",
    "n_failed": "failed",
    "cold_ttft_s": "cold TTFT (s)",
    "completion_tokens_mean": "out tok (mean)",
    "prefill_tok_s_p50": "prefill tok/s p50",
    "decode_tok_s_p50": "decode tok/s p50",
    "requests": "requests",
    "errors": "errors",
    "error_kinds": "error kinds",
    "window_s": "window (s)",
    "requests_per_s": "req/s",
    "output_tok_per_s": "output tok/s",
    "kernel_time_us": "kernel time (µs)",
    "mean_s": "mean (s)",
    "stddev_s": "stddev (s)",
    "min_s": "min (s)",
    "median_s": "median (s)",
    "max_s": "max (s)",
    "request_index": "request #",
    "error_kind": "error kind",
    "output_text": "output text",
    "prompt_tokens": "prompt tok",
    "completion_tokens": "output tok",
    "node_share": "node share",
    "time_share": "time share",
}
for _metric, _label in (("ttft", "TTFT"), ("e2e", "E2E"), ("tpot", "TPOT")):
    for _p in PERCENTILES:
        # "group|sub": the page draws a two-row header, one "TTFT (ms)" over p50 p90 p99.
        COLUMN_TITLES[f"{_metric}_{_p}_s"] = f"{_label} (s)|{_p}"


def summarize(values: Any, single_stream: bool = True) -> dict[str, Any]:
    """harness.stats.summarize as a dict, with NaN where a figure is undefined (tables want numbers)."""
    summary = _summarize(list(values), single_stream=single_stream).as_dict()
    return {key: (float("nan") if value is None and key != "warning" else value) for key, value in summary.items()}


def case_groups(records: pd.DataFrame):
    """(key, group) per case, tests in the order the run met them, then provider, prompt length, concurrency."""
    if records.empty:
        return []
    first_seen = records.sort_values("submit_ns").drop_duplicates("test")["test"].tolist()
    rank = {test: position for position, test in enumerate(first_seen)}
    ordered = records.assign(_rank=records["test"].map(rank)).sort_values(
        ["_rank", "provider", "prompt_length", "concurrency", "case_id"], kind="stable"
    )
    return list(ordered.drop(columns="_rank").groupby(CASE_KEYS, dropna=False, sort=False))


def checklist_table(run: RunData) -> pd.DataFrame:
    """One row per verdict, in the order the run wrote them."""
    return _checklist_frame(run.checklist)


def folded_checklist_table(run: RunData) -> pd.DataFrame:
    """For reading: a provider whose every item skipped for one reason (not installed) is one row."""
    try:
        verdicts = [Verdict(**item) for item in run.checklist]
    except TypeError:  # a checklist written by another version: show it as it is
        return checklist_table(run)
    return _checklist_frame([dataclasses.asdict(v) for v in fold_unavailable(verdicts)])


def _checklist_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{column: item.get(column) for column in CHECKLIST_COLUMNS} for item in items]
    frame = pd.DataFrame(rows, columns=CHECKLIST_COLUMNS)
    frame["title"] = frame["title"].where(frame["title"].notna(), frame["check"])
    return frame


def _warm_ok(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["ok"] & ~records["cold"]]


def _percentile_columns(prefix: str, values: pd.Series) -> dict[str, float]:
    summary = summarize(values)
    return {f"{prefix}_{p}_s": summary[p] for p in PERCENTILES}


def latency_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per case: warm TTFT/E2E/TPOT percentiles, median prefill/decode tok/s, counts, cold TTFT."""
    rows = []
    for key, group in case_groups(records):
        warm = _warm_ok(group)
        cold = group[group["cold"] & group["ok"]]
        row: dict[str, Any] = dict(zip(CASE_KEYS, key))
        row["n_warm_ok"] = len(warm)
        row["n_failed"] = int((~group["ok"]).sum())
        row["cold_ttft_s"] = cold["ttft_s"].iloc[0] if len(cold) else float("nan")
        for metric in ("ttft", "e2e", "tpot"):
            row.update(_percentile_columns(metric, warm[f"{metric}_s"]))
        row["prefill_tok_s_p50"] = summarize(warm["prefill_tok_s"])["p50"]
        row["decode_tok_s_p50"] = summarize(warm["decode_tok_s"])["p50"]
        row["completion_tokens_mean"] = summarize(warm["completion_tokens"])["mean"]
        rows.append(row)
    return pd.DataFrame(rows, columns=_latency_columns())


def _latency_columns() -> list[str]:
    columns = CASE_KEYS + ["n_warm_ok", "n_failed", "cold_ttft_s"]
    for metric in ("ttft", "e2e", "tpot"):
        columns += [f"{metric}_{p}_s" for p in PERCENTILES]
    return columns + ["prefill_tok_s_p50", "decode_tok_s_p50", "completion_tokens_mean"]


def concurrency_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per case (one concurrency level each): throughput over the case's wall window, errors, latency.

    Warm requests only. The window runs from the first submit to the last end of the case, so
    requests/s and tokens/s are what a client saw, not a sum of per-request rates.
    """
    rows = []
    for key, group in case_groups(records):
        warm = group[~group["cold"]]
        if warm.empty:
            continue
        ok = warm[warm["ok"]]
        window_s = (warm["end_ns"].max() - warm["submit_ns"].min()) / 1e9
        row: dict[str, Any] = dict(zip(CASE_KEYS, key))
        row["requests"] = len(warm)
        row["errors"] = int((~warm["ok"]).sum())
        row["error_kinds"] = ", ".join(
            f"{kind} x{count}" for kind, count in warm.loc[~warm["ok"], "error_kind"].fillna("unknown").value_counts().items()
        )
        row["window_s"] = window_s
        row["requests_per_s"] = len(ok) / window_s if window_s > 0 else float("nan")
        row["output_tok_per_s"] = ok["completion_tokens"].sum() / window_s if window_s > 0 else float("nan")
        row.update(_percentile_columns("ttft", ok["ttft_s"]))
        row.update(_percentile_columns("e2e", ok["e2e_s"]))
        rows.append(row)
    columns = CASE_KEYS + ["requests", "errors", "error_kinds", "window_s", "requests_per_s", "output_tok_per_s"]
    columns += [f"{m}_{p}_s" for m in ("ttft", "e2e") for p in PERCENTILES]
    return pd.DataFrame(rows, columns=columns)


def unstable_measurements(records: pd.DataFrame) -> list[str]:
    """Warnings for per-case warm metrics with too few samples or, single-stream only, stddev > 10 % of the mean.

    Concurrent and open-loop cases spread by queueing, which is expected, not a sign of trouble.
    """
    warnings = []
    for key, group in case_groups(records):
        warm = _warm_ok(group)
        single_stream = key[CASE_KEYS.index("concurrency")] == 1
        reasons = []
        for column, label in (("ttft_s", "TTFT"), ("e2e_s", "E2E"), ("tpot_s", "TPOT")):
            summary = summarize(warm[column], single_stream=single_stream)
            # No samples at all is reported as missing data (counts in the table), not as unstable.
            if summary["n"] and summary["warning"]:
                reasons.append(f"{label} {summary['warning']}")
        if reasons:
            warnings.append(f"{key[0]} / {key[1]}: " + "; ".join(reasons))
    return warnings


def skipped_checks(checklist: pd.DataFrame) -> list[str]:
    skipped = checklist[checklist["verdict"] == "skip"]
    return [f"{row.title} [{row.case}]: {row.reason or 'no reason given'}" for row in skipped.itertuples()]


def provider_table(run: RunData) -> pd.DataFrame:
    """Kernel nodes and time per execution provider, from each profiled generation."""
    rows = []
    for proof in run.provider_proof:
        for entry in proof.get("providers") or []:
            if isinstance(entry, dict):
                rows.append(
                    {
                        "requested": proof.get("requested"),
                        "provider": entry.get("provider"),
                        "nodes": entry.get("nodes"),
                        "kernel_time_us": entry.get("kernel_time_us"),
                        "node_share": entry.get("node_share"),
                        "time_share": entry.get("time_share"),
                    }
                )
    return pd.DataFrame(rows, columns=["requested", "provider", "nodes", "kernel_time_us", "node_share", "time_share"])


def proof_summary(run: RunData) -> list[str]:
    lines = []
    for proof in run.provider_proof:
        share = proof.get("share_on_requested")
        share_text = f"{share:.0%}" if isinstance(share, (int, float)) else "unknown"
        lines.append(
            f"requested {proof.get('requested')} -> {proof.get('execution_provider')}: "
            f"{share_text} of kernel nodes on the requested provider; device kind {proof.get('device_kind', 'unknown')}; "
            f"strict mode {'on' if proof.get('strict') else 'off'}"
        )
    return lines


def benchmark_table(run: RunData) -> pd.DataFrame:
    """pytest-benchmark's per-test statistics (seconds per round)."""
    columns = ["name", "rounds", "mean_s", "stddev_s", "min_s", "median_s", "max_s"]
    benchmarks = (run.benchmark or {}).get("benchmarks") or []
    rows = []
    for bench in benchmarks:
        stats = bench.get("stats") or {}
        rows.append(
            {
                "name": bench.get("name"),
                "rounds": stats.get("rounds"),
                "mean_s": stats.get("mean"),
                "stddev_s": stats.get("stddev"),
                "min_s": stats.get("min"),
                "median_s": stats.get("median"),
                "max_s": stats.get("max"),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def failures_table(records: pd.DataFrame, limit: int = 50) -> pd.DataFrame:
    failed = records[~records["ok"]]
    columns = ["test", "case_id", "request_index", "worker", "error_kind", "error"]
    return failed[columns].head(limit).reset_index(drop=True)


def sample_outputs(records: pd.DataFrame, max_chars: int = 240) -> pd.DataFrame:
    """The first successful output of each case, so a reader sees the model really answered."""
    rows = []
    for key, group in case_groups(records[records["ok"]]):
        first = group.sort_values("request_index").iloc[0]
        text = str(first["output_text"] or "")
        rows.append(
            {
                "test": key[0],
                "case_id": key[1],
                "prompt_tokens": first["prompt_tokens"],
                "completion_tokens": first["completion_tokens"],
                "output_text": text if len(text) <= max_chars else text[:max_chars] + " …",
            }
        )
    return pd.DataFrame(rows, columns=["test", "case_id", "prompt_tokens", "completion_tokens", "output_text"])


def environment_items(environment: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested dicts into (dotted key, text) pairs for the environment block."""
    items: list[tuple[str, str]] = []
    for key, value in environment.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += environment_items(value, prefix=f"{name}.")
        elif isinstance(value, list):
            items.append((name, ", ".join(str(v) for v in value)))
        else:
            items.append((name, "" if value is None else str(value)))
    return items


@dataclass
class RunTables:
    """Every table of one run's page, computed once and shared by the page, the CSVs and the plots."""

    checklist: pd.DataFrame
    latency: pd.DataFrame
    concurrency: pd.DataFrame
    providers: pd.DataFrame
    benchmark: pd.DataFrame
    failures: pd.DataFrame
    outputs: pd.DataFrame
    unstable: list[str]
    skipped: list[str]
    checklist_folded: pd.DataFrame  # what the page shows; checklist.csv keeps every row


def build_tables(run: RunData) -> RunTables:
    checklist = checklist_table(run)
    folded = folded_checklist_table(run)
    return RunTables(
        checklist=checklist,
        latency=latency_table(run.records),
        concurrency=concurrency_table(run.records),
        providers=provider_table(run),
        benchmark=benchmark_table(run),
        failures=failures_table(run.records),
        outputs=sample_outputs(run.records),
        unstable=unstable_measurements(run.records),
        skipped=skipped_checks(folded),
        checklist_folded=folded,
    )
