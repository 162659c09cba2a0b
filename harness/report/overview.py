"""The report's first screen and serving figures: what was tested and what was not, the serving
summary per target/provider, goodput per case under the run's SLOs, and the run-folder file list.

Reads the run folder only (records, checklist, environment.json), like the rest of the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.runs import RunData
from harness.units import duration, number

# environment.json stores the SLO as <name>_s; the names are vLLM bench / AIPerf / GuideLLM's
_SLO_KEYS = {"ttft_s": "ttft", "tpot_s": "tpot", "e2el_s": "e2el"}


def slo_limits(environment: dict[str, Any]) -> dict[str, float]:
    """The SLOs the run was judged under ({} when none were set)."""
    config = environment.get("config") if isinstance(environment.get("config"), dict) else {}
    slo = config.get("slo") if isinstance(config.get("slo"), dict) else {}
    return {_SLO_KEYS[key]: float(value) for key, value in slo.items() if key in _SLO_KEYS and value is not None}


def _provider(case: Any) -> str:
    return str(case).split("-", 1)[0]


def tested_facts(run: RunData, checklist: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, text) rows: providers measured and not (with why), target, model, hardware."""
    env = run.environment
    rows: list[tuple[str, str]] = []
    if not checklist.empty:
        measured = checklist[checklist["verdict"].isin(["pass", "fail"])]
        tested = list(dict.fromkeys(_provider(c) for c in measured["case"]))
        providers = list(dict.fromkeys(_provider(c) for c in checklist["case"]))
        rows.append(("tested", ", ".join(tested) or "nothing: every item skipped"))
        for name in (p for p in providers if p not in tested):
            reasons = checklist[(checklist["case"].map(_provider) == name)]["reason"].dropna()
            # the first clause ("dml not installed"); the checklist row below has the whole reason
            why = str(reasons.iloc[0]).split(":")[0] if len(reasons) else "no verdict measured"
            rows.append((f"not tested: {name}", why))
    targets = sorted(set(run.records["target"].astype(str))) if "target" in run.records else []
    rows.append(("target", ", ".join(targets) or "no request recorded"))
    model = env.get("model") if isinstance(env.get("model"), dict) else {}
    size = number(model["bytes"] / 2**20) + " MiB" if isinstance(model.get("bytes"), (int, float)) else ""
    rows.append(("model", " · ".join(t for t in (str(model.get("path") or "unknown"), size) if t)))
    cpu = env.get("cpu") if isinstance(env.get("cpu"), dict) else {}
    os_ = env.get("os") if isinstance(env.get("os"), dict) else {}
    memory = os_.get("memory_total_bytes")
    hardware = [str(cpu.get("name") or "CPU ?"), f"{cpu.get('logical_cores', '?')} logical cores",
                f"{number(memory / 2**30)} GiB RAM" if isinstance(memory, (int, float)) else "",
                str(os_.get("platform") or os_.get("system") or "")]
    rows.append(("hardware", " · ".join(part for part in hardware if part)))
    return rows


def serving_summary_table(records: pd.DataFrame, limits: dict[str, float]) -> pd.DataFrame:
    """One row per target/provider: requests, busy time, req/s, tok/s, p50/p99 TTFT/TPOT/E2E, goodput."""
    from harness.report.summary import summarize_run

    rows = []
    for summary in summarize_run(records, limits or None):
        row: dict[str, Any] = {"target": summary.target, "provider": summary.provider,
                               "requests ok": summary.ok, "failed": summary.failed,
                               "busy time": duration(summary.busy_s), "req/s": number(summary.request_rate),
                               "output tok/s": number(summary.output_token_rate),
                               "cold TTFT": duration(summary.cold_ttft_s)}
        for label, line in summary.metrics.items():
            row[f"{label}|p50"] = duration(line.p50)
            row[f"{label}|p99"] = duration(line.p99)
        if summary.goodput is not None:
            share = summary.goodput.share
            row["goodput|req/s"] = number(summary.goodput.per_s)
            row["goodput|good share"] = "–" if share is None else f"{share:.0%}"
        rows.append(row)
    return pd.DataFrame(rows)


def goodput_table(records: pd.DataFrame, limits: dict[str, float]) -> pd.DataFrame:
    """Per case under the SLOs (empty when none were set): good, total, share, good req/s."""
    if not limits or records.empty:
        return pd.DataFrame()
    from harness.report.summary import goodput_by_case

    # "good_share" shows as a percentage on the page; busy_s is the time goodput is divided by
    return goodput_by_case(records, limits).rename(columns={"share": "good_share", "duration_s": "busy_s"})


def run_files(folder: Path) -> list[str]:
    """Every file in the run folder (the report links them all), sorted, index.html first."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted(names, key=lambda name: name != "index.html")
