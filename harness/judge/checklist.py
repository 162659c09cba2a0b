"""The deployment checklist: measured inputs + thresholds -> verdicts, and the CI gate.

One function per checklist item (docs/ARCHITECTURE.md, "The checklist"). Each takes plain measured inputs (a records frame as
``results.load_records`` returns, a telemetry frame, a provider-proof dict, flags) and returns a
Verdict. A missing measurement is "skip" with the reason, never "pass". Nothing is measured here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.config import Thresholds
from harness.stats import summarize
from harness.measure.results import Verdict
from harness.providers.spec import runs_on_cpu

GIB = 1024**3
MIB = 1024**2

# key -> title, in the order of docs/ARCHITECTURE.md's checklist table (and of the terminal table).
CHECKS: dict[str, str] = {
    "model_loads": "Model loads",
    "health": "Health endpoint",
    "real_responses": "Real responses",
    "provider_active": "Provider active",
    "accelerator_kind": "Accelerator kind",
    "simple_query": "Simple query (E2E p50)",
    "first_response": "First response (cold TTFT)",
    "subsequent_responses": "Subsequent responses (warm TTFT p50)",
    "token_counting": "Token counting",
    "memory": "Memory peak",
    "memory_stable": "Memory stable",
    "concurrency": "Concurrency",
    "cpu_usage": "CPU usage",
    "accelerator_utilisation": "Accelerator utilisation",
}

# Memory growth needs enough repeated requests for a slope to mean something.
MIN_GROWTH_REQUESTS = 8
# Text a stub server or a broken pipeline returns instead of generating.
PLACEHOLDERS = re.compile(
    r"lorem ipsum|\bplaceholder\b|\bTODO\b|\b(dummy|mock|fake|canned) (response|output|answer)\b|not implemented",
    re.IGNORECASE,
)


def _verdict(check: str, verdict: str, measured: Any = None, threshold: Any = None, *, unit: str = "",
             comparison: str = "", case: str = "", reason: str = "", gating: bool = True) -> Verdict:
    return Verdict(check=check, title=CHECKS[check], verdict=verdict, measured=measured, threshold=threshold,  # type: ignore[arg-type]
                   unit=unit, comparison=comparison, case=case, reason=reason, gating=gating)


def _skip(check: str, reason: str, case: str = "", threshold: Any = None, unit: str = "", comparison: str = "") -> Verdict:
    return _verdict(check, "skip", None, threshold, unit=unit, comparison=comparison, case=case, reason=reason)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "-" if value is None else str(value)


def _compare(check: str, measured: float, comparison: str, threshold: float, unit: str, case: str, note: str = "") -> Verdict:
    """pass/fail of ``measured <comparison> threshold``; the reason always says measured vs threshold."""
    holds = {"<=": measured <= threshold, ">=": measured >= threshold, ">": measured > threshold}[comparison]
    text = f"{_fmt(measured)} {unit}".strip()
    limit = f"{_fmt(threshold)} {unit}".strip()
    reason = (f"{text} {comparison} {limit}" if holds else f"{text} is not {comparison} {limit}") + (f" in {case}" if case else "")
    reason += f"; {note}" if note else ""
    return _verdict(check, "pass" if holds else "fail", measured, threshold, unit=unit, comparison=comparison, case=case, reason=reason)


def _cases(frame: pd.DataFrame) -> str:
    return ", ".join(dict.fromkeys(str(c) for c in frame["case_id"])) if len(frame) else ""


def _failures(frame: pd.DataFrame) -> str:
    """"2 of 8 requests failed (exception:RuntimeError: boom)" or "" when none failed."""
    failed = frame[~frame["ok"]]
    if failed.empty:
        return ""
    first = failed.iloc[0]
    return f"{len(failed)} of {len(frame)} requests failed ({first['error_kind']}: {first['error']})"


# --- the items --------------------------------------------------------------------------------


def check_model_loads(load_s: float | None, error: str | None = None, case: str = "") -> Verdict:
    if error:
        return _verdict("model_loads", "fail", None, "no error", case=case, reason=f"load failed: {error}")
    if load_s is None:
        return _skip("model_loads", "the model load was not measured", case, "no error")
    return _verdict("model_loads", "pass", float(load_s), "no error", unit="s", case=case,
                    reason=f"loaded in {_fmt(float(load_s))} s")


def check_health(model_loaded: bool | None, detail: str = "", case: str = "",
                 skip_reason: str = "health is checked on HTTP targets only") -> Verdict:
    """``model_loaded``: what GET /health said about the model; None when it was not asked."""
    if model_loaded is None:
        return _skip("health", skip_reason, case, "ok")
    if not model_loaded:
        return _verdict("health", "fail", detail or "model not loaded", "ok", case=case,
                        reason=f"GET /health does not report the model loaded{': ' + detail if detail else ''}")
    return _verdict("health", "pass", "ok", "ok", case=case, reason=detail)


def check_real_responses(records: pd.DataFrame, *, decodes: bool | None = None,
                         matches_reference: bool | None = None, case: str = "") -> Verdict:
    """``records``: one response per distinct prompt. ``decodes``: output text equals the decoding of
    the generated ids; ``matches_reference``: greedy output equals the reference engine's."""
    case = case or _cases(records)
    if (problem := _failures(records)):
        return _verdict("real_responses", "fail", None, "pass", case=case, reason=problem)
    texts = [str(t) for t in records["output_text"]]
    if len(texts) < 2:
        return _skip("real_responses", f"need responses to >= 2 distinct prompts, got {len(texts)}", case, "pass")
    problems = []
    if any(not t.strip() for t in texts):
        problems.append(f"{sum(not t.strip() for t in texts)} empty output(s)")
    if len(set(texts)) < len(texts):
        problems.append(f"{len(texts) - len(set(texts))} output(s) repeat another prompt's output")
    if (hits := [m.group(0) for t in texts if (m := PLACEHOLDERS.search(t))]):
        problems.append(f"placeholder text {hits[0]!r}")
    if decodes is False:
        problems.append("output text differs from the decoded generated ids")
    if matches_reference is False:
        problems.append("greedy output differs from the reference engine's")
    measured = f"{len(set(texts))}/{len(texts)} distinct"
    if problems:
        return _verdict("real_responses", "fail", measured, "pass", case=case, reason="; ".join(problems))
    unchecked = [name for name, flag in (("decoding", decodes), ("reference comparison", matches_reference)) if flag is None]
    return _verdict("real_responses", "pass", measured, "pass", case=case,
                    reason=f"not checked: {', '.join(unchecked)}" if unchecked else "")


