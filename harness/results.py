"""Results: the versioned record schema, the run folder, an incremental JSONL writer, loaders.

Everything a report or the CI gate reads is written here, as plain data. Measurement code
produces these records; report code reads only files written from them.

Run folder (``reports/<run-id>/``):
    results.jsonl      one RequestRecord per line, appended and flushed as each request ends
    telemetry.csv      TelemetrySample rows (same perf_counter_ns clock as the records)
    environment.json   Environment stamp
    checklist.json     list of Verdict
    provider_proof.json  per-provider kernel share from a profiled generation (when measured)
    benchmark.json     pytest-benchmark's own JSON
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCHEMA_VERSION = 1

VerdictKind = Literal["pass", "fail", "skip", "info"]


@dataclass
class RequestRecord:
    """One measured request. Times are perf_counter_ns of the measuring process."""

    run_id: str
    case_id: str  # readable case id, e.g. "cpu-p128-c4"
    test: str  # which suite/test produced it, e.g. "latency", "concurrency", "memory"
    target: str  # "engine" | "genai" | "http"
    provider: str  # short name: cpu | dml | qnn | cuda | remote
    prompt_length: int  # requested prompt length in tokens (the matrix value)
    concurrency: int
    request_index: int  # order of submission within the case
    worker: int  # which concurrent worker sent it
    cold: bool  # first request after the model was loaded
    submit_ns: int
    first_token_ns: int | None
    end_ns: int
    token_ns: list[int]  # timestamp of every generated token
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    e2e_s: float
    tpot_s: float | None  # (e2e - ttft) / (completion_tokens - 1)
    itl_s: list[float]  # gaps between consecutive tokens
    prefill_tok_s: float | None  # prompt_tokens / ttft
    decode_tok_s: float | None  # 1 / tpot
    ok: bool
    error_kind: str | None = None  # e.g. "timeout", "http_500", "exception:ValueError"
    error: str | None = None
    output_text: str = ""
    output_ids: list[int] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION


@dataclass
class TelemetrySample:
    t_ns: int  # perf_counter_ns, same clock as RequestRecord
    rss_bytes: int
    peak_rss_bytes: int  # OS peak: peak working set (Windows) / ru_maxrss (Linux)
    cpu_percent: float  # process CPU normalised to all cores (100 = every core busy)
    system_mem_used_bytes: int
    gpu_util_percent: float | None = None  # Windows PDH GPU engine counters of this process
    gpu_mem_bytes: int | None = None
    label: str = ""  # case id while a case runs


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