def check_provider_active(proof: Mapping[str, Any] | None, requested: str, threshold: float, case: str = "") -> Verdict:
    """Proof of execution from profiling: share of kernel nodes on the requested provider."""
    case = case or requested
    if not proof:
        return _skip("provider_active", f"no provider proof for {requested} (profiling was not run)", case,
                     threshold, comparison=">=")
    if proof.get("requested") not in (None, requested):
        return _verdict("provider_active", "fail", None, threshold, comparison=">=", case=case,
                        reason=f"the proof is for {proof.get('requested')!r}, not {requested!r}")
    share = proof.get("share_on_requested")
    ep = proof.get("execution_provider", requested)
    if share is None:
        return _skip("provider_active", f"the profile has no kernel events attributed to providers for {ep}", case,
                     threshold, comparison=">=")
    others = ", ".join(f"{p.get('provider')} {_fmt(p.get('node_share'))}" for p in proof.get("providers", [])
                       if p.get("provider") != ep)
    return _compare("provider_active", float(share), ">=", threshold, "", case,
                    f"share of kernel nodes on {ep}" + (f" (others: {others})" if others else ""))


def check_accelerator_kind(proof: Mapping[str, Any] | None, requested: str, case: str = "") -> Verdict:
    case = case or requested
    kind = proof.get("device_kind") if proof else None
    if not kind:
        return _verdict("accelerator_kind", "skip", None, "reported", case=case, gating=False,
                        reason="the platform does not tell which device runs the provider")
    ep = proof.get("execution_provider", requested) if proof else requested
    return _verdict("accelerator_kind", "info", kind, "reported", case=case, gating=False, reason=f"{ep} runs on {kind}")


def _short_single(records: pd.DataFrame, *, cold: bool) -> pd.DataFrame:
    """Requests at concurrency 1 with the shortest prompt length among them: the "short prompt" case."""
    single = records[(records["concurrency"] == 1) & (records["cold"] == cold)]
    if single.empty:
        return single
    return single[single["prompt_length"] == single["prompt_length"].min()]


def _latency_check(check: str, rows: pd.DataFrame, metric: str, threshold: float, empty_reason: str) -> Verdict:
    case = _cases(rows)
    if rows.empty:
        return _skip(check, empty_reason, threshold=threshold, unit="s", comparison="<=")
    if (problem := _failures(rows)):
        return _verdict(check, "fail", None, threshold, unit="s", comparison="<=", case=case, reason=problem)
    summary = summarize(rows[metric])
    if summary.p50 is None:
        return _verdict(check, "fail", None, threshold, unit="s", comparison="<=", case=case,
                        reason=f"no {metric} measured (no token generated?)")
    note = f"p50 of {summary.n} requests" + (f"; unstable: {summary.warning}" if summary.warning else "")
    return _compare(check, summary.p50, "<=", threshold, "s", case, note)


def check_simple_query(records: pd.DataFrame, threshold_s: float) -> Verdict:
    return _latency_check("simple_query", _short_single(records, cold=False), "e2e_s", threshold_s,
                          "no warm requests at concurrency 1 were recorded")


def check_subsequent_responses(records: pd.DataFrame, threshold_s: float) -> Verdict:
    return _latency_check("subsequent_responses", _short_single(records, cold=False), "ttft_s", threshold_s,
                          "no warm requests at concurrency 1 were recorded")


def check_first_response(records: pd.DataFrame, threshold_s: float) -> Verdict:
    cold = records[records["cold"]]
    if cold.empty:
        return _skip("first_response", "no cold request (the first after load) was recorded",
                     threshold=threshold_s, unit="s", comparison="<=")
    case = _cases(cold)
    if (problem := _failures(cold)):
        return _verdict("first_response", "fail", None, threshold_s, unit="s", comparison="<=", case=case, reason=problem)
    ttft = cold["ttft_s"].dropna()
    if ttft.empty:
        return _verdict("first_response", "fail", None, threshold_s, unit="s", comparison="<=", case=case,
                        reason="the cold request generated no token")
    # Several cold requests (one per target or provider passed in): the slowest must meet the target.
    return _compare("first_response", float(ttft.max()), "<=", threshold_s, "s", case,
                    f"slowest of {len(ttft)} cold requests" if len(ttft) > 1 else "")


def check_token_counting(comparisons: Sequence[Mapping[str, Any]] | None, case: str = "") -> Verdict:
    """Each comparison: reported_/expected_ prompt_tokens and completion_tokens (+ optional case)."""
    if not comparisons:
        return _skip("token_counting", "no reported counts were compared with the tokenizer's", case, "exact")
    wrong = []
    for item in comparisons:
        for part in ("prompt_tokens", "completion_tokens"):
            reported, expected = item.get(f"reported_{part}"), item.get(f"expected_{part}")
            if reported != expected:
                wrong.append(f"{part} reported {reported}, tokenizer counts {expected}"
                             + (f" in {item['case']}" if item.get("case") else ""))
    if wrong:
        return _verdict("token_counting", "fail", f"{len(wrong)} mismatch(es)", "exact", case=case,
                        reason="; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""))
    return _verdict("token_counting", "pass", f"{len(comparisons)} compared", "exact", case=case,
                    reason=f"{len(comparisons)} requests match the tokenizer's counts")


def check_memory(telemetry: pd.DataFrame, threshold_gib: float, case: str = "") -> Verdict:
    """OS peak of process memory, plus peak GPU process memory where the counters read it."""
    peaks = telemetry["peak_rss_bytes"].dropna() if len(telemetry) else pd.Series(dtype=float)
    if peaks.empty:
        return _skip("memory", "no telemetry was recorded", case, threshold_gib, "GiB", "<=")
    gpu = telemetry["gpu_mem_bytes"].dropna()
    measured = (float(peaks.max()) + (float(gpu.max()) if len(gpu) else 0.0)) / GIB
    note = "process peak (OS, lifetime)" + (
        f" + GPU process memory {_fmt(float(gpu.max()) / GIB)} GiB (dedicated + shared)" if len(gpu)
        else "; GPU process memory not readable here")
    return _compare("memory", measured, "<=", threshold_gib, "GiB", case, note)


def rss_after_requests(records: pd.DataFrame, telemetry: pd.DataFrame) -> list[float]:
    """RSS from the first telemetry sample at or after each successful request's end, in order."""
    done = records[records["ok"]].sort_values("end_ns")
    times = telemetry["t_ns"].to_numpy(dtype=float)
    order = np.argsort(times)
    times, rss = times[order], telemetry["rss_bytes"].to_numpy(dtype=float)[order]
    positions = np.searchsorted(times, done["end_ns"].to_numpy(dtype=float), side="left")
    return [float(rss[p]) for p in positions if p < len(times)]


def check_memory_stable(records: pd.DataFrame, telemetry: pd.DataFrame, threshold_mib: float, case: str = "") -> Verdict:
    """Least-squares slope of RSS over repeated requests, after the first quarter (arena warm-up)."""
    case = case or _cases(records)
    args = dict(threshold=threshold_mib, unit="MiB/request", comparison="<=")
    if len(telemetry) == 0:
        return _skip("memory_stable", "no telemetry was recorded", case, **args)
    rss = rss_after_requests(records, telemetry)
    if len(rss) < MIN_GROWTH_REQUESTS:
        return _skip("memory_stable", f"{len(rss)} requests with telemetry after them; need >= {MIN_GROWTH_REQUESTS}",
                     case, **args)
    kept = rss[len(rss) // 4:]
    slope = float(np.polyfit(np.arange(len(kept), dtype=float), np.array(kept), 1)[0]) / MIB
    return _compare("memory_stable", slope, "<=", threshold_mib, "MiB/request", case,
                    f"RSS slope over {len(kept)} requests (first {len(rss) - len(kept)} skipped as warm-up)")


def max_overlap(records: pd.DataFrame) -> int:
    """Most requests open at the same moment (submit..end intervals)."""
    events = sorted([(int(s), 1) for s in records["submit_ns"]] + [(int(e), -1) for e in records["end_ns"]],
                    key=lambda event: (event[0], event[1]))  # an end before a start at the same instant
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def check_concurrency(records: pd.DataFrame, *, outputs_match: bool | None = None, detail: str = "",
                      case: str = "") -> Verdict:
    """Concurrent requests (closed loop, concurrency > 1) all succeed; ``outputs_match``: each equals
    its own single-stream output (compared by the suite)."""
    # concurrency 0 marks open-loop (Poisson) requests: they overlap whenever arrivals outpace the engine
    rows = records[(records["concurrency"] > 1) | (records["concurrency"] == 0)]
    case = case or _cases(rows)
    if rows.empty:
        return _skip("concurrency", "no requests at concurrency > 1 or open-loop requests were recorded", case, "all ok")
    measured = f"{int(rows['ok'].sum())}/{len(rows)} ok"
    overlap = f"up to {max_overlap(rows)} in flight at once"
    if (problem := _failures(rows)):
        return _verdict("concurrency", "fail", measured, "all ok", case=case, reason=f"{problem}; {overlap}")
    if outputs_match is False:
        return _verdict("concurrency", "fail", measured, "all ok", case=case,
                        reason=f"outputs differ from single-stream outputs{': ' + detail if detail else ''}")
    unchecked = "; outputs not compared with single-stream runs" if outputs_match is None else ""
    return _verdict("concurrency", "pass", measured, "all ok", case=case, reason=overlap + unchecked)


def _during_generation(telemetry: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Telemetry rows inside a case's window (its first submit .. its last end)."""
    if telemetry.empty or records.empty:
        return telemetry.iloc[0:0]
    inside = np.zeros(len(telemetry), dtype=bool)
    times = telemetry["t_ns"].to_numpy(dtype=float)
    for _, group in records.groupby("case_id", sort=False):
        inside |= (times >= float(group["submit_ns"].min())) & (times <= float(group["end_ns"].max()))
    return telemetry[inside]


def check_cpu_usage(telemetry: pd.DataFrame, records: pd.DataFrame, provider: str, threshold_percent: float,
                    case: str = "") -> Verdict:
    args = dict(threshold=threshold_percent, unit="%", comparison="<=")
    rows = _during_generation(telemetry, records)["cpu_percent"].dropna()
    if rows.empty:
        return _skip("cpu_usage", "no telemetry samples during generation", case or provider, **args)
    verdict = _compare("cpu_usage", float(rows.mean()), "<=", threshold_percent, "%", case or provider,
                       f"mean of {len(rows)} samples, all cores = 100 %")
    if runs_on_cpu(provider):  # the CPU provider computes on the CPU: high usage is the expected outcome
        verdict.verdict, verdict.gating = "info", False
        verdict.reason = f"info only on the CPU provider: {verdict.reason}"
    return verdict


def check_accelerator_utilisation(telemetry: pd.DataFrame, records: pd.DataFrame, provider: str,
                                  threshold_percent: float, counters_reason: str = "", case: str = "") -> Verdict:
    args = dict(threshold=threshold_percent, unit="%", comparison=">")
    case = case or provider
    if runs_on_cpu(provider):
        return _skip("accelerator_utilisation", "not applicable: the CPU provider uses no accelerator", case, **args)
    if provider == "remote":
        return _skip("accelerator_utilisation", "the target runs in another process; this process's counters say nothing",
                     case, **args)
    rows = _during_generation(telemetry, records)["gpu_util_percent"].dropna()
    if rows.empty:
        return _skip("accelerator_utilisation", counters_reason or "no GPU counter readings during generation", case, **args)
    return _compare("accelerator_utilisation", float(rows.max()), ">", threshold_percent, "%", case,
                    f"peak engine utilisation of this process over {len(rows)} samples")


# --- one provider's checklist, the gate, the table --------------------------------------------


@dataclass
class CheckInputs:
    """Everything measured for one provider (or target); None = not measured."""

    provider: str
    records: pd.DataFrame
    telemetry: pd.DataFrame
    proof: Mapping[str, Any] | None = None
    load_s: float | None = None
    load_error: str | None = None
    health_model_loaded: bool | None = None  # HTTP targets only
    health_detail: str = ""
    real_responses: pd.DataFrame | None = None  # one record per distinct prompt; default: test == "real_responses"
    decodes: bool | None = None
    matches_reference: bool | None = None
    concurrent_outputs_match: bool | None = None
    concurrency_detail: str = ""
    token_counts: Sequence[Mapping[str, Any]] | None = None
    memory_test: str = "memory"  # records of this test measure memory growth
    gpu_counters_reason: str = ""  # why GPU counters are unreadable, from the sampler


def evaluate(inputs: CheckInputs, thresholds: Thresholds) -> list[Verdict]:
    """All checklist items for one provider, in the checklist's order."""
    p, records, telemetry = inputs.provider, inputs.records, inputs.telemetry
    responses = inputs.real_responses if inputs.real_responses is not None else records[records["test"] == "real_responses"]
    generating = _during_generation(telemetry, records)
    verdicts = [
        check_model_loads(inputs.load_s, inputs.load_error, p),
        check_health(inputs.health_model_loaded, inputs.health_detail, p),
        check_real_responses(responses, decodes=inputs.decodes, matches_reference=inputs.matches_reference),
        check_provider_active(inputs.proof, p, thresholds.provider_share_min),
        check_accelerator_kind(inputs.proof, p),
        check_simple_query(records, thresholds.simple_query_p50_s),
        check_first_response(records, thresholds.first_response_s),
        check_subsequent_responses(records, thresholds.subsequent_p50_s),
        check_token_counting(inputs.token_counts, p),
        check_memory(generating if len(generating) else telemetry, thresholds.memory_peak_gib, p),
        check_memory_stable(records[records["test"] == inputs.memory_test], telemetry,
                            thresholds.memory_growth_mib_per_request),
        check_concurrency(records, outputs_match=inputs.concurrent_outputs_match, detail=inputs.concurrency_detail),
        check_cpu_usage(telemetry, records, p, thresholds.cpu_percent_max),
        check_accelerator_utilisation(telemetry, records, p, thresholds.accelerator_util_min_percent,
                                      inputs.gpu_counters_reason),
    ]
    for verdict in verdicts:  # a check with no records to name a case still says which provider it was
        verdict.case = verdict.case or p
    return verdicts


def skip_all(provider: str, reason: str) -> list[Verdict]:
    """Every item skipped for a provider that could not run (e.g. DirectML on Linux), with why."""
    return [_verdict(check, "skip", case=provider, reason=reason) for check in CHECKS]


def fold_unavailable(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """For display: one line for a provider whose every item skipped for the same reason."""
    def provider(verdict: Verdict) -> str:
        return verdict.case.split("-", 1)[0]

    groups: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        groups.setdefault(provider(verdict), []).append(verdict)
    folded: list[Verdict] = []
    for verdict in verdicts:
        group = groups[provider(verdict)]
        if len(group) < len(CHECKS) or len({v.reason for v in group}) > 1 or any(v.verdict != "skip" for v in group):
            folded.append(verdict)
        elif verdict is group[0]:
            folded.append(Verdict("all", f"All {len(CHECKS)} items", "skip", None, None, case=verdict.case,
                                  reason=verdict.reason))
    return folded


def gate(verdicts: Sequence[Verdict]) -> int:
    """CI exit code: 1 when a gating check failed, else 0 (skips and info never fail the gate)."""
    return 1 if any(v.verdict == "fail" and v.gating for v in verdicts) else 0


def format_table(verdicts: Sequence[Verdict]) -> str:
    """Plain-text table for the terminal: item, verdict, measured, threshold, case, reason."""
    header = ("item", "verdict", "measured", "threshold", "case", "reason")
    rows = [header]
    for v in verdicts:
        unit = f" {v.unit}" if v.unit and v.measured is not None else ""
        numeric = isinstance(v.threshold, (int, float))
        limit = f"{v.comparison} {_fmt(v.threshold)}".strip() + (f" {v.unit}" if v.unit and numeric else "")
        label = v.verdict.upper() + ("" if v.gating or v.verdict in ("skip", "info") else " (non-gating)")
        rows.append((v.title, label, _fmt(v.measured) + unit, limit if v.threshold is not None else "-", v.case or "-",
                     v.reason or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * 6)
    return "\n".join(line.rstrip() for line in lines)
